// --follow-forks (samples/trace_forks.c): every forked child, and what a grandchild execs,
// is traced with a report of its own in "children"; the parent's report keeps only its
// own leaks.  Without the flag, only the parent's.
#include <doctest/doctest.h>

#include <csignal>
#include <sys/wait.h>

#include "../support/attach_target.hpp"
#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

const std::string kForks = "trace_forks.c";

/// The child report whose target matches |command| and |exit_code|, or nullptr.
const Json* child_report(const Json& report, const std::string& command, int exit_code) {
  if (!report.contains("children")) return nullptr;
  for (auto& c : report["children"])
    if (c["target"]["command"] == command && c["target"]["exit_code"] == exit_code) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("trace launch: --follow-forks reports each child and the exec'd grandchild on its own") {
  auto r = launch_traced({sample("trace_forks")}, {"--follow-forks"});
  const std::string ctx = r.describe();
  INFO(ctx);
  CHECK(r.status == 0);
  CHECK(r.out == "done\nchildren 3 4\n");  // the grandchild (trace_malloc) says "done"
  REQUIRE(r.parsed);
  const Json& rep = r.report;
  // The parent: its own 2x24 only.
  CHECK(expect_site(rep, kForks, marker_line(kForks, "@leak forks-parent"), 1, 2, 48) == "");
  CHECK(leaks_of(rep).size() == 1);
  CHECK(fd_leaks_of(rep).empty());
  CHECK(rep["target"]["exit_code"] == 0);
  REQUIRE(rep.contains("children"));
  CHECK(rep["children"].size() == 3);

  const Json* c1 = child_report(rep, "trace_forks", 3);
  const Json* c2 = child_report(rep, "trace_forks", 4);
  const Json* gc = child_report(rep, "trace_malloc", 0);
  REQUIRE(c1);
  REQUIRE(c2);
  REQUIRE(gc);
  const long parent_pid = rep["target"]["pid"].get<long>();
  for (const Json* c : {c1, c2, gc}) {
    CHECK(c->at("target")["pid"].get<long>() > 0);
    CHECK(c->at("target")["pid"].get<long>() != parent_pid);
    CHECK(c->at("target")["detached"] == false);
    CHECK(c->at("target")["signal"].is_null());
    CHECK_FALSE(c->contains("children"));
  }
  CHECK(c1->at("target")["pid"] != c2->at("target")["pid"]);
  // Child 1: its 3x40, not the parent's blocks it inherited.
  CHECK(expect_site(*c1, kForks, marker_line(kForks, "@leak forks-child1"), 1, 3, 120) == "");
  CHECK(leaks_of(*c1).size() == 1);
  CHECK(fd_leaks_of(*c1).empty());
  // Child 2: its 2x100 and its /dev/null; fds it inherited are not its leaks.
  CHECK(expect_site(*c2, kForks, marker_line(kForks, "@leak forks-child2"), 1, 2, 200) == "");
  CHECK(leaks_of(*c2).size() == 1);
  REQUIRE(fd_leaks_of(*c2).size() == 1);
  CHECK(fd_leaks_of(*c2)[0]["target"] == "/dev/null");
  REQUIRE(!fd_leaks_of(*c2)[0]["stack"].empty());
  CHECK(frame_line(fd_leaks_of(*c2)[0]["stack"][0]) == marker_line(kForks, "@fd forks-child2"));

  // The grandchild's report is what tracing trace_malloc directly gives.
  check_sites(*gc, "trace_malloc.c", kMallocSites);
  auto direct = launch_traced({sample("trace_malloc")});
  INFO(direct.describe());
  REQUIRE(direct.parsed);
  CHECK(leak_table(*gc) == leak_table(direct.report));
  CHECK(fd_table(*gc) == fd_table(direct.report));
  for (const char* field : {"alloc_calls", "free_calls", "free_null_calls", "failed_alloc_calls", "leaked_blocks",
                            "leaked_bytes", "total_allocated_bytes", "fd_leaked"})
    CHECK_MESSAGE(summary(*gc, field) == summary(direct.report, field), field);
}

TEST_CASE("trace launch: without --follow-forks a forking program's report is only the parent's") {
  auto r = launch_traced({sample("trace_forks")});
  const std::string ctx = r.describe();
  INFO(ctx);
  CHECK(r.status == 0);
  CHECK(r.out == "done\nchildren 3 4\n");  // the grandchild (trace_malloc) says "done"
  REQUIRE(r.parsed);
  CHECK(expect_site(r.report, kForks, marker_line(kForks, "@leak forks-parent"), 1, 2, 48) == "");
  CHECK(leaks_of(r.report).size() == 1);
  CHECK(fd_leaks_of(r.report).empty());
  CHECK_FALSE(r.report.contains("children"));
}

TEST_CASE("trace attach: --follow-forks, detach while a child runs: it is detached unharmed and reported") {
  Child::Options o;
  o.argv = {sample("trace_forks"), "attach"};
  o.pipe_stdin = true;
  Child t(o);
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  AttachSession s(t.pid(), {"--follow-forks"});
  REQUIRE(s.wait_attached());
  t.write_stdin("fork\n");
  auto line = expect_line(t, " leaked", seen);
  REQUIRE(line);
  const long child = std::stol(line->substr(line->find("child ") + 6));
  REQUIRE(s.detach(SIGINT));
  const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
  INFO(ctx);
  CHECK(s.status() == 0);
  REQUIRE(s.load());
  const Json& rep = s.report();
  CHECK(rep["target"]["detached"] == true);
  CHECK(expect_site(rep, kForks, marker_line(kForks, "@leak forks-attach-parent"), 1, 1, 16) == "");
  CHECK(leaks_of(rep).size() == 1);
  REQUIRE(rep.contains("children"));
  REQUIRE(rep["children"].size() == 1);
  const Json& c = rep["children"][0];
  CHECK(c["target"]["pid"] == child);
  CHECK(c["target"]["detached"] == true);
  CHECK(c["target"]["exit_code"].is_null());
  CHECK(expect_site(c, kForks, marker_line(kForks, "@leak forks-attach-child"), 1, 1, 56) == "");
  CHECK(leaks_of(c).size() == 1);
  // The child goes on untraced and exits 0; then the parent.
  t.write_stdin("release\n");
  CHECK(expect_line(t, "child exited 0", seen));
  t.write_stdin("quit\n");
  auto st = t.wait(30s);
  REQUIRE(st);
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 0);
}

