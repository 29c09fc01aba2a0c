// /proc/PID/statm: seven page counts on one line.  Three times cheaper for the kernel to
// produce than status, so the sampler reads it every sweep to notice memory changes and
// re-reads status only when something moved.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace ptmem::proc {

struct Statm {
  uint64_t size = 0, resident = 0, shared = 0;  ///< pages: VSZ, RSS, RssFile + RssShmem
  bool operator==(const Statm&) const = default;
};
/// nullopt unless the first three fields are numbers followed by a separator.
std::optional<Statm> parse_statm(std::string_view text);

}  // namespace ptmem::proc
