#include "ptmem/stats/trend.hpp"

namespace ptmem::stats {

SeriesTrend evaluate_series(const std::vector<std::pair<double, double>>& points,
                            const TrendRules& rules, double min_gain) {
  SeriesTrend s;
  size_t n = points.size();
  if (n < 2) return s;

  // Least-squares slope, centred on the means for numerical stability.
  double mt = 0, mv = 0;
  for (auto& [t, v] : points) {
    mt += t;
    mv += v;
  }
  mt /= double(n);
  mv /= double(n);
  double stt = 0, stv = 0;
  for (auto& [t, v] : points) {
    stt += (t - mt) * (t - mt);
    stv += (t - mt) * (v - mv);
  }
  if (stt > 0) s.slope_per_s = stv / stt;

  size_t steps = n - 1, half = steps / 2;
  uint32_t rises_first = 0, rises_second = 0;
  double gross_rise = 0;
  for (size_t i = 1; i < n; ++i) {
    double d = points[i].second - points[i - 1].second;
    if (d > 0) {
      ++s.rising_steps;
      gross_rise += d;
      (i - 1 < half ? rises_first : rises_second)++;
    } else if (d < 0) {
      ++s.falling_steps;
    }
  }
  uint32_t changed = s.rising_steps + s.falling_steps;
  if (changed > 0) s.rising_share = double(s.rising_steps) / double(changed);

  double net = points.back().second - points.front().second;
  s.rising = s.rising_steps >= rules.min_rising_steps && s.rising_share &&
             *s.rising_share >= rules.min_rising_share && net > 0 &&
             net >= rules.min_net_fraction * gross_rise && rises_first > 0 && rises_second > 0 &&
             net >= min_gain && s.slope_per_s && *s.slope_per_s > 0;
  return s;
}

void TrendWindow::push(double t, std::optional<double> rss, std::optional<double> fds) {
  if (points_.size() < capacity_) {
    points_.push_back({t, rss, fds});
  } else {
    points_[head_] = {t, rss, fds};
    head_ = (head_ + 1) % capacity_;
  }
}

Trend TrendWindow::evaluate(const TrendRules& rules) const {
  Trend trend;
  trend.samples = static_cast<uint32_t>(points_.size());
  // Scratch reused across calls: this runs for every process on every sweep.
  thread_local std::vector<std::pair<double, double>> rss, fds;
  rss.clear();
  fds.clear();
  for (size_t i = 0; i < points_.size(); ++i) {
    const Point& p = points_[(head_ + i) % points_.size()];
    if (p.rss) rss.emplace_back(p.t, *p.rss);
    if (p.fds) fds.emplace_back(p.t, *p.fds);
  }
  trend.rss = evaluate_series(rss, rules, rules.rss_min_gain_bytes);
  trend.fds = evaluate_series(fds, rules, rules.fds_min_gain);
  return trend;
}

}  // namespace ptmem::stats
