// /proc/PID/smaps_rollup: the kernel's sum over every mapping.  It walks the page tables
// (and takes the target's mmap lock), so the sampler reads it only for the rows it shows.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ptmem::proc {

struct SmapsRollup {
  std::optional<uint64_t> rss_kb, pss_kb, private_clean_kb, private_dirty_kb, swap_kb,
      swap_pss_kb;
  /// Unique set size: pages only this process maps (private clean + private dirty).
  std::optional<uint64_t> uss_kb() const;
};
/// Parses the rollup text; a missing or malformed line leaves that figure unknown.
SmapsRollup parse_smaps_rollup(std::string_view text);
/// nullopt when the file cannot be read (process gone, or no permission: needs the same
/// access as ptrace-read, so another user's process is unknown for non-root).
std::optional<SmapsRollup> read_smaps_rollup(pid_t pid, const std::string& root = "/proc");

}  // namespace ptmem::proc
