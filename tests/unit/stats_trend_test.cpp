#include <doctest/doctest.h>

#include "ptmem/stats/trend.hpp"

using namespace ptmem::stats;

namespace {

constexpr double MiB = 1024.0 * 1024.0;

// RSS series, one sample per second.
Trend run(const std::vector<double>& rss, const TrendRules& rules = {}) {
  TrendWindow w(rules.window);
  for (size_t i = 0; i < rss.size(); ++i) w.push(double(i), rss[i], 10.0);
  return w.evaluate(rules);
}

}  // namespace

TEST_CASE("trend: steady growth is suspect, with its slope and share") {
  std::vector<double> rss;
  for (int i = 0; i < 10; ++i) rss.push_back(100 * MiB + i * 8 * MiB);
  auto t = run(rss);
  CHECK(t.samples == 10);
  CHECK(t.rss.rising);
  CHECK(t.suspect());
  CHECK(t.rss.slope_per_s == doctest::Approx(8 * MiB));
  CHECK(t.rss.rising_share == 1.0);
  CHECK(t.rss.rising_steps == 9);
  CHECK(t.rss.falling_steps == 0);
  CHECK_FALSE(t.fds.rising);
  CHECK(t.fds.slope_per_s == 0.0);
  CHECK_FALSE(t.fds.rising_share);  // never moved
}

TEST_CASE("trend: slow growth with flat steps between rises is still suspect") {
  auto t = run({10 * MiB, 10 * MiB, 11 * MiB, 11 * MiB, 12 * MiB, 12 * MiB, 13 * MiB, 13 * MiB});
  CHECK(t.rss.rising);
  CHECK(t.rss.rising_share == 1.0);
  CHECK(t.rss.rising_steps == 3);
}

TEST_CASE("trend: fluctuation is not suspect") {
  auto t = run({10 * MiB, 12 * MiB, 10 * MiB, 12 * MiB, 10 * MiB, 12 * MiB, 10 * MiB, 12 * MiB});
  CHECK_FALSE(t.suspect());
  CHECK(t.rss.rising_share == doctest::Approx(4.0 / 7));  // 4 rises, 3 falls
}

TEST_CASE("trend: a sawtooth that gives memory back is not suspect") {
  // Rises three times by 1 MiB then drops back, twice: share 0.75 but no net gain.
  auto t = run({10 * MiB, 11 * MiB, 12 * MiB, 13 * MiB, 10 * MiB, 11 * MiB, 12 * MiB, 13 * MiB, 10 * MiB});
  CHECK(t.rss.rising_steps == 6);
  CHECK(t.rss.falling_steps == 2);
  CHECK_FALSE(t.rss.rising);
}

TEST_CASE("trend: one jump, or growth that stopped, is not 'keeps rising'") {
  CHECK_FALSE(run({10 * MiB, 10 * MiB, 50 * MiB, 50 * MiB, 50 * MiB, 50 * MiB}).suspect());
  // Grew during the first half of the window, flat for the second half.
  CHECK_FALSE(run({10 * MiB, 11 * MiB, 12 * MiB, 13 * MiB, 14 * MiB, 14 * MiB, 14 * MiB, 14 * MiB,
                   14 * MiB, 14 * MiB})
                  .suspect());
}

TEST_CASE("trend: a few pages of growth are below the minimum gain") {
  auto t = run({1 * MiB, 1 * MiB + 4096, 1 * MiB + 8192, 1 * MiB + 12288, 1 * MiB + 16384});
  CHECK(t.rss.rising_steps == 4);
  CHECK_FALSE(t.rss.rising);
}

TEST_CASE("trend: three samples are too few, and the window slides") {
  CHECK_FALSE(run({10 * MiB, 20 * MiB, 30 * MiB}).suspect());
  TrendRules rules;
  rules.window = 5;
  // Growth long ago slides out of a 5-sample window.
  std::vector<double> rss{1 * MiB, 2 * MiB, 3 * MiB, 4 * MiB, 5 * MiB};
  CHECK(run(rss, rules).suspect());
  for (int i = 0; i < 5; ++i) rss.push_back(5 * MiB);
  auto t = run(rss, rules);
  CHECK(t.samples == 5);
  CHECK_FALSE(t.suspect());
  CHECK(t.rss.slope_per_s == 0.0);
}

TEST_CASE("trend: fd growth is suspect on its own, unknown points are skipped") {
  TrendWindow w(30);
  for (int i = 0; i < 8; ++i) w.push(double(i) * 0.5, 10 * MiB, i == 3 ? std::nullopt : std::optional<double>(3 + i));
  auto t = w.evaluate({});
  CHECK(t.fds.rising);
  CHECK_FALSE(t.rss.rising);
  CHECK(t.suspect());
  CHECK(t.fds.slope_per_s == doctest::Approx(2.0));  // one fd per half second
  CHECK(t.fds.rising_steps == 6);                    // 7 known points
}

TEST_CASE("trend: unknown everywhere gives no figures and no suspicion") {
  TrendWindow w(30);
  for (int i = 0; i < 8; ++i) w.push(double(i), std::nullopt, std::nullopt);
  auto t = w.evaluate({});
  CHECK(t.samples == 8);
  CHECK_FALSE(t.rss.slope_per_s);
  CHECK_FALSE(t.fds.slope_per_s);
  CHECK_FALSE(t.suspect());
}
