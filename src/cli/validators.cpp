#include "ptmem/cli/command.hpp"
#include "ptmem/util/duration.hpp"

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

}  // namespace ptmem::cli
