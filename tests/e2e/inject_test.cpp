// The inject engine's own promises, beyond the reports both engines must agree on (`make
// test` runs every tracer test under each engine): attach and detach leave the target's
// code and mappings exactly as they were, it is never left traced, and a ptmem killed with
// SIGKILL leaves a target that runs on, correct.
#include <doctest/doctest.h>

#include <csignal>
#include <thread>

#include "../support/attach_target.hpp"
#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kInject = {"--engine", "inject"};

}  // namespace

TEST_CASE("inject: 200 attach/detach cycles to 16 busy threads; checksums right, nothing left behind") {
  auto t = start({sample("trace_attach_target"), "16"});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  REQUIRE(code_differs(t.pid()) == "");
  REQUIRE(leftovers(t.pid()) == "");
  const int signals[] = {SIGINT, SIGTERM, SIGHUP};
  long last = rounds(t, seen);
  REQUIRE(last >= 0);
  for (int i = 0; i < 200; i++) {
    CAPTURE(i);
    AttachSession s(t.pid(), kInject);
    REQUIRE(s.wait_attached());
    CHECK(sum_ok(t, 1000 + i, seen));
    REQUIRE(s.detach(signals[i % 3]));
    s.load();
    const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
    INFO(ctx);
    CHECK(s.status() == 0);
    CHECK(s.log().find("inject engine") == std::string::npos);  // no fallback, no refusal
    REQUIRE(s.report().is_object());
    CHECK(s.report()["target"]["detached"] == true);
    CHECK(summary(s.report(), "alloc_calls") > 0);
    CHECK(summary(s.report(), "threads_seen") == 17);
    // After the detach: untraced, every byte of code as in the files, no mapping left.
    CHECK(tracer_of(t.pid()) == 0);
    CHECK(code_differs(t.pid()) == "");
    CHECK(leftovers(t.pid()) == "");
    REQUIRE(progresses(t, last, seen) == "");
    last = rounds(t, seen);
    REQUIRE(last >= 0);
  }
  CHECK(sum_ok(t, 5000, seen));
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("inject: ptmem killed with SIGKILL mid-run; the target runs on, correct") {
  auto t = start({sample("trace_attach_target"), "16"});
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  AttachSession s(t.pid(), kInject);
  REQUIRE(s.wait_attached());
  CHECK(sum_ok(t, 1234, seen));
  long last = rounds(t, seen);
  REQUIRE(last >= 0);
  REQUIRE(::kill(s.ptmem_pid(), SIGKILL) == 0);
  REQUIRE(s.wait_exit());
  INFO(s.describe());
  // The kernel ended the trace as ptmem died; the agent finds its rings full and ptmem
  // gone, and from then on passes every call through.  Work for well past its patience.
  CHECK(tracer_of(t.pid()) == 0);
  auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    REQUIRE(progresses(t, last, seen) == "");
    last = rounds(t, seen);
    REQUIRE(last >= 0);
    REQUIRE(sum_ok(t, 2000, seen));
  }
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}
