// The /proc sampler.  A sweep reads, for every process, only what is cheap: stat, statm,
// the fd count, and status when statm moved (or every 8th sweep), from files kept open
// between sweeps.  The expensive figures (PSS and
// USS from smaps_rollup, thread rows, the command line) are read by arrange() for the rows
// that will be shown, after sorting.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "ptmem/proc/process_files.hpp"
#include "ptmem/stats/filter.hpp"
#include "ptmem/stats/sample.hpp"
#include "ptmem/stats/sort.hpp"
#include "ptmem/stats/trend.hpp"

namespace ptmem::stats {

struct Clock {
  double unix_seconds = 0;
  double monotonic_seconds = 0;
};
/// CLOCK_REALTIME and CLOCK_MONOTONIC now.
Clock real_clock();

struct SamplerConfig {
  std::string root = "/proc";
  Filter filter;
  TrendRules trend;
  std::function<Clock()> clock = real_clock;  ///< tests pass a fake one
  /// Most fds the sampler keeps open (4 per process); 0 = derived from RLIMIT_NOFILE,
  /// which the sampler raises to its hard limit.
  size_t fd_budget = 0;
};

/// How rows are ordered and which of them are shown.
struct Arrangement {
  SortKey key = SortKey::rss;
  bool reverse = false;
  size_t first = 0;        ///< first shown row (scrolling)
  size_t count = SIZE_MAX; ///< shown rows from |first|
  bool pss = false;        ///< read PSS/USS for the shown rows
  bool threads = false;    ///< read thread rows for the shown rows
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig config);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  /// One pass over /proc: every process the filter accepts, with the cheap figures, the
  /// rates since the previous sweep and the trend.  Kernel threads are counted in
  /// |system| but get no row (they have no memory of their own).  Unordered.
  Sample sweep();

  /// Sorts |rows| and fills command, PSS/USS and threads for rows [first, first+count).
  /// Sorting by PSS or USS reads smaps_rollup in descending RSS order and stops as soon
  /// as no unread row can enter the shown ones (PSS <= RSS and USS <= RSS), so the answer
  /// is exact without reading every process.
  void arrange(std::vector<ProcessRow>& rows, const Arrangement& how);

  /// Processes tracked, and fds held open for them (for tests and the benchmark).
  size_t tracked() const;
  size_t held_fds() const;
  bool procfs() const { return procfs_; }

 private:
  struct Tracked;
  Tracked& track(pid_t pid, bool& created);
  void read_smaps(ProcessRow& row);
  void read_threads(ProcessRow& row, double now);
  const std::string& command_of(Tracked& t, pid_t pid, const std::string& comm);
  const std::string& user_of(uid_t uid);

  SamplerConfig config_;
  bool procfs_ = false;
  size_t kept_processes_ = 0;  ///< processes whose files are kept open (4 fds each)
  uint64_t generation_ = 0;
  long page_size_ = 4096;
  double clock_ticks_ = 100;
  proc::TextBuffer buf_;
  std::vector<pid_t> pids_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ptmem::stats
