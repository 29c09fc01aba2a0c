#include "ptmem/proc/kb_lines.hpp"

#include <charconv>

namespace ptmem::proc {

std::optional<uint64_t> parse_kb_value(std::string_view value) {
  size_t i = 0;
  while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
  size_t start = i;
  while (i < value.size() && value[i] >= '0' && value[i] <= '9') ++i;
  if (i == start) return std::nullopt;
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(value.data() + start, value.data() + i, out, 10);
  if (ec != std::errc()) return std::nullopt;
  auto unit = value.substr(i);
  while (!unit.empty() && (unit.back() == ' ' || unit.back() == '\r')) unit.remove_suffix(1);
  if (unit != " kB") return std::nullopt;
  return out;
}

}  // namespace ptmem::proc
