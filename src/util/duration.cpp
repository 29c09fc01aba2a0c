#include "ptmem/util/duration.hpp"

#include <charconv>
#include <cmath>
#include <fmt/format.h>

namespace ptmem::util {

std::optional<Duration> parse_duration(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<Duration> {
    if (error) *error = fmt::format("invalid duration '{}': {}", text, why);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty");
  size_t unit_at = 0;
  while (unit_at < text.size() && (std::isdigit(static_cast<unsigned char>(text[unit_at])) ||
                                   text[unit_at] == '.'))
    ++unit_at;
  if (unit_at == 0) {
    if (text[0] == '-') return fail("must be positive");
    return fail("expected a number followed by us, ms, s or m");
  }
  double value = 0;
  auto number = text.substr(0, unit_at);
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || ptr != number.data() + number.size())
    return fail("expected a number followed by us, ms, s or m");
  auto unit = text.substr(unit_at);
  double scale;
  if (unit == "us") scale = 1;
  else if (unit == "ms") scale = 1e3;
  else if (unit == "s" || unit.empty()) scale = 1e6;
  else if (unit == "m") scale = 60e6;
  else return fail(fmt::format("unknown unit '{}' (use us, ms, s or m)", unit));
  double us = value * scale;
  if (!std::isfinite(us) || us > 1e15) return fail("too large");
  auto rounded = static_cast<long long>(std::llround(us));
  if (rounded <= 0) return fail("must be greater than zero");
  return Duration(rounded);
}

std::string format_duration(Duration d) {
  auto us = d.count();
  if (us % 60'000'000 == 0) return fmt::format("{}m", us / 60'000'000);
  if (us % 1'000'000 == 0) return fmt::format("{}s", us / 1'000'000);
  if (us % 1'000 == 0) return fmt::format("{}ms", us / 1'000);
  return fmt::format("{}us", us);
}

}  // namespace ptmem::util
