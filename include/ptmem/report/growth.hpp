// Which call sites keep growing while a program runs (issue #9): every interval the live
// bytes and open fds of each allocating stack join a window of samples; a site is a
// suspect when a figure keeps rising by the rules `ptmem stats` applies to whole processes
// (stats::TrendRules: several rises, few falls, still rising in the window's second half,
// a net gain), so balanced traffic, a cache that fills once and a pool that grows and
// shrinks are not named.  Tracking stays in the tables; this only reads their figures.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "ptmem/stats/trend.hpp"
#include "ptmem/track/events.hpp"

namespace ptmem::report {

/// One site's figures at one moment.
struct SiteFigures {
  uint64_t live_bytes = 0, live_blocks = 0, open_fds = 0;
  /// The smallest Block::sequence among its live blocks (0: none): how old its memory is.
  uint64_t oldest_sequence = 0;
};

/// What the window says of one site.
struct SiteGrowth {
  track::StackId stack = track::kNoStack;
  SiteFigures now;
  double bytes_per_s = 0;  ///< least-squares slope of live bytes over the window
  double fds_per_s = 0;
  /// Steadiness: rises / (rises + falls) of the figure that makes it a suspect (bytes
  /// first); 0 when it never moved.
  double steadiness = 0;
  bool bytes_suspect = false, fds_suspect = false;
  /// Age of its oldest live block, to the interval (0 without live blocks).
  double oldest_seconds = 0;
  bool suspect() const { return bytes_suspect || fds_suspect; }
};

class SiteGrowthTracker {
 public:
  /// |window|: samples kept per site (the trend looks at no more, unless they span less
  /// than |min_seconds|).  No site is a suspect before |min_samples| samples spanning
  /// |min_seconds| (a pool's first rise is not yet a trend: the window must see it fall
  /// back; and at short intervals the blocks a balanced site has in flight at each sample
  /// wander for a while, which a few samples can take for a rise).
  explicit SiteGrowthTracker(size_t window = 30, size_t min_samples = 10, double min_seconds = 1.5);

  /// The figures of every site at |t| seconds (since the trace began); sites absent now
  /// count as 0.  |sequence|: the tracker's next event sequence number at |t|, which dates
  /// the blocks allocated since the previous call.
  void add(double t, uint64_t sequence, const absl::flat_hash_map<track::StackId, SiteFigures>& sites);

  /// Every site seen in the window: suspects first (fastest growth first), then by live
  /// bytes, then open fds.
  std::vector<SiteGrowth> ranking() const;

  /// The verdict for one site (zeros if never seen).
  SiteGrowth of(track::StackId stack) const;

  size_t samples() const { return times_.size(); }

 private:
  struct Series {
    std::deque<SiteFigures> points;  ///< aligned with the last points.size() of times_
  };
  SiteGrowth evaluate(track::StackId stack, const Series& s) const;
  /// When the block of sequence |seq| was allocated, to the interval.
  double time_of(uint64_t seq) const;

  size_t window_, min_samples_;
  double min_seconds_;
  std::deque<double> times_;
  std::vector<std::pair<uint64_t, double>> dated_;  ///< (sequence, t) at each add(), ever
  absl::flat_hash_map<track::StackId, Series> series_;
  stats::TrendRules rules_;
};

}  // namespace ptmem::report
