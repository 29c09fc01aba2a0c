// `ptmem attach` against running samples: exact figures for what happens while attached,
// a target that keeps computing correctly through 20 attach/detach cycles, --duration, a
// target exiting while traced, and an fd leaked every 200 ms.  The targets are driven line
// by line on stdin; ptmem's progress is read from its stderr ("attached" / "detached").
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <fstream>

#include "../support/process.hpp"
#include "../support/attach_target.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

const std::string kTarget = "trace_attach_target.c";

}  // namespace

TEST_CASE("trace attach: exact leaks made while attached to a paused multi-threaded target") {
  auto t = start({sample("trace_attach_target")});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  t.write_stdin("leak 3\n");  // before the attach: not in the report
  REQUIRE(expect_line(t, "leaked 3", seen));
  t.write_stdin("pause\n");
  REQUIRE(expect_line(t, "paused", seen));

  AttachSession s(t.pid());
  REQUIRE(s.wait_attached());
  t.write_stdin("leak 5\n");
  REQUIRE(expect_line(t, "leaked 5", seen));
  CHECK(sum_ok(t, 100, seen));
  REQUIRE(s.detach(SIGINT));
  const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
  INFO(ctx);
  CHECK(s.status() == 0);
  REQUIRE(s.load());
  auto& rep = s.report();
  CHECK(rep["target"]["pid"] == t.pid());
  CHECK(rep["target"]["detached"] == true);
  CHECK(rep["target"]["exit_code"].is_null());
  CHECK(rep["target"]["signal"].is_null());
  // Only the 5 blocks of "leak 5" (24 bytes each) are live and were allocated while traced.
  CHECK(expect_site(rep, "trace_attach_target.c", marker_line(kTarget, "@leak attach"), 1, 5, 120) == "");
  CHECK(leaks_of(rep).size() == 1);
  CHECK(summary(rep, "alloc_calls") == 6);  // 5 x malloc(24) + sum's malloc(801)
  CHECK(summary(rep, "free_calls") == 1);
  CHECK(summary(rep, "frees_of_unknown_blocks") == 0);
  CHECK(summary(rep, "leaked_blocks") == 5);
  CHECK(summary(rep, "leaked_bytes") == 120);
  CHECK(summary(rep, "total_allocated_bytes") == 921);
  CHECK(summary(rep, "peak_live_bytes") == 921);
  CHECK(summary(rep, "threads_seen") == 5);

  // The target is unharmed and runs on untraced.
  t.write_stdin("resume\n");
  REQUIRE(expect_line(t, "resumed", seen));
  long r0 = rounds(t, seen);
  CHECK(r0 >= 0);
  CHECK(progresses(t, r0, seen) == "");
  CHECK(sum_ok(t, 1000, seen));
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace attach: attach and detach 20 times; the busy target's checksums stay correct") {
  auto t = start({sample("trace_attach_target")});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  const int signals[] = {SIGINT, SIGTERM, SIGHUP};
  long last = rounds(t, seen);
  REQUIRE(last >= 0);
  for (int i = 0; i < 20; i++) {
    CAPTURE(i);
    AttachSession s(t.pid());
    REQUIRE(s.wait_attached());
    // While attached, the workers hit breakpoints all the time.
    CHECK(sum_ok(t, 1000 + i, seen));
    CHECK(rounds(t, seen) >= 0);
    REQUIRE(s.detach(signals[i % 3]));
    s.load();
    const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
    INFO(ctx);
    CHECK(s.status() == 0);
    REQUIRE(s.report().is_object());
    CHECK(s.report()["target"]["detached"] == true);
    CHECK(summary(s.report(), "alloc_calls") > 0);
    CHECK(summary(s.report(), "threads_seen") == 5);
    // After the detach: still correct, still running.
    REQUIRE(progresses(t, last, seen) == "");
    last = rounds(t, seen);
    REQUIRE(last >= 0);
  }
  CHECK(sum_ok(t, 5000, seen));
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace attach: --duration detaches by itself and the target keeps running") {
  auto t = start({sample("trace_attach_target")});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  AttachSession s(t.pid(), {"--duration", "500ms"});
  REQUIRE(s.wait_attached());
  REQUIRE(s.wait_exit(60s));
  const std::string ctx = s.describe();
  INFO(ctx);
  CHECK(s.status() == 0);
  CHECK(s.saw_detached());
  REQUIRE(s.load());
  CHECK(s.report()["target"]["detached"] == true);
  long r = rounds(t, seen);
  CHECK(r >= 0);
  CHECK(progresses(t, r, seen) == "");
  CHECK(sum_ok(t, 77, seen));
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace attach: the target exiting ends the trace, with its exit status in the report") {
  auto t = start({sample("trace_attach_target")});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  t.write_stdin("pause\n");
  REQUIRE(expect_line(t, "paused", seen));
  AttachSession s(t.pid());
  REQUIRE(s.wait_attached());
  t.write_stdin("leak 2\n");
  REQUIRE(expect_line(t, "leaked 2", seen));
  // quit: each of the 4 workers finishes one round (malloc, realloc, calloc, 2 frees) and
  // exits, then main returns 0.
  t.write_stdin("quit\n");
  REQUIRE(s.wait_exit(60s));
  const std::string ctx = s.describe();
  INFO(ctx);
  CHECK(s.status() == 0);
  REQUIRE(s.load());
  auto& rep = s.report();
  CHECK(rep["target"]["exit_code"] == 0);
  CHECK(rep["target"]["detached"] == false);
  CHECK(expect_site(rep, "trace_attach_target.c", marker_line(kTarget, "@leak attach"), 1, 2, 48) == "");
  CHECK(leaks_of(rep).size() == 1);
  CHECK(summary(rep, "alloc_calls") == 2 + 4 * 3);
  // The workers' 8 frees, plus whatever glibc frees of its own at thread exit (tcache).
  CHECK(summary(rep, "free_calls") - summary(rep, "frees_of_unknown_blocks") == 8);
  CHECK(summary(rep, "leaked_blocks") == 2);
  CHECK(summary(rep, "leaked_bytes") == 48);
  CHECK(exited_zero(t));
}

