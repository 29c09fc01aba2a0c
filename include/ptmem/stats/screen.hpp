// The full-screen view: ncurses, redrawn in place, driven by keys.  The terminal is
// restored by the destructor of FullScreen, so it is clean however the loop ends.
#pragma once
#include "ptmem/stats/format.hpp"
#include "ptmem/stats/run.hpp"
#include "ptmem/stats/sampler.hpp"
#include "ptmem/util/output_file.hpp"

namespace ptmem::stats {

/// Keys (also in the man page): q quit; p pause; t thread rows; space sample now;
/// r/m rss, P pss, u uss, a anon, s swap, v vsz, f fds, T threads, g growth, F faults,
/// i pid, n name; R reverse; < > previous/next sort key; arrows, PgUp/PgDn, Home/End scroll.
/// |file|/|file_writer| (may be null) receive every sample as in batch mode.
int run_full_screen(Sampler& sampler, const StatsOptions& options, util::LineAppender* file,
                    const SampleWriter* file_writer);

}  // namespace ptmem::stats
