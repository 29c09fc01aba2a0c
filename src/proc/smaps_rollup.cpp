#include "ptmem/proc/smaps_rollup.hpp"

#include "ptmem/proc/kb_lines.hpp"
#include "ptmem/proc/maps.hpp"

namespace ptmem::proc {

std::optional<uint64_t> SmapsRollup::uss_kb() const {
  if (!private_clean_kb || !private_dirty_kb) return std::nullopt;
  return *private_clean_kb + *private_dirty_kb;
}

SmapsRollup parse_smaps_rollup(std::string_view text) {
  SmapsRollup r;
  for_each_kb_line(text, [&](std::string_view key, uint64_t v) {
    if (key == "Rss") r.rss_kb = v;
    else if (key == "Pss") r.pss_kb = v;
    else if (key == "Private_Clean") r.private_clean_kb = v;
    else if (key == "Private_Dirty") r.private_dirty_kb = v;
    else if (key == "Swap") r.swap_kb = v;
    else if (key == "SwapPss") r.swap_pss_kb = v;
  });
  return r;
}

std::optional<SmapsRollup> read_smaps_rollup(pid_t pid, const std::string& root) {
  auto text = read_file(root + "/" + std::to_string(pid) + "/smaps_rollup", 64 << 10);
  if (!text) return std::nullopt;
  return parse_smaps_rollup(*text);
}

}  // namespace ptmem::proc