TEST_CASE("trace attach: an fd leaked every 200 ms; fds from before the attach have no known origin") {
  const std::string f = "trace_fd_drip.c";
  auto dir = std::filesystem::canonical(temp_dir()).string();
  auto t = start({sample("trace_fd_drip"), dir});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  // Every "fd drip N" line the target printed, in order, from the lines read so far.
  auto drip_fds = [&seen] {
    std::vector<int> fds;
    std::istringstream in(seen);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("fd drip ", 0) == 0) fds.push_back(std::stoi(line.substr(8)));
    return fds;
  };
  REQUIRE(expect_line(t, "fd drip ", seen, 10s));
  REQUIRE(expect_line(t, "fd drip ", seen, 10s));
  t.write_stdin("stop\n");
  auto stopped = expect_line(t, "stopped total=", seen);
  REQUIRE(stopped);
  size_t before = std::stoul(stopped->substr(14));

  AttachSession s(t.pid(), {"--fds-only"});
  REQUIRE(s.wait_attached());
  t.write_stdin("go\n");
  REQUIRE(expect_line(t, "going", seen));
  for (int i = 0; i < 5; i++) REQUIRE(expect_line(t, "fd drip ", seen, 10s));
  t.write_stdin("stop\n");
  stopped = expect_line(t, "stopped total=", seen);
  REQUIRE(stopped);
  size_t total = std::stoul(stopped->substr(14));
  auto fds = drip_fds();
  REQUIRE(fds.size() == total);
  REQUIRE(s.detach(SIGINT));
  const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
  INFO(ctx);
  CHECK(s.status() == 0);
  REQUIRE(s.load());
  auto& rep = s.report();
  // Every drip fd is open at detach: the ones from before the attach are there too, found
  // in /proc, with no stack; the ones opened while attached have the @fd drip site.
  size_t matched = 0;
  for (size_t i = 0; i < fds.size(); i++) {
    CAPTURE(fds[i]);
    const Json* e = fd_leak(rep, fds[i]);
    REQUIRE(e != nullptr);
    CHECK((*e)["kind"] == "file");
    CHECK((*e)["target"] == dir + "/drip.txt");
    bool traced = i >= before;
    if (traced) {
      REQUIRE((*e)["stack"].is_array());
      REQUIRE(!(*e)["stack"].empty());
      CHECK(frame_file((*e)["stack"][0]) == f);
      CHECK(frame_line((*e)["stack"][0]) == marker_line(f, "@fd drip"));
    } else {
      CHECK((!(*e).contains("stack") || (*e)["stack"].empty()));
      std::string origin = (*e)["origin"].is_string() ? (*e)["origin"].get<std::string>() : "";
      CHECK(origin.find("unknown") != std::string::npos);
    }
    ++matched;
  }
  CHECK(matched == total);
  CHECK(summary(rep, "fd_opened") == static_cast<long>(total - before));
  CHECK(summary(rep, "fd_closed") == 0);
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace attach: a target killed while traced ends the trace without hanging") {
  auto t = start({sample("trace_attach_target")});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  AttachSession s(t.pid());
  REQUIRE(s.wait_attached());
  CHECK(sum_ok(t, 10, seen));
  t.signal(SIGKILL);  // the workers are busy: threads die in the middle of traced calls
  auto st = t.wait(30s);
  REQUIRE(st.has_value());
  CHECK((WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL));
  REQUIRE(s.wait_exit(60s));
  const std::string ctx = s.describe();
  INFO(ctx);
  CHECK(s.status() == 0);
  REQUIRE(s.load());
  CHECK(s.report()["target"]["signal"] == "SIGKILL");
  CHECK(s.report()["target"]["exit_code"].is_null());
  CHECK(s.report()["target"]["detached"] == false);
}


