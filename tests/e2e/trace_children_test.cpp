// New tasks of every kind under the tracer (samples/trace_spawn.c): posix_spawn, a raw
// clone3 thread and a clone3 child process, exec from a thread that is not the leader, and
// attach/detach cycles against a target whose threads live a few milliseconds each
// (samples/trace_phases.c churn).  The program's output and exit status must be exactly
// those of a native run, and the traced process's counts exact.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sys/wait.h>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

const std::string kSpawn = "trace_spawn.c";
const std::string kPhases = "trace_phases.c";

/// The sample's output and status without ptmem, then under `ptmem launch`.
struct Compared {
  RunResult native;
  TraceRun traced;
};
Compared run_both(const std::vector<std::string>& argv) {
  return {run(argv, 60s), launch_traced(argv, {}, 120s)};
}

/// "tid:TracerPid" for every thread of |pid| with a tracer, "" when none is traced.
std::string traced_threads(pid_t pid) {
  std::string out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("TracerPid:", 0) == 0 && std::atoi(line.c_str() + 10) != 0)
        out += std::string(e->d_name) + ":" + line.substr(10) + " ";
  }
  ::closedir(d);
  return out;
}

}  // namespace

TEST_CASE("trace launch: posix_spawn; the spawned program runs untraced, statuses as without ptmem") {
  auto [native, r] = run_both({sample("trace_spawn"), "spawn"});
  const std::string ctx = r.describe();
  INFO(ctx);
  CHECK(native.status == 0);
  CHECK(native.out == "spawned running\nspawned exited 7\n");
  CHECK(r.status == native.status);
  CHECK(r.out == native.out);
  REQUIRE(r.parsed);
  // The spawned image's 99 bytes are another process's: not here.
  CHECK(expect_site(r.report, kSpawn, marker_line(kSpawn, "@leak pre-spawn"), 1, 1, 16) == "");
  CHECK(expect_site(r.report, kSpawn, marker_line(kSpawn, "@leak post-spawn"), 1, 1, 32) == "");
  CHECK(leaks_of(r.report).size() == 2);
  CHECK(summary(r.report, "alloc_calls") == 2);
  CHECK(summary(r.report, "free_calls") == 0);
  CHECK(summary(r.report, "leaked_bytes") == 48);
  CHECK(r.report["target"]["exit_code"] == 0);
}

TEST_CASE("trace launch: a raw clone3 thread and a clone3 child process") {
  auto [native, r] = run_both({sample("trace_spawn"), "clone3"});
  const std::string ctx = r.describe();
  INFO(ctx);
  CHECK(native.status == 0);
  CHECK(native.out == "clone3 thread done\nclone3 child exited 5\n");
  CHECK(r.status == native.status);
  CHECK(r.out == native.out);
  REQUIRE(r.parsed);
  // The thread's calls are the process's; the child's 77 bytes are its own copy's.
  CHECK(expect_site(r.report, kSpawn, marker_line(kSpawn, "@leak clone3-thread"), 1, 1, 48) == "");
  CHECK(expect_site(r.report, kSpawn, marker_line(kSpawn, "@leak post-clone3"), 1, 1, 24) == "");
  CHECK(leaks_of(r.report).size() == 2);
  CHECK(summary(r.report, "alloc_calls") == 3);
  CHECK(summary(r.report, "free_calls") == 1);
  CHECK(summary(r.report, "frees_of_unknown_blocks") == 0);
  CHECK(summary(r.report, "leaked_bytes") == 72);
  CHECK(summary(r.report, "threads_seen") == 2);
}

