// "Key:   1234 kB" text, the shape of /proc/meminfo, /proc/PID/smaps_rollup and most of
// /proc/PID/status.  One tolerant scanner so every reader treats malformed lines alike.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace ptmem::proc {

/// Calls |on_field(key, kb)| for every well-formed "Key:   N kB" line.  Other lines are
/// skipped, so the figure stays unknown to the caller; requiring the unit also catches a
/// file truncated in the middle of a number.
template <typename F>
void for_each_kb_line(std::string_view text, F&& on_field);

/// "  1234 kB" -> 1234; nullopt for anything else ("12x kB", "1234", "-1 kB", overflow).
std::optional<uint64_t> parse_kb_value(std::string_view value);

template <typename F>
void for_each_kb_line(std::string_view text, F&& on_field) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    if (auto v = parse_kb_value(line.substr(colon + 1))) on_field(line.substr(0, colon), *v);
  }
}

}  // namespace ptmem::proc
