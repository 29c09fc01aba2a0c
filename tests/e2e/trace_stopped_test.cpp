// Attaching to a process that is stopped (state T): ptmem must not wake it, must trace it
// once SIGCONT arrives, and a process stopped at detach stays stopped.
#include <doctest/doctest.h>

#include <csignal>
#include <sys/wait.h>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

TEST_CASE("trace attach: a stopped target is traced after SIGCONT and left stopped at detach") {
  const std::string source = "trace_attach_target.c";
  Child::Options o;
  o.argv = {sample("trace_attach_target")};
  o.pipe_stdin = true;
  Child t(o);
  std::string seen;
  REQUIRE(expect_line(t, "ready ", seen));
  t.write_stdin("pause\n");
  REQUIRE(expect_line(t, "paused", seen));
  ::kill(t.pid(), SIGSTOP);
  REQUIRE(wait_for_state(t.pid(), "T", 10s));

  AttachSession s(t.pid());
  REQUIRE(s.wait_attached());
  // Still stopped: the attach must not have resumed it (t = stopped while traced).
  CHECK(wait_for_state(t.pid(), "Tt", 5s));
  ::kill(t.pid(), SIGCONT);
  t.write_stdin("leak 4\n");
  REQUIRE(expect_line(t, "leaked 4", seen));

  // Stopped again when ptmem detaches: it must stay stopped afterwards.
  ::kill(t.pid(), SIGSTOP);
  REQUIRE(wait_for_state(t.pid(), "Tt", 10s));
  REQUIRE(s.detach(SIGINT));
  const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
  INFO(ctx);
  CHECK(proc_state(t.pid()) == 'T');
  REQUIRE(s.load());
  CHECK(expect_site(s.report(), source, marker_line(source, "@leak attach"), 1, 4, 96) == "");
  CHECK(summary(s.report(), "alloc_calls") == 4);
  CHECK(summary(s.report(), "leaked_blocks") == 4);

  ::kill(t.pid(), SIGCONT);
  t.write_stdin("resume\n");
  REQUIRE(expect_line(t, "resumed", seen));
  t.write_stdin("quit\n");
  auto st = t.wait(30s);
  REQUIRE(st);
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 0);
}