// posix_spawn's child is a vfork child: its calls before the exec are in the parent's
// memory (not recorded); the program it execs is traced from the exec on.  A clone3 child
// process (not a thread, no CLONE_VM) is a fork.
TEST_CASE("trace launch: --follow-forks traces a posix_spawn'ed program and a clone3 child process") {
  const std::string f = "trace_spawn.c";
  struct Case {
    const char* mode;
    const char* out;
    const char* child_marker;
    int child_exit;
    long child_bytes;
  };
  for (const Case& c : {Case{"spawn", "spawned running\nspawned exited 7\n", "@leak spawned", 7, 99},
                        Case{"clone3", "clone3 thread done\nclone3 child exited 5\n", "@leak clone3-child", 5, 77}}) {
    CAPTURE(c.mode);
    auto r = launch_traced({sample("trace_spawn"), c.mode}, {"--follow-forks"});
    const std::string ctx = r.describe();
    INFO(ctx);
    CHECK(r.status == 0);
    CHECK(r.out == c.out);
    REQUIRE(r.parsed);
    CHECK(leaks_of(r.report).size() == 2);  // the parent's own two sites, as without the option
    REQUIRE(r.report.contains("children"));
    REQUIRE(r.report["children"].size() == 1);
    const Json& child = r.report["children"][0];
    CHECK(child["target"]["command"] == "trace_spawn");
    CHECK(child["target"]["exit_code"] == c.child_exit);
    CHECK(expect_site(child, f, marker_line(f, c.child_marker), 1, 1, c.child_bytes) == "");
    CHECK(leaks_of(child).size() == 1);
  }
}