// The target dies at some point of the attach itself (seizing its threads, injecting the
// mmap of the scratch page, planting breakpoints) or just after: whichever step it hits,
// ptmem must end by itself with a report of the death or a one-line error, never hang.
// The kill comes once the target shows a tracer (the kernel gives no event for that: /proc
// is polled), after a delay that varies from run to run only to land on different steps;
// every outcome is checked, none is waited for.
TEST_CASE("trace attach: the target dying during the attach ends ptmem cleanly") {
  int reports = 0, errors = 0;
  for (int delay_us : {0, 0, 100, 200, 400, 700, 1000, 1500, 2500, 4000, 8000, 16000}) {
    CAPTURE(delay_us);
    auto t = start({sample("trace_attach_target")});
    std::string seen;
    REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
    AttachSession s(t.pid());
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (tracer_of(t.pid()) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    t.signal(SIGKILL);
    auto st = t.wait(30s);
    REQUIRE(st.has_value());
    REQUIRE(s.wait_exit(60s));
    const std::string ctx = s.describe();
    INFO(ctx);
    if (s.status() == 0) {
      ++reports;
      REQUIRE(s.load());
      CHECK(s.report()["target"]["signal"] == "SIGKILL");
      CHECK(s.report()["target"]["detached"] == false);
    } else {
      ++errors;
      CHECK(s.status() == 1);
      CHECK(one_line(s.log(), "ptmem: error: "));
    }
  }
  MESSAGE("target died during or right after the attach: " << reports << " reports, " << errors
                                                             << " one-line errors");
}

TEST_CASE("trace attach: SIGUSR1 writes the report of the moment; the trace goes on") {
  const std::string f = "trace_phases.c";
  const int line = marker_line(f, "@leak phase");
  Child::Options o;
  o.argv = {sample("trace_phases")};
  o.pipe_stdin = true;
  Child t(o);
  std::string seen;
  REQUIRE(expect_line(t, "ready ", seen));
  AttachSession s(t.pid());
  REQUIRE(s.wait_attached());
  auto snapshot = [&](long blocks) {
    CAPTURE(blocks);
    ::kill(s.ptmem_pid(), SIGUSR1);
    REQUIRE(s.read_until("ptmem: report of the moment written", 30s));
    REQUIRE(s.load());
    INFO(s.describe());
    CHECK(s.report()["target"]["detached"] == false);
    CHECK(s.report()["target"]["exit_code"].is_null());
    CHECK(expect_site(s.report(), f, line, 1, blocks, 24 * blocks) == "");
    // No end scan while the target runs: the kinds are not known yet.
    CHECK(summary(s.report(), "definitely_lost_bytes") == LONG_MIN);
  };
  t.write_stdin("leak 3\n");
  REQUIRE(expect_line(t, "leaked 3", seen));
  snapshot(3);
  t.write_stdin("leak 2\n");
  REQUIRE(expect_line(t, "leaked 2", seen));
  snapshot(5);
  REQUIRE(s.detach(SIGINT));
  REQUIRE(s.load());
  INFO(s.describe());
  CHECK(s.report()["target"]["detached"] == true);
  CHECK(expect_site(s.report(), f, line, 1, 5, 120) == "");
  CHECK(s.report()["summary"]["reachability_scanned"] == true);
  t.write_stdin("quit\n");
  auto st = t.wait(30s);
  REQUIRE(st);
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 0);
}
