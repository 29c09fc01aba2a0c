// Signals under `ptmem launch`: a traced program stopped with SIGSTOP (from outside or by
// itself) stays stopped until SIGCONT, exactly as without ptmem, and a signal handler that
// allocates is traced like any other code.  The program (trace_signals) prints its pid, the
// test signals it directly.
//
// While a ptraced process is in group-stop, /proc shows 't (tracing stop)' rather than
// 'T (stopped)' (strace -p shows the same): both count as stopped here.
#include <doctest/doctest.h>

#include <csignal>
#include <sys/wait.h>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

struct Launched {
  std::string report = temp_dir() + "/report.json";
  Child ptmem_child;
  std::string seen;
  pid_t pid = -1;  // the traced program

  Launched()
      : ptmem_child(Child::Options{{ptmem::test::ptmem(), "launch", "--show-kinds", "all", "--no-default-suppressions", "--format", "json", "-o", report, "--", sample("trace_signals")},
                                   true, true, true, {}}) {
    auto line = expect_line(ptmem_child, "ready ", seen);
    if (line) pid = static_cast<pid_t>(std::stol(line->substr(6)));
  }

  /// Sends "quit", waits for ptmem; its exit status, or -1.
  int finish() {
    ptmem_child.write_stdin("quit\n");
    auto st = ptmem_child.wait(60s);
    return st ? Child::exit_code(*st) : -1;
  }

  std::string describe() {
    std::string err = ptmem_child.read_rest_stderr(0ms);
    return "program said:\n" + seen + "--- ptmem stderr ---\n" + err;
  }
};

}  // namespace

TEST_CASE("trace launch: SIGSTOP and SIGCONT from outside behave as without ptmem") {
  Launched l;
  REQUIRE(l.pid > 0);
  CHECK(l.pid != l.ptmem_child.pid());
  REQUIRE(::kill(l.pid, SIGSTOP) == 0);
  CHECK(wait_for_state(l.pid, "Tt", 10s));
  // Stopped means stopped: the request waits...
  l.ptmem_child.write_stdin("ping\n");
  auto early = l.ptmem_child.read_line(500ms);
  CHECK(!early.has_value());
  char state = proc_state(l.pid);
  CHECK((state == 'T' || state == 't'));
  // ...until SIGCONT.
  REQUIRE(::kill(l.pid, SIGCONT) == 0);
  CHECK(expect_line(l.ptmem_child, "pong", l.seen, 10s).has_value());
  CHECK(wait_for_state(l.pid, "SR", 10s));
  int status = l.finish();
  const std::string ctx = l.describe();
  INFO(ctx);
  CHECK(status == 0);
  Json rep;
  std::string error;
  REQUIRE(load_report(l.report, rep, &error));
  CHECK(rep["target"]["pid"] == l.pid);
  CHECK(rep["target"]["exit_code"] == 0);
  CHECK(leaks_of(rep).empty());
}

TEST_CASE("trace launch: a program that stops itself with SIGSTOP continues after SIGCONT") {
  Launched l;
  REQUIRE(l.pid > 0);
  l.ptmem_child.write_stdin("selfstop\n");
  REQUIRE(expect_line(l.ptmem_child, "stopping", l.seen).has_value());
  CHECK(wait_for_state(l.pid, "Tt", 10s));
  CHECK(!l.ptmem_child.read_line(300ms).has_value());  // "continued" only after SIGCONT
  REQUIRE(::kill(l.pid, SIGCONT) == 0);
  CHECK(expect_line(l.ptmem_child, "continued", l.seen, 10s).has_value());
  l.ptmem_child.write_stdin("ping\n");
  CHECK(expect_line(l.ptmem_child, "pong", l.seen, 10s).has_value());
  int status = l.finish();
  const std::string ctx = l.describe();
  INFO(ctx);
  CHECK(status == 0);
}

TEST_CASE("trace launch: a signal handler that allocates; signals reach the program unchanged") {
  const std::string f = "trace_signals.c";
  Launched l;
  REQUIRE(l.pid > 0);
  l.ptmem_child.write_stdin("raise 2\n");
  REQUIRE(expect_line(l.ptmem_child, "raised 2", l.seen).has_value());
  CHECK(l.seen.find("handled 2") != std::string::npos);
  // From outside, while the program waits in read(2).
  REQUIRE(::kill(l.pid, SIGUSR1) == 0);
  CHECK(expect_line(l.ptmem_child, "handled 3", l.seen, 10s).has_value());
  int status = l.finish();
  const std::string ctx = l.describe();
  INFO(ctx);
  CHECK(status == 0);
  Json rep;
  std::string error;
  REQUIRE(load_report(l.report, rep, &error));
  // One line, possibly two stacks (through raise() and through read()).
  auto at = leaks_at(rep, f, marker_line(f, "@leak handler"));
  CHECK(totals(at).blocks == 3);
  CHECK(totals(at).bytes == 72);
  CHECK(leaks_of(rep).size() == at.size());
  CHECK(summary(rep, "alloc_calls") == 3);
  CHECK(summary(rep, "leaked_blocks") == 3);
  CHECK(summary(rep, "leaked_bytes") == 72);
}

TEST_CASE("trace launch: a siglongjmp out of a blocked open; what follows is counted exactly") {
  const std::string f = "trace_longjmp.c";
  auto r = launch_traced({sample("trace_longjmp")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "jumped\ndone\n");
  // The FIFO's open never returned: no fd.  The open right after the jump, from a frame
  // over the dead one, is seen with its line.
  auto& fds = fd_leaks_of(r.report);
  REQUIRE(fds.size() == 1);
  CHECK(fds[0]["target"] == "/dev/null");
  REQUIRE(!fds[0]["stack"].empty());
  CHECK(frame_line(fds[0]["stack"][0]) == marker_line(f, "@fd after-jump"));
  CHECK(frame_function(fds[0]["stack"][0]) == "deeper_open");
  // The other thread opens and closes /proc files until it sees the open blocked.
  CHECK(summary(r.report, "fd_opened") == summary(r.report, "fd_closed") + 1);
  CHECK(summary(r.report, "fd_found_open") == 0);
  CHECK(expect_site(r.report, f, marker_line(f, "@leak after-jump"), 1, 1, 24) == "");
  // pthread_create's thread descriptor, the 24 bytes, and a block freed at once.
  CHECK(summary(r.report, "alloc_calls") == 3);
  CHECK(summary(r.report, "free_calls") == 1);
  CHECK(summary(r.report, "frees_of_unknown_blocks") == 0);
}
