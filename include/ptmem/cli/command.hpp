// One file per subcommand (src/cli/<name>_command.cpp); each registers its options on the
// CLI11 app and hands back the function main() runs when that subcommand was chosen.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace ptmem::ui {
class Terminal;
}

namespace ptmem::cli {

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;  ///< returns the process exit status
};

Subcommand add_stats_command(CLI::App& root);
Subcommand add_launch_command(CLI::App& root);
Subcommand add_attach_command(CLI::App& root);

/// `ptmem stats`' Enter on a process: attach to |pid| with the defaults and show the live
/// view on |terminal|; when the user leaves it (q detaches), page through the report.
/// Returns one line for the stats view: what happened, or why the attach failed.
std::string trace_on_terminal(pid_t pid, ui::Terminal& terminal);

/// CLI11 check for durations such as "500ms" (see util/duration.hpp).
CLI::Validator duration_validator();
/// CLI11 check for an integer in 1..INT32_MAX, with a plain message.
CLI::Validator positive_integer();

/// Exit status for command-line mistakes (unknown option, bad value).
inline constexpr int kUsageExit = 2;

}  // namespace ptmem::cli
