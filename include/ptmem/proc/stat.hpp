// /proc/PID/stat and /proc/PID/task/TID/stat: the one-line, space-separated record the
// kernel keeps per task.  The sampler reads it every sweep for faults, CPU time, thread
// count and start time, so the parser works on a string_view and allocates only the name.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ptmem::proc {

/// PF_KTHREAD in the stat "flags" field: kernel threads have no address space.
inline constexpr uint64_t kFlagKernelThread = 0x00200000;

struct TaskStat {
  pid_t pid = 0;
  std::string comm;          ///< without the parentheses; may hold spaces and ')'
  char state = '?';
  pid_t ppid = 0;
  uint64_t flags = 0;
  uint64_t minflt = 0, majflt = 0;
  uint64_t utime = 0, stime = 0;  ///< clock ticks (sysconf(_SC_CLK_TCK))
  int64_t num_threads = 0;
  uint64_t starttime = 0;    ///< clock ticks after boot: with the pid, identifies a process
  uint64_t vsize = 0;        ///< bytes
  int64_t rss_pages = 0;

  bool kernel_thread() const { return (flags & kFlagKernelThread) != 0; }
};

/// Parses one stat record.  The name is everything between the first '(' and the *last*
/// ')', because a process may call itself "a) b".  Returns nullopt when the record is
/// truncated at or before the rss field (24th) or a number is malformed.
std::optional<TaskStat> parse_stat(std::string_view text);

std::optional<TaskStat> read_stat(pid_t pid, const std::string& root = "/proc");
std::optional<TaskStat> read_task_stat(pid_t pid, pid_t tid, const std::string& root = "/proc");

}  // namespace ptmem::proc
