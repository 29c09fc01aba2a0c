#include "ptmem/proc/meminfo.hpp"

#include <charconv>

#include "ptmem/proc/kb_lines.hpp"
#include "ptmem/proc/maps.hpp"

namespace ptmem::proc {

std::optional<uint64_t> MemInfo::swap_used_kb() const {
  if (!swap_total_kb || !swap_free_kb || *swap_free_kb > *swap_total_kb) return std::nullopt;
  return *swap_total_kb - *swap_free_kb;
}

MemInfo parse_meminfo(std::string_view text) {
  MemInfo m;
  for_each_kb_line(text, [&](std::string_view key, uint64_t v) {
    if (key == "MemTotal") m.mem_total_kb = v;
    else if (key == "MemAvailable") m.mem_available_kb = v;
    else if (key == "SwapTotal") m.swap_total_kb = v;
    else if (key == "SwapFree") m.swap_free_kb = v;
  });
  return m;
}

std::optional<MemInfo> read_meminfo(const std::string& root) {
  auto text = read_file(root + "/meminfo", 1 << 20);
  if (!text) return std::nullopt;
  return parse_meminfo(*text);
}

std::optional<uint64_t> parse_loadavg_threads(std::string_view text) {
  // "0.00 0.01 0.05 1/123 4567": the field after the slash.
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto rest = text.substr(slash + 1);
  auto end = rest.find(' ');
  if (end == std::string_view::npos || end == 0) return std::nullopt;
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + end, out, 10);
  if (ec != std::errc() || p != rest.data() + end) return std::nullopt;
  return out;
}

std::optional<uint64_t> read_loadavg_threads(const std::string& root) {
  auto text = read_file(root + "/loadavg", 4096);
  if (!text) return std::nullopt;
  return parse_loadavg_threads(*text);
}

}  // namespace ptmem::proc
