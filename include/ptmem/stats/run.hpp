// `ptmem stats` as a whole: the sampling loop, in batch (one block per sample appended)
// or full-screen (redrawn in place, with keys), with optional streaming to a file.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ptmem/stats/format.hpp"
#include "ptmem/stats/sampler.hpp"
#include "ptmem/util/duration.hpp"

namespace ptmem::ui {
class Terminal;
}

namespace ptmem::stats {

struct StatsOptions {
  SamplerConfig sampler;
  View view;
  std::optional<size_t> top;                        ///< --top N
  util::Duration interval = std::chrono::seconds(1);
  std::optional<uint64_t> count;                    ///< --count N: samples, then exit
  bool batch = false;                               ///< --batch: never full-screen
  Format format = Format::table;
  std::string output;                               ///< -o FILE; "" = stdout only
  /// Enter on a process in the full-screen view: trace it on this terminal until the user
  /// leaves, then return one line to show (what happened).  Unset: Enter does nothing.
  std::function<std::string(pid_t pid, ui::Terminal& terminal)> trace;
};

/// Runs until --count samples are taken, q is pressed, or SIGINT/SIGTERM/SIGHUP arrives
/// (all of which end with status 0 and a clean terminal).  1 when the output cannot be
/// written.
int run_stats(const StatsOptions& options);

/// Set by the signal handlers run_stats installs; the loops poll it.
bool stop_requested();
/// (Re)installs those handlers: after a trace opened from the view had its own.
void install_stop_handlers();

}  // namespace ptmem::stats
