// The report's two forms: text for a person (close to what memcheck and LeakSanitizer users
// know) and JSON for programs (the contract in man/ptmem.1).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "ptmem/report/report.hpp"

namespace ptmem::report {

/// "SIGSEGV" for 11; "SIG42" for a signal without a name.
std::string signal_name(int sig);

/// The whole text report, ending with a newline.
std::string to_text(const Report& report);

/// The JSON object of the contract (ordered keys, "version": 1).
nlohmann::ordered_json to_json(const Report& report);
/// to_json(report) serialized with 2-space indentation and a final newline.
std::string to_json_text(const Report& report);

}  // namespace ptmem::report
