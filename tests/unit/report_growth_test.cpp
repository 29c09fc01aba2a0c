// Which call sites the live view names as growing (report::SiteGrowthTracker), on scripted
// series: a drip, balanced traffic with its in-flight blocks, a cache, a pool, and the
// minimum samples and seconds before anything is named.
#include <doctest/doctest.h>

#include <random>

#include "ptmem/report/growth.hpp"

using ptmem::report::SiteFigures;
using ptmem::report::SiteGrowthTracker;

namespace {

using Sites = absl::flat_hash_map<ptmem::track::StackId, SiteFigures>;

SiteFigures bytes(uint64_t live_bytes, uint64_t blocks) { return {live_bytes, blocks, 0, 0}; }

}  // namespace

TEST_CASE("site growth: a drip is named once 10 samples span 1.5 s; bounded traffic never") {
  for (double interval : {0.05, 0.1, 0.2, 1.0}) {
    CAPTURE(interval);
    SiteGrowthTracker g;
    std::mt19937 rng(42);
    double named_at = -1;
    for (int i = 1; i <= int(20 / interval); ++i) {
      const double t = i * interval;
      Sites sites;
      // The drip: 4 KiB every 100 ms.
      sites[1] = bytes(uint64_t(t * 10) * 4096, uint64_t(t * 10));
      // Four threads' blocks in flight at the sample: 0-4 blocks of 16-2015 bytes.
      uint64_t n = rng() % 5, b = 0;
      for (uint64_t k = 0; k < n; ++k) b += 16 + rng() % 2000;
      if (n) sites[2] = bytes(b, n);
      // A cache: full at once, then flat.
      sites[3] = bytes(64 * 1024, 64);
      g.add(t, uint64_t(i) * 1000, sites);
      auto drip = g.of(1);
      if (drip.suspect() && named_at < 0) named_at = t;
      CHECK_FALSE(g.of(2).suspect());
      CHECK_FALSE(g.of(3).suspect());
    }
    // Not before 10 samples, nor before they span 1.5 s; then at once.
    const double expected = std::max(10 * interval, 1.5 + interval);
    CHECK(named_at == doctest::Approx(expected).epsilon(0.01));
    CHECK(g.of(1).bytes_per_s == doctest::Approx(40960).epsilon(0.05));
  }
}

TEST_CASE("site growth: in-flight blocks that wander up for a second are not yet a trend") {
  // Balanced traffic whose blocks in flight at each sample climb 0 -> 3 over the first
  // second after the attach (threads catching up), then wander in 1-3: at 100 ms, the first
  // 10 samples alone look like a rise; the 1.5 s span rules it out.
  SiteGrowthTracker g;
  const uint64_t climb[] = {0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 2, 3, 1, 3, 2, 1, 2, 3, 1, 2, 3, 1, 2, 2, 1};
  int i = 0;
  for (uint64_t n : climb) {
    ++i;
    Sites sites;
    if (n) sites[7] = bytes(n * 1000 + uint64_t(i), n);
    g.add(i * 0.1, uint64_t(i), sites);
    CAPTURE(i);
    CHECK_FALSE(g.of(7).suspect());
  }
}

TEST_CASE("site growth: a pool that grows and empties, and a site of fds") {
  SiteGrowthTracker g;
  for (int i = 1; i <= 60; ++i) {
    Sites sites;
    sites[1] = bytes(uint64_t(i % 4) * 2048, uint64_t(i % 4));  // sawtooth
    sites[2] = {0, 0, uint64_t(i / 2), 0};                        // one fd every 2 samples
    g.add(i * 0.2, uint64_t(i), sites);
  }
  CHECK_FALSE(g.of(1).suspect());
  CHECK(g.of(2).fds_suspect);
  CHECK(g.of(2).fds_per_s == doctest::Approx(2.5).epsilon(0.05));
}