TEST_CASE("trace launch: exec from a thread that is not the leader; ptmem follows the new image") {
  auto [native, r] = run_both({sample("trace_spawn"), "execthread"});
  const std::string ctx = r.describe();
  INFO(ctx);
  CHECK(native.status == 3);
  CHECK(r.status == 3);
  // Same lines, each run with its own pid; within a run the pid survives the exec.
  auto pids = [](const std::string& out) {
    int before = -1, after = -1;
    std::sscanf(out.c_str(), "before exec pid %d\nafter exec pid %d\n", &before, &after);
    return std::pair{before, after};
  };
  auto [nb, na] = pids(native.out);
  auto [tb, ta] = pids(r.out);
  CHECK(nb > 0);
  CHECK(na == nb);
  CHECK(tb > 0);
  CHECK(ta == tb);
  CHECK(r.out == "before exec pid " + std::to_string(tb) + "\nafter exec pid " + std::to_string(tb) + "\n");
  REQUIRE(r.parsed);
  CHECK(r.report["target"]["pid"] == tb);
  CHECK(r.report["target"]["exit_code"] == 3);
  // The old image's 31 bytes died with it; the new image's two blocks are the leaks.
  CHECK(expect_site(r.report, kSpawn, marker_line(kSpawn, "@leak after-exec"), 1, 2, 80) == "");
  CHECK(leaks_of(r.report).size() == 1);
  CHECK(summary(r.report, "leaked_blocks") == 2);
  CHECK(summary(r.report, "leaked_bytes") == 80);
}

// Once a defect: a thread stopped at its PTRACE_EVENT_CLONE (a thread being born as ptmem
// stops the world) was used to run injected syscalls; the kernel then finished the clone
// over our registers, the program saw clone3 fail with ENOSYS and glibc's fallback clone()
// started a second thread on the same stack (a GP fault in free, or a jump to 0).
TEST_CASE("trace attach: attach and detach 10 times while threads are born and end every few ms") {
  Child::Options o;
  o.argv = {sample("trace_phases"), "churn"};
  o.pipe_stdin = true;
  Child t(o);
  std::string seen;
  auto ready = expect_line(t, "ready ", seen);
  REQUIRE(ready);
  REQUIRE(std::stol(ready->substr(6)) == t.pid());
  // "grow 8": answered once 8 more threads were made and joined, i.e. a whole batch of 4
  // was started after the command (the count grows by 4 per joined batch).
  auto grow = [&]() -> long {
    t.write_stdin("grow 8\n");
    auto line = expect_line(t, "grown created=", seen, 30s);
    return line ? std::stol(line->substr(14)) : -1;
  };
  REQUIRE(grow() >= 8);
  for (int i = 0; i < 10; i++) {
    CAPTURE(i);
    AttachSession s(t.pid());
    REQUIRE(s.wait_attached());
    t.write_stdin("leak 2\n");
    REQUIRE(expect_line(t, "leaked 2", seen, 10s));
    // Threads keep being made and ended while traced.
    CHECK(grow() > 0);
    REQUIRE(s.detach(i % 2 ? SIGTERM : SIGINT));
    const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
    INFO(ctx);
    CHECK(s.status() == 0);
    REQUIRE(s.load());
    CHECK(s.report()["target"]["detached"] == true);
    CHECK(traced_threads(t.pid()) == "");
    // Exactly the two blocks of this cycle's "leak 2"; any other live block is one of
    // short_life's 64 bytes caught between its malloc and its free.
    CHECK(expect_site(s.report(), kPhases, marker_line(kPhases, "@leak phase"), 1, 2, 48) == "");
    for (auto& g : leaks_of(s.report())) {
      if (frame_line(g["stack"][0]) == marker_line(kPhases, "@leak phase")) continue;
      CHECK(frame_function(g["stack"][0]) == "short_life");
      CHECK(g["bytes"].get<long>() == 64 * g["blocks"].get<long>());
    }
    CHECK(summary(s.report(), "threads_seen") >= 2 + 4);  // main, the spawner, a batch born while attached
    // Still making and ending threads once ptmem is gone.
    REQUIRE(grow() > 0);
  }
  t.write_stdin("stop\n");
  REQUIRE(expect_line(t, "stopped created=", seen, 10s));
  t.write_stdin("quit\n");
  auto st = t.wait(30s);
  REQUIRE(st);
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 0);
}
