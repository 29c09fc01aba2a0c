// The memory lines and the effective uid of /proc/PID/status, read on every sweep for
// every process.  Stricter than proc::parse_status: a figure must be "N kB" (a line cut
// in the middle of its number is unknown, not a smaller number) and a missing Uid line
// is unknown, not root.  One pass, no allocation.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <sys/types.h>

namespace ptmem::proc {

struct StatusMemory {
  std::optional<uint64_t> vm_size_kb, vm_rss_kb, rss_anon_kb, rss_file_kb, rss_shmem_kb, vm_swap_kb;
  std::optional<uid_t> euid;  ///< second field of "Uid:", the user top and ps show
};
StatusMemory parse_status_memory(std::string_view text);

}  // namespace ptmem::proc
