// Leak suspicion: a process is suspect when its RSS or its fd count *keeps rising* over a
// sliding window of samples, as opposed to having grown once, or going up and down.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "ptmem/stats/sample.hpp"

namespace ptmem::stats {

/// The rules, all of which must hold for a figure to "keep rising" over the window:
///  - it rose in at least |min_rising_steps| steps (one jump is not a trend);
///  - rises are at least |min_rising_share| of the steps that changed it (fluctuation
///    gives about one half);
///  - its net gain (last - first) is at least |min_net_fraction| of the sum of its rises
///    (a sawtooth that gives memory back is not a leak);
///  - it rose in both halves of the window (the growth is still going on);
///  - its net gain is at least |min_gain| (RSS: a few pages of stack are not a leak).
struct TrendRules {
  size_t window = 30;
  uint32_t min_rising_steps = 3;
  double min_rising_share = 0.75;
  double min_net_fraction = 0.5;
  double rss_min_gain_bytes = 64 * 1024;
  double fds_min_gain = 2;
};

/// Evaluates one series of (time s, value) points, oldest first.
SeriesTrend evaluate_series(const std::vector<std::pair<double, double>>& points,
                            const TrendRules& rules, double min_gain);

/// The last |rules.window| samples of one process.
class TrendWindow {
 public:
  explicit TrendWindow(size_t capacity) : capacity_(capacity < 2 ? 2 : capacity) {}
  void push(double t, std::optional<double> rss, std::optional<double> fds);
  size_t size() const { return points_.size(); }
  Trend evaluate(const TrendRules& rules) const;

 private:
  struct Point {
    double t;
    std::optional<double> rss, fds;
  };
  size_t capacity_;
  size_t head_ = 0;  ///< index of the oldest point once full
  std::vector<Point> points_;
};

}  // namespace ptmem::stats
