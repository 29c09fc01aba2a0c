// `ptmem stats` as a whole: the sampling loop, in batch (one block per sample appended)
// or full-screen (redrawn in place, with keys), with optional streaming to a file.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "ptmem/stats/format.hpp"
#include "ptmem/stats/sampler.hpp"
#include "ptmem/util/duration.hpp"

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
};

/// Runs until --count samples are taken, q is pressed, or SIGINT/SIGTERM/SIGHUP arrives
/// (all of which end with status 0 and a clean terminal).  1 when the output cannot be
/// written.
int run_stats(const StatsOptions& options);

/// Set by the signal handlers run_stats installs; the loops poll it.
bool stop_requested();

}  // namespace ptmem::stats
