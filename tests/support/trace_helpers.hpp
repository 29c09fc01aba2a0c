// Helpers for the tracer's end-to-end tests (tests/e2e/trace_*_test.cpp): run `ptmem launch`
// / `ptmem attach` with a JSON report, find expected lines through the markers in the
// samples' sources ("// @leak NAME", "// @fd NAME", "// @frame NAME"), and pick leak groups
// and fd entries out of the report.  Every wait has a timeout; processes are ended by PID
// (ptmem::test::Child).
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <sys/types.h>
#include <vector>

#include "process.hpp"

namespace ptmem::test {

using Json = nlohmann::json;

/// The options every launch_traced/AttachSession run starts with: every leak kind shown
/// and no built-in suppression, so a test sees all the target left (its own options come
/// after and win: --show-kinds takes the last one).
inline const std::vector<std::string> kEveryLeak{"--show-kinds", "all", "--no-default-suppressions"};

/// libstdc++ (GCC 12) mallocs its emergency exception pool in a library constructor before
/// main and never frees it: every dynamically linked C++ sample has this one block live at
/// exit, in a stack without any program frame.
inline constexpr long kLibstdcxxPoolBytes = 72704;

/// A leak site of a sample: its marker, the function holding it, and what the report must
/// show there (groups of stacks, blocks, bytes).  Shared by the tests that run one sample
/// under different conditions (another allocator, another build).
struct SampleSite {
  const char* marker;
  const char* function;
  long groups, blocks, bytes;
};

/// trace_malloc.c: one site per function; leak_aligned holds three.
inline constexpr SampleSite kMallocSites[] = {
    {"@leak small", "leak_small", 1, 1, 40},
    {"@leak calloc", "leak_calloc", 1, 1, 120},
    {"@leak zero", "leak_zero", 1, 1, 0},
    {"@leak loop", "leak_loop", 1, 5, 320},
    {"@leak posix_memalign", "leak_aligned", 1, 1, 100},
    {"@leak aligned_alloc", "leak_aligned", 1, 1, 256},
    {"@leak valloc", "leak_aligned", 1, 1, 1000},
};

/// trace_cxx.cpp.  `new std::string(40, 'x')` makes two stacks on one line: the object (32)
/// from operator new called by the user's line, and its buffer (41) allocated inside
/// libstdc++; `new std::vector<int>(100)` likewise: the object (24) and its buffer (400).
inline constexpr SampleSite kCxxSites[] = {
    {"@leak new-int", "leak_new", 1, 1, 4},
    {"@leak new-array", "leak_new", 1, 1, 100},
    {"@leak string", "leak_containers", 2, 2, 73},
    {"@leak vector", "leak_containers", 2, 2, 424},
};

/// Every site of |sites| (markers in |file|) shows exactly its groups, blocks and bytes
/// (doctest CHECKs, one per site).
void check_sites(const Json& report, const std::string& file, std::span<const SampleSite> sites);

/// Absolute path of samples/<rel> in the source tree ($PTMEM_SOURCE_DIR, else found from the
/// working directory or $BUILD_DIR/..).
std::string sample_source(const std::string& rel);

/// Line number of the one line of samples/<rel> carrying the comment "// |marker|" (e.g.
/// marker "@leak small"), the marker ending the line or followed by a space.  Throws std::runtime_error when it is missing or not unique, so a test never
/// runs against a guessed line.
int marker_line(const std::string& rel, const std::string& marker);

/// What one ptmem run left behind.
struct TraceRun {
  int status = -1;  ///< ptmem's exit status (128+N for a signal), -1 on timeout
  std::string out;  ///< ptmem's stdout, i.e. the traced program's
  std::string err;  ///< ptmem's stderr
  std::string report_path;
  bool parsed = false;  ///< the report file exists and is valid JSON
  std::string parse_error;
  Json report;
  /// Everything above, for failure messages.
  std::string describe() const;
};

/// `ptmem launch --format json -o TMP/report.json OPTIONS -- PROGRAM...`, to completion.
/// |env|: extra "NAME=value" entries for ptmem, which the program inherits.
TraceRun launch_traced(const std::vector<std::string>& program,
                       const std::vector<std::string>& options = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(120),
                       const std::vector<std::string>& env = {});

/// Reads and parses a JSON report.
bool load_report(const std::string& path, Json& out, std::string* error);

std::string base_name(const std::string& path);

/// Frame accessors that accept null / missing fields: "" or -1.
std::string frame_file(const Json& frame);  ///< basename of "file"
int frame_line(const Json& frame);
std::string frame_function(const Json& frame);
std::string frame_module(const Json& frame);  ///< basename of "module"

/// The report's "leaks" array (empty when absent).
const Json& leaks_of(const Json& report);
/// Leak groups whose site (stack[0]) is file:line (file compared by basename).
std::vector<Json> leaks_at(const Json& report, const std::string& file, int line);
/// Leak groups whose site function is |function| (for builds without line info).
std::vector<Json> leaks_in_function(const Json& report, const std::string& function);
/// Leak groups whose stack contains a frame at file:line anywhere.
std::vector<Json> leaks_through(const Json& report, const std::string& file, int line);

struct Totals {
  long groups = 0, blocks = 0, bytes = 0;
};
Totals totals(const std::vector<Json>& groups);
/// "" when the leak groups whose site is file:line number exactly |groups| and hold |blocks|
/// blocks and |bytes| bytes in all; otherwise a description of what is there instead, so that
/// `CHECK(expect_site(...) == "")` shows the difference.
std::string expect_site(const Json& report, const std::string& file, int line, long groups, long blocks,
                        long bytes);
/// Integer field of report["summary"], or LONG_MIN when missing / not a number.
long summary(const Json& report, const std::string& field);

/// One line per leak group ("blocks bytes file:line function module"), for messages.
std::string leak_table(const Json& report);
/// One line per fd leak, for messages.
std::string fd_table(const Json& report);

/// The report's "fd_leaks" array (empty when absent).
const Json& fd_leaks_of(const Json& report);
/// The fd_leaks entry for |fd|, or nullptr.
const Json* fd_leak(const Json& report, int fd);

/// Lines "fd NAME NUMBER" printed by the fd samples, in order: name -> number.
std::map<std::string, int> fd_lines(const std::string& program_output);

/// fds this test process would pass on to a child: open and not close-on-exec.  0, 1 and 2
/// always count (Child puts pipes there).
std::vector<int> inheritable_fds();

/// stderr is exactly one non-empty line starting with |prefix|.
bool one_line(const std::string& err, const std::string& prefix = "ptmem: ");

/// State letter of /proc/PID/stat ('R', 'S', 'T', 't', 'Z'...), or 0 when unreadable.
char proc_state(pid_t pid);
/// Polls /proc until the state is one of |states| (the kernel offers no other way to see a
/// stop of a process that is not our child).  True when reached before the timeout.
bool wait_for_state(pid_t pid, const std::string& states, std::chrono::milliseconds timeout);

/// `ptmem attach --format json -o TMP/report.json OPTIONS PID`, with ptmem's stderr read
/// line by line (it is run through `sh -c 'exec ... 2>&1'`, so the Child's stdout is
/// ptmem's stderr and the Child's pid is ptmem's).
class AttachSession {
 public:
  explicit AttachSession(pid_t target, const std::vector<std::string>& options = {});
  /// Waits for "ptmem: attached to process PID".
  bool wait_attached(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// Sends |sig| to ptmem, waits for "ptmem: detached from process PID" and for ptmem to
  /// exit.  True when both happened in time.
  bool detach(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  /// Waits for ptmem to end on its own (--duration, target exit), reading its stderr.
  bool wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  /// Parses the report file (after ptmem exited, or after it said it wrote one).
  bool load();
  /// Reads ptmem's stderr until a line contains |needle|.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout);

  pid_t ptmem_pid() const { return child_->pid(); }
  int status() const { return status_; }  ///< exit status, -1 while unknown
  bool saw_detached() const { return saw_detached_; }
  const std::string& log() const { return log_; }  ///< ptmem's stderr so far
  const Json& report() const { return report_; }
  const std::string& report_path() const { return report_path_; }
  std::string describe() const;

 private:
  pid_t target_;
  std::string report_path_;
  std::unique_ptr<Child> child_;
  std::string log_;
  int status_ = -1;
  bool saw_detached_ = false;
  Json report_;
  std::string parse_error_;
};

/// Reads program output lines until one contains |needle|; appends everything read to
/// |seen| (for messages).  nullopt on timeout/EOF.
std::optional<std::string> expect_line(Child& child, const std::string& needle, std::string& seen,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace ptmem::test
