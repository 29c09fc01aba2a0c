// Durations as users type them on the command line: "500ms", "2s", "1m", "250us".
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ptmem::util {

using Duration = std::chrono::microseconds;

/// Parses a positive duration with a unit (us, ms, s, m); a bare number means seconds.
/// Returns nullopt and sets |error| for zero, negative, overflowing or malformed input.
std::optional<Duration> parse_duration(std::string_view text, std::string* error = nullptr);

/// "1.5s", "500ms": the shortest exact spelling, for messages and JSON.
std::string format_duration(Duration d);

}  // namespace ptmem::util
