#include "ptmem/cli/command.hpp"
#include "ptmem/util/duration.hpp"

#include <charconv>
#include <cstdint>
#include <fmt/format.h>

namespace ptmem::cli {

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        std::string error;
        if (!util::parse_duration(value, &error)) return error;
        return {};
      },
      "DURATION");
}

// CLI11's PositiveNumber prints a 300-digit range; say it plainly.
CLI::Validator positive_integer() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n, 10);
        if (value.empty() || ec != std::errc() || p != value.data() + value.size() || n == 0 ||
            n > uint64_t(INT32_MAX))
          return fmt::format("'{}' is not a positive integer", value);
        return {};
      },
      "N");
}

}  // namespace ptmem::cli
