// What one sweep of the sampler produces: system figures and one row per process (and,
// on request, per thread).  Every figure that could not be read is an empty optional and
// is printed as "-" or null, never as 0.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ptmem::stats {

struct SystemFigures {
  std::optional<uint64_t> mem_total_bytes, mem_available_bytes, swap_used_bytes;
  std::optional<uint64_t> processes, threads;  ///< all of them, kernel threads included
};

/// Trend of one figure (RSS or fd count) over the leak-suspicion window.
struct SeriesTrend {
  std::optional<double> slope_per_s;    ///< least-squares slope over the window
  std::optional<double> rising_share;   ///< rises / (rises + falls); unknown if it never moved
  uint32_t rising_steps = 0, falling_steps = 0;
  bool rising = false;                  ///< "keeps rising" by the rules in trend.hpp
};

struct Trend {
  uint32_t samples = 0;  ///< samples in the window
  SeriesTrend rss, fds;
  bool suspect() const { return rss.rising || fds.rising; }
};

struct ThreadRow {
  pid_t tid = 0;
  std::string name;
  char state = '?';
  std::optional<double> cpu_percent, minflt_per_s, majflt_per_s;
};

struct ProcessRow {
  pid_t pid = 0, ppid = 0;
  std::optional<uid_t> uid;
  std::string user;     ///< login name, or the uid in decimal; "" if unknown
  std::string name;     ///< comm (at most 15 characters)
  std::string command;  ///< command line, "[name]" when it has none (zombies)
  char state = '?';
  std::optional<uint32_t> thread_count, fds;
  std::optional<uint64_t> vsz_bytes, rss_bytes, anon_bytes, file_bytes, shmem_bytes, swap_bytes;
  std::optional<uint64_t> pss_bytes, uss_bytes;  ///< only with --pss, only for shown rows
  std::optional<double> mem_percent, rss_growth_bytes_per_s, minflt_per_s, majflt_per_s,
      cpu_percent;
  Trend trend;
  bool pss_read = false;      ///< smaps_rollup was tried in this sweep
  bool threads_read = false;  ///< |threads| was filled in this sweep
  std::vector<ThreadRow> threads;
};

struct Sample {
  uint64_t index = 0;        ///< 1 for the first sweep
  double time = 0;           ///< Unix time of the sweep, seconds
  double monotonic = 0;      ///< CLOCK_MONOTONIC seconds, for rates
  double interval_ms = 0;    ///< the requested interval
  SystemFigures system;
  std::vector<ProcessRow> processes;
};

}  // namespace ptmem::stats
