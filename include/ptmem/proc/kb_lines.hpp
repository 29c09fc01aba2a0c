// "Key:   1234 kB" text, the shape of /proc/meminfo, /proc/PID/smaps_rollup and most of
// /proc/PID/status.  One tolerant scanner so every reader treats malformed lines alike.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace ptmem::proc {

/// Calls |on_line(key, value)| for every "Key: value" line (value untrimmed); lines without
/// a colon or with an empty key are skipped.  The one line splitter of /proc's key files
/// (status, meminfo, smaps_rollup, fdinfo).
template <typename F>
void for_each_key_line(std::string_view text, F&& on_line) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    on_line(line.substr(0, colon), line.substr(colon + 1));
  }
}

/// Calls |on_field(key, kb)| for every well-formed "Key:   N kB" line.  Other lines are
/// skipped, so the figure stays unknown to the caller; requiring the unit also catches a
/// file truncated in the middle of a number.
template <typename F>
void for_each_kb_line(std::string_view text, F&& on_field);

/// "  1234 kB" -> 1234; nullopt for anything else ("12x kB", "1234", "-1 kB", overflow).
std::optional<uint64_t> parse_kb_value(std::string_view value);

template <typename F>
void for_each_kb_line(std::string_view text, F&& on_field) {
  for_each_key_line(text, [&](std::string_view key, std::string_view value) {
    if (auto v = parse_kb_value(value)) on_field(key, *v);
  });
}

}  // namespace ptmem::proc
