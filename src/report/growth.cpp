#include "ptmem/report/growth.hpp"

#include <algorithm>

namespace ptmem::report {

SiteGrowthTracker::SiteGrowthTracker(size_t window, size_t min_samples, double min_seconds)
    : window_(std::max<size_t>(window, 3)), min_samples_(std::min(min_samples, window_)), min_seconds_(min_seconds) {
  rules_.window = window_;
  // A site's bytes: any steady rise counts (a few KiB leaking is a finding); one fd is.
  rules_.rss_min_gain_bytes = 1;
  rules_.fds_min_gain = 1;
}

void SiteGrowthTracker::add(double t, uint64_t sequence, const absl::flat_hash_map<track::StackId, SiteFigures>& sites) {
  times_.push_back(t);
  dated_.emplace_back(sequence, t);
  // Past the window's count only while what remains still spans min_seconds.
  while (times_.size() > window_ && t - times_[1] >= min_seconds_) times_.pop_front();
  for (const auto& [stack, figures] : sites) {
    Series& s = series_[stack];
    // A site new in this interval was at 0 before (nothing live of it).
    while (s.points.size() + 1 < times_.size()) s.points.push_front({});
    s.points.push_back(figures);
  }
  for (auto it = series_.begin(); it != series_.end();) {
    Series& s = it->second;
    if (s.points.size() < times_.size()) s.points.push_back({});  // absent now: 0
    while (s.points.size() > times_.size()) s.points.pop_front();
    bool any = false;
    for (const SiteFigures& p : s.points) any |= p.live_blocks || p.open_fds;
    if (!any) series_.erase(it++);  // nothing live in the whole window: forget it
    else ++it;
  }
}

SiteGrowth SiteGrowthTracker::evaluate(track::StackId stack, const Series& s) const {
  SiteGrowth g;
  g.stack = stack;
  if (s.points.empty()) return g;
  g.now = s.points.back();
  std::vector<std::pair<double, double>> bytes, fds;
  const size_t skip = times_.size() - s.points.size();
  for (size_t i = 0; i < s.points.size(); ++i) {
    bytes.emplace_back(times_[skip + i], static_cast<double>(s.points[i].live_bytes));
    fds.emplace_back(times_[skip + i], static_cast<double>(s.points[i].open_fds));
  }
  auto b = stats::evaluate_series(bytes, rules_, rules_.rss_min_gain_bytes);
  auto f = stats::evaluate_series(fds, rules_, rules_.fds_min_gain);
  g.bytes_per_s = b.slope_per_s.value_or(0);
  g.fds_per_s = f.slope_per_s.value_or(0);
  const bool enough = times_.size() >= min_samples_ && times_.back() - times_.front() >= min_seconds_;
  g.bytes_suspect = enough && b.rising;
  g.fds_suspect = enough && f.rising;
  const auto& steady = (b.rising || !f.rising) ? b : f;
  g.steadiness = steady.rising_share.value_or(0);
  if (g.now.oldest_sequence) g.oldest_seconds = times_.back() - time_of(g.now.oldest_sequence);
  return g;
}

double SiteGrowthTracker::time_of(uint64_t seq) const {
  // The first moment whose sequence had passed |seq|: the block was made in the interval
  // that ended then (its age is known to the interval, and not overstated).
  auto it = std::upper_bound(dated_.begin(), dated_.end(), seq,
                             [](uint64_t v, const std::pair<uint64_t, double>& d) { return v < d.first; });
  return it == dated_.end() ? dated_.back().second : it->second;
}

SiteGrowth SiteGrowthTracker::of(track::StackId stack) const {
  auto it = series_.find(stack);
  return it == series_.end() ? SiteGrowth{stack} : evaluate(stack, it->second);
}

std::vector<SiteGrowth> SiteGrowthTracker::ranking() const {
  std::vector<SiteGrowth> out;
  out.reserve(series_.size());
  for (const auto& [stack, s] : series_) out.push_back(evaluate(stack, s));
  std::sort(out.begin(), out.end(), [](const SiteGrowth& a, const SiteGrowth& b) {
    if (a.suspect() != b.suspect()) return a.suspect();
    if (a.suspect() && a.bytes_per_s != b.bytes_per_s) return a.bytes_per_s > b.bytes_per_s;
    if (a.suspect() && a.fds_per_s != b.fds_per_s) return a.fds_per_s > b.fds_per_s;
    if (a.now.live_bytes != b.now.live_bytes) return a.now.live_bytes > b.now.live_bytes;
    if (a.now.open_fds != b.now.open_fds) return a.now.open_fds > b.now.open_fds;
    return a.stack < b.stack;
  });
  return out;
}

}  // namespace ptmem::report
