// The leak report: what the tables hold at exit or detach, grouped by allocating stack and
// symbolized, as a model that the text and JSON writers (render.hpp) print.  Field meanings
// follow the JSON contract; see man/ptmem.1.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "ptmem/proc/fds.hpp"
#include "ptmem/report/frame_source.hpp"
#include "ptmem/symbols/symbolizer.hpp"
#include "ptmem/track/reachability.hpp"
#include "ptmem/track/stack_table.hpp"
#include "ptmem/track/tracker.hpp"

namespace ptmem::report {

using Frame = symbols::SourceFrame;

struct TargetInfo {
  pid_t pid = 0;
  std::string command;
  std::optional<int> exit_code;  ///< the process exited with this status
  std::optional<int> signal;     ///< the process was killed by this signal
  bool detached = false;         ///< ptmem detached; the process still runs
  std::vector<std::string> argv;  ///< the full argument list (argv[0] first); may be empty
};

struct Summary {
  track::Counters counters;
  uint64_t leaked_blocks = 0;
  uint64_t leaked_bytes = 0;
  uint64_t leak_sites = 0;       ///< number of leak groups
  uint64_t fd_open_at_end = 0;   ///< every fd open at the end, 0-2 and inherited included
  uint64_t fd_leaked = 0;        ///< fds reported in fd_leaks
  bool classified = false;       ///< the reachability scan ran: the by_kind totals hold
  /// Blocks and bytes per kind, in LeakKind order (definitely, indirectly, possibly lost,
  /// still reachable).
  struct KindTotals {
    uint64_t blocks = 0, bytes = 0;
  };
  KindTotals by_kind[track::kLeakKinds];
  /// What the reachability scan read and how long it took (set when classified).
  std::optional<track::ScanStats> scan;
};

/// How a site grew while it was watched (the live view's figures at the end; --interval).
struct SiteTrend {
  double bytes_per_s = 0, fds_per_s = 0;
  double steadiness = 0;      ///< rises / (rises + falls) over the window
  bool suspect = false;       ///< kept rising over the window
  double oldest_seconds = 0;  ///< age of its oldest live block or fd, to the interval
};

struct Leak {
  std::string kind = "unclassified";  ///< a track::LeakKind name once reachability is scanned
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  std::vector<Frame> stack;           ///< stack[0] = the allocation site
  std::optional<SiteTrend> trend;     ///< with a live view: its stacks' growth, summed
};

struct FdLeak {
  int fd = -1;
  proc::FdKind kind = proc::FdKind::Other;
  std::string target;                 ///< link target; "" if /proc could not tell
  std::string description;            ///< "socket, TCP 127.0.0.1:8080"
  std::optional<uint32_t> flags;      ///< fdinfo flags
  track::FdOrigin origin = track::FdOrigin::Unknown;
  std::optional<proc::SocketInfo> socket;
  std::vector<Frame> stack;           ///< empty when the fd was not seen being created
  std::optional<SiteTrend> trend;     ///< with a live view: its stack's growth
};

/// One suppression that matched at least one leak site (memcheck's "used_suppression").
struct SuppressionUse {
  std::string name;     ///< the entry's name ("" for an LSan pattern: its pattern then)
  std::string file;     ///< where it was read; "<default>" for the built-in ones
  int line = 0;         ///< line of the entry's start in |file|
  uint64_t sites = 0;   ///< leak sites it suppressed
  uint64_t blocks = 0;
  uint64_t bytes = 0;
};

/// What one thread allocated and was still live at the end (freed by any thread: gone).
struct ThreadLive {
  pid_t tid = 0;
  std::string name;  ///< /proc comm as it ended or at the end; "" if never seen
  uint64_t blocks = 0, bytes = 0;
};

struct Report {
  TargetInfo target;
  Summary summary;
  bool memory_traced = true;
  bool fds_traced = true;
  std::vector<Leak> leaks;       ///< bytes descending, then blocks descending
  std::vector<FdLeak> fd_leaks;  ///< fd ascending
  /// Suppressions that matched; the sites they matched are taken out of |leaks| and their
  /// totals out of summary.leaked_* (and counted here).
  std::vector<SuppressionUse> suppressions_used;
  uint64_t suppressed_blocks = 0, suppressed_bytes = 0, suppressed_sites = 0;
  /// Sites of a kind --show-kinds leaves out, likewise taken out of |leaks|.
  uint64_t hidden_blocks = 0, hidden_bytes = 0, hidden_sites = 0;
  /// Processes traced with --follow-forks, each a report of its own (children empty).
  std::vector<Report> children;
  /// Every allocating site of the trace (freed or not), grouped like |leaks|, with what it
  /// allocated while traced: blocks = allocating calls, bytes = their sizes; kind
  /// "allocated".  For profiles (pprof's alloc_space); bytes descending.
  std::vector<Leak> allocated;
  /// Children were followed (--follow-forks): JSON then has "children", even if empty.
  bool children_traced = false;
  /// Live blocks at the end by allocating thread, bytes descending (then tid).
  std::vector<ThreadLive> threads;
};

struct ReportOptions {
  size_t depth = 16;           ///< frames per stack, after the SITE rule
  bool memory = true;          ///< false with --fds-only: no memory leaks reported
  bool fds = true;             ///< false with --no-fds: no fd leaks reported
  /// The scan of the target's memory at the end; null: kinds stay "unclassified".
  const track::Reachability* reachability = nullptr;
  /// Fill Report::allocated (symbolizes every allocating stack, freed or not: only for
  /// the formats that show it).
  bool allocated_sites = false;
  /// The live view's verdict on one stack, when it ran (null: no trends in the report).
  std::function<std::optional<SiteTrend>(track::StackId)> trend_of;
};

/// Builds the report.  |fds_at_end| is read_fds() of the target at the end (details of each
/// fd: kind, target, flags; the tracker's fd table should already be reconciled with it);
/// fds the tracker knows but |fds_at_end| lacks get their kind from their origin.
/// Reported fds: every fd of the tracker's table except 0, 1, 2 and FdOrigin::Inherited.
Report build_report(const track::Tracker& tracker, const track::StackTable& stacks,
                    FrameSource& frames, const TargetInfo& target,
                    const std::vector<proc::FdEntry>& fds_at_end,
                    const ReportOptions& options = {});

/// The frames a report shows for one stack (the SITE rule and |depth| applied).
std::vector<Frame> site_stack(const track::StackTable& stacks, FrameSource& frames, track::StackId id, size_t depth);

/// Identity of a shown stack: two stacks that print the same (they differ only beyond the
/// depth, or in allocator frames) are one site.
std::string frames_key(const std::vector<Frame>& frames);

/// The kind an fd created by |origin| has when /proc cannot tell.
proc::FdKind kind_from_origin(track::FdOrigin origin);

}  // namespace ptmem::report
