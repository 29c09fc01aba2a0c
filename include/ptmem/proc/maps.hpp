// /proc/PID/maps, /proc/PID/auxv, /proc/PID/status and /proc/PID/task: the small set of
// /proc readers both the sampler and the tracer use.  Every reader takes the proc root as
// a parameter so tests can point it at a fixture tree; files are untrusted text.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace ptmem::proc {

inline constexpr const char* kDefaultRoot = "/proc";

struct Mapping {
  uint64_t start = 0, end = 0;  ///< [start, end)
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0;          ///< file offset of |start|
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;             ///< "" for anonymous; "[heap]", "[stack]", "[vdso]"...; " (deleted)" kept
};

/// Parses maps text; malformed lines are skipped (counted in |bad_lines| when given).
std::vector<Mapping> parse_maps(std::string_view text, size_t* bad_lines = nullptr);
std::optional<std::vector<Mapping>> read_maps(pid_t pid, const std::string& root = kDefaultRoot);

struct Auxv {
  std::optional<uint64_t> entry;   ///< AT_ENTRY
  std::optional<uint64_t> base;    ///< AT_BASE (ld.so load address; 0 for static)
  std::optional<uint64_t> phdr;    ///< AT_PHDR
  std::optional<uint64_t> phnum;   ///< AT_PHNUM
  std::optional<uint64_t> sysinfo_ehdr;  ///< AT_SYSINFO_EHDR (vdso)
};
Auxv parse_auxv(std::string_view bytes);  ///< 64-bit auxv; stops at AT_NULL or truncation
std::optional<Auxv> read_auxv(pid_t pid, const std::string& root = kDefaultRoot);

struct Status {
  std::string name;
  char state = '?';               ///< R, S, D, T, t, Z, X, I...
  pid_t tgid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  uid_t uid = 0;                  ///< real uid
  std::optional<uint32_t> threads;
  bool kernel_thread = false;     ///< no VmSize/mm (kthreads); derived from "Kthread:" or missing Vm* lines
  std::optional<uint64_t> vm_size_kb, vm_rss_kb, rss_anon_kb, rss_file_kb, rss_shmem_kb, vm_swap_kb;
};
std::optional<Status> parse_status(std::string_view text);
std::optional<Status> read_status(pid_t pid, const std::string& root = kDefaultRoot);

/// Thread ids in /proc/PID/task, ascending.  Empty when the process is gone.
std::vector<pid_t> list_tasks(pid_t pid, const std::string& root = kDefaultRoot);

/// Whole file read with one open/read loop; nullopt if it cannot be opened.  Caps size.
std::optional<std::string> read_file(const std::string& path, size_t max_bytes = 16 << 20);

}  // namespace ptmem::proc
