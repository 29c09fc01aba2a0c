// Signals at every moment, and targets that end at every phase of ptmem's work.
//
// Signals (samples/trace_sigstorm.c): SIGTSTP from outside and from the program itself,
// real-time signals queued with values while the program is stopped (delivered after
// SIGCONT exactly as in a native run), a handler on a sigaltstack that allocates, and a
// storm of queued signals from another process while the program mallocs and frees, so
// that they land in the middle of step-overs and hooks.
//
// Phases (samples/trace_phases.c): the target exits or is killed during the attach, while
// traced, during the end scan and during the detach.  ptmem's test hook PTMEM_TEST_PAUSE
// (src/util/test_pause.cpp) holds ptmem at the phase until the test writes to a FIFO, so the
// target ends exactly then.  ptmem must end by itself, say in one line what happened, and
// leave its -o report whole or absent.
#include <doctest/doctest.h>

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

const std::string kStorm = "trace_sigstorm.c";
const std::string kPhases = "trace_phases.c";

/// trace_sigstorm, natively or under `ptmem launch` (JSON report to a file).
struct Storm {
  bool traced;
  std::string report = temp_dir() + "/report.json";
  Child child;
  std::string seen;
  pid_t pid = -1;  // the program

  static Child::Options options(bool traced, const std::string& report,
                                const std::vector<std::string>& env) {
    Child::Options o;
    if (traced) o.argv = {ptmem::test::ptmem(), "launch", "--show-kinds", "all", "--no-default-suppressions", "--format", "json", "-o", report, "--"};
    o.argv.push_back(sample("trace_sigstorm"));
    o.pipe_stdin = true;
    o.env = env;
    o.new_process_group = true;  // the SIGTSTP cases need a group that is not orphaned
    return o;
  }
  explicit Storm(bool t, const std::vector<std::string>& env = {}) : traced(t), child(options(t, report, env)) {
    auto line = expect_line(child, "ready ", seen);
    if (line) pid = static_cast<pid_t>(std::stol(line->substr(6)));
  }
  std::optional<std::string> ask(const std::string& cmd, const std::string& answer,
                                 std::chrono::milliseconds timeout = 30s) {
    child.write_stdin(cmd + "\n");
    return expect_line(child, answer, seen, timeout);
  }
  /// "quit"; the exit status, or -1.
  int finish() {
    child.write_stdin("quit\n");
    auto st = child.wait(120s);
    return st ? Child::exit_code(*st) : -1;
  }
  std::string describe() {
    return "program said:\n" + seen + "--- stderr ---\n" + child.read_rest_stderr(0ms);
  }
  Json load() {
    Json rep;
    std::string error;
    if (!load_report(report, rep, &error)) rep = Json();
    return rep;
  }
};

/// Real-time signals queued while the program is stopped, then SIGCONT: the "rt" line
/// listing what the handlers saw, in the order they ran.
std::string queued_while_stopped(bool traced) {
  Storm s(traced);
  if (s.pid <= 0) return "no ready line";
  if (::kill(s.pid, SIGSTOP) != 0) return "kill failed";
  if (!wait_for_state(s.pid, "Tt", 10s)) return "not stopped";
  // Out of order on purpose: the kernel delivers the lowest number first, each number's
  // values in the order they were sent.
  const std::pair<int, int> queued[] = {{2, 21}, {0, 1}, {1, 11}, {2, 22}, {0, 2}, {0, 3}, {1, 12}, {2, 23}};
  for (auto [n, v] : queued) {
    union sigval sv;
    sv.sival_int = v;
    if (::sigqueue(s.pid, SIGRTMIN + n, sv) != 0) return "sigqueue failed";
  }
  // Nothing runs while stopped...
  auto early = s.ask("ping", "pong", 300ms);
  if (early) return "answered while stopped";
  if (::kill(s.pid, SIGCONT) != 0) return "kill failed";
  // ...then the pong of the ping sent while stopped, then every handler has run.
  if (!expect_line(s.child, "pong", s.seen, 10s)) return "no pong after SIGCONT\n" + s.describe();
  auto rt = s.ask("rt", "rt", 10s);
  int status = s.finish();
  if (!rt) return "no rt line\n" + s.describe();
  if (status != 0) return "exit status " + std::to_string(status) + "\n" + s.describe();
  if (traced && !s.load().is_object()) return "no report\n" + s.describe();
  return *rt;
}

}  // namespace

TEST_CASE("trace launch: SIGTSTP from outside stops the program until SIGCONT, as without ptmem") {
  Storm s(true);
  REQUIRE(s.pid > 0);
  CHECK(s.pid != s.child.pid());
  REQUIRE(::kill(s.pid, SIGTSTP) == 0);
  CHECK(wait_for_state(s.pid, "Tt", 10s));
  CHECK(!s.ask("ping", "pong", 500ms).has_value());
  char state = proc_state(s.pid);
  CHECK((state == 'T' || state == 't'));
  // ptmem itself is not stopped: it has no terminal to hand the stop to.
  CHECK(proc_state(s.child.pid()) != 'T');
  REQUIRE(::kill(s.pid, SIGCONT) == 0);
  CHECK(expect_line(s.child, "pong", s.seen, 10s).has_value());
  int status = s.finish();
  const std::string ctx = s.describe();
  INFO(ctx);
  CHECK(status == 0);
  Json rep = s.load();
  REQUIRE(rep.is_object());
  CHECK(rep["target"]["exit_code"] == 0);
  CHECK(leaks_of(rep).empty());
}

TEST_CASE("trace launch: a program that stops itself with SIGTSTP continues after SIGCONT") {
  Storm s(true);
  REQUIRE(s.pid > 0);
  REQUIRE(s.ask("selftstp", "stopping"));
  CHECK(wait_for_state(s.pid, "Tt", 10s));
  CHECK(!s.child.read_line(300ms).has_value());  // "continued" only after SIGCONT
  REQUIRE(::kill(s.pid, SIGCONT) == 0);
  CHECK(expect_line(s.child, "continued", s.seen, 10s).has_value());
  CHECK(s.ask("ping", "pong").has_value());
  int status = s.finish();
  const std::string ctx = s.describe();
  INFO(ctx);
  CHECK(status == 0);
}

TEST_CASE("trace launch: real-time signals queued while stopped arrive after SIGCONT as natively") {
  std::string native = queued_while_stopped(false);
  std::string traced = queued_while_stopped(true);
  INFO("native: " << native);
  INFO("traced: " << traced);
  // All eight, each with its value (the order within a run is the kernel's).
  CHECK(native.rfind("rt ", 0) == 0);
  for (const char* v : {" 0:1", " 0:2", " 0:3", " 1:11", " 1:12", " 2:21", " 2:22", " 2:23"})
    CHECK(native.find(v) != std::string::npos);
  CHECK(traced == native);
}

TEST_CASE("trace launch: a handler on a sigaltstack that allocates is counted exactly") {
  Storm s(true);
  REQUIRE(s.pid > 0);
  CHECK(s.ask("altstack 5", "altstack ") == "altstack 5 on=5");
  // From outside too, while the program waits in read(2).
  REQUIRE(::kill(s.pid, SIGUSR2) == 0);
  CHECK(s.ask("ping", "pong").has_value());
  int status = s.finish();
  const std::string ctx = s.describe();
  INFO(ctx);
  CHECK(status == 0);
  Json rep = s.load();
  REQUIRE(rep.is_object());
  // One line, two stacks: through raise() and through read().
  auto at = leaks_at(rep, kStorm, marker_line(kStorm, "@leak altstack"));
  CHECK(totals(at).blocks == 6);
  CHECK(totals(at).bytes == 120);
  CHECK(leaks_of(rep).size() == at.size());
  CHECK(summary(rep, "alloc_calls") == 12);
  CHECK(summary(rep, "free_calls") == 6);
  CHECK(summary(rep, "leaked_blocks") == 6);
}

namespace {
void check_storm(const std::vector<std::string>& env) {
  const int n = 3000, rounds = 3000;
  const std::string expected = "storm sent=3000 handled=3000 order=ok rounds=3000";
  {
    Storm native(false);
    REQUIRE(native.pid > 0);
    CHECK(native.ask("storm 3000 3000", "storm ", 60s) == expected);
    CHECK(native.finish() == 0);
  }
  Storm s(true, env);
  REQUIRE(s.pid > 0);
  auto line = s.ask("storm " + std::to_string(n) + " " + std::to_string(rounds), "storm ", 120s);
  int status = s.finish();
  const std::string ctx = s.describe();
  INFO(ctx);
  CHECK(line == expected);
  CHECK(status == 0);
  Json rep = s.load();
  REQUIRE(rep.is_object());
  // Every malloc and free of the loop, no more (the sender is a forked child: not counted).
  CHECK(summary(rep, "alloc_calls") == rounds);
  CHECK(summary(rep, "free_calls") == rounds);
  CHECK(summary(rep, "frees_of_unknown_blocks") == 0);
  CHECK(summary(rep, "leaked_blocks") == 0);
  CHECK(leaks_of(rep).empty());
}
}  // namespace

TEST_CASE("trace launch: a signal storm while the program mallocs and frees; every count exact") {
  check_storm({});
}

TEST_CASE("trace launch: a signal storm while every breakpoint is stepped in place") {
  check_storm({"PTMEM_FORCE_STEP_IN_PLACE=1"});
}

// ---- phases

namespace {

/// ptmem (launch or attach) run through `sh -c 'exec ... 2>&1'` so its stderr is read line by
/// line, held at PHASE by the test hook until release().
struct Paused {
  std::string dir = temp_dir();
  std::string fifo = dir + "/pause";
  std::string report = dir + "/report.json";
  std::unique_ptr<Child> child;
  std::string log;
  int status = -1;

  Paused(const std::string& phase, const std::vector<std::string>& args, bool pipe_stdin = false) {
    ::mkfifo(fifo.c_str(), 0600);
    Child::Options o;
    o.argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", ptmem::test::ptmem()};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.pipe_stdin = pipe_stdin;
    o.env = {"PTMEM_TEST_PAUSE=" + phase, "PTMEM_TEST_PAUSE_FIFO=" + fifo};
    child = std::make_unique<Child>(o);
  }
  static std::vector<std::string> attach_args(const std::string& report, pid_t pid) {
    return {"attach", "--show-kinds", "all", "--no-default-suppressions", "--format", "json", "-o", report, std::to_string(pid)};
  }
  std::optional<std::string> until(const std::string& needle, std::chrono::milliseconds timeout = 30s) {
    return expect_line(*child, needle, log, timeout);
  }
  /// Lets ptmem go on from its pause.
  bool release() {
    int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::write(fd, "x", 1) == 1;
    ::close(fd);
    return ok;
  }
  bool wait_exit() {
    log += child->read_rest_stdout(60s);
    auto st = child->wait(10s);
    if (st) status = Child::exit_code(*st);
    return st.has_value();
  }
  /// Lines of ptmem's output starting with "ptmem: " (the program's own lines are not).
  std::vector<std::string> ptmem_lines() const {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < log.size()) {
      size_t nl = log.find('\n', pos);
      std::string line = log.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      if (line.rfind("ptmem: ", 0) == 0) out.push_back(line);
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    return out;
  }
  std::string describe() const { return "ptmem said:\n" + log; }
};

/// The target trace_phases, its stdin a pipe.
Child phases_target(std::string& seen) {
  Child::Options o;
  o.argv = {sample("trace_phases")};
  o.pipe_stdin = true;
  Child t(o);
  expect_line(t, "ready ", seen);
  return t;
}

/// Ends |t| (SIGKILL, or "exit CODE") and waits until /proc shows it gone from user space
/// (a zombie, or stopped in its exit for the tracer).  Its real parent (this test) cannot
/// reap it while ptmem holds it.
bool end_target(Child& t, int code, std::string& seen, const std::string& states) {
  if (code < 0) t.signal(SIGKILL);
  else {
    t.write_stdin("exit " + std::to_string(code) + "\n");
    if (!expect_line(t, "exiting", seen, 10s)) return false;
  }
  return wait_for_state(t.pid(), states, 10s);
}

/// The report file: absent, or whole valid JSON (never partial).
bool report_whole_or_absent(const std::string& path, Json& rep) {
  if (!std::filesystem::exists(path)) return true;
  std::string error;
  return load_report(path, rep, &error);
}

}  // namespace

TEST_CASE("trace attach: the target exits or is killed during the attach") {
  for (int code : {4, -1}) {
    CAPTURE(code);
    std::string seen;
    Child t = phases_target(seen);
    std::string report = temp_dir() + "/r.json";
    Paused p("attach", Paused::attach_args(report, t.pid()));
    REQUIRE(p.until("ptmem: paused before attach"));
    // Seized, not stopped: it can exit.  Its threads stop for the tracer in their exit
    // ('t'), killed or not.
    REQUIRE(end_target(t, code, seen, "tZX"));
    REQUIRE(p.release());
    REQUIRE(p.wait_exit());
    const std::string ctx = p.describe();
    INFO(ctx);
    const std::string what = code < 0 ? "was killed by SIGKILL during the attach"
                                      : "exited with status 4 during the attach";
    auto lines = p.ptmem_lines();
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "ptmem: paused before attach");
    CHECK(lines[1] == "ptmem: error: process " + std::to_string(t.pid()) + " " + what);
    CHECK(p.status == 1);
    CHECK(!std::filesystem::exists(report));  // nothing was traced: no report at all
    auto st = t.wait(10s);
    REQUIRE(st);
    if (code < 0) CHECK((WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL));
    else CHECK((WIFEXITED(*st) && WEXITSTATUS(*st) == code));
  }
}

TEST_CASE("trace attach: the target exits or is killed while traced") {
  for (int code : {6, -1}) {
    CAPTURE(code);
    std::string seen;
    Child t = phases_target(seen);
    AttachSession s(t.pid());
    REQUIRE(s.wait_attached());
    t.write_stdin("leak 3\n");
    REQUIRE(expect_line(t, "leaked 3", seen));
    if (code < 0) t.signal(SIGKILL);
    else t.write_stdin("exit 6\n");
    REQUIRE(s.wait_exit(60s));
    const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
    INFO(ctx);
    CHECK(s.status() == 0);
    const std::string what = code < 0 ? "was killed by SIGKILL while traced" : "exited with status 6 while traced";
    CHECK(s.log().find("ptmem: process " + std::to_string(t.pid()) + " " + what +
                       "; the report holds what was recorded before\n") != std::string::npos);
    REQUIRE(s.load());
    CHECK(s.report()["target"]["detached"] == false);
    if (code < 0) CHECK(s.report()["target"]["signal"] == "SIGKILL");
    else CHECK(s.report()["target"]["exit_code"] == 6);
    CHECK(expect_site(s.report(), kPhases, marker_line(kPhases, "@leak phase"), 1, 3, 72) == "");
    CHECK(summary(s.report(), "alloc_calls") == 3);
    auto st = t.wait(10s);
    REQUIRE(st);
  }
}

TEST_CASE("trace launch: the program killed while traced; ptmem says so and reports") {
  std::string report = temp_dir() + "/report.json";
  Paused p("none", {"launch", "--show-kinds", "all", "--no-default-suppressions", "--format", "json", "-o", report, "--", sample("trace_phases")}, true);
  auto ready = p.until("ready ");
  REQUIRE(ready);
  pid_t pid = static_cast<pid_t>(std::stol(ready->substr(ready->find("ready ") + 6)));
  p.child->write_stdin("leak 2\n");
  REQUIRE(p.until("leaked 2"));
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(p.wait_exit());
  const std::string ctx = p.describe();
  INFO(ctx);
  CHECK(p.status == 128 + SIGKILL);
  auto lines = p.ptmem_lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "ptmem: tracing " + std::to_string(pid));
  CHECK(lines[1] == "ptmem: process " + std::to_string(pid) +
                        " was killed by SIGKILL while traced; the report holds what was recorded before");
  Json rep;
  std::string error;
  REQUIRE(load_report(report, rep, &error));
  CHECK(rep["target"]["signal"] == "SIGKILL");
  CHECK(expect_site(rep, kPhases, marker_line(kPhases, "@leak phase"), 1, 2, 48) == "");
}

TEST_CASE("trace attach: the target killed during the end scan at detach") {
  std::string seen;
  Child t = phases_target(seen);
  std::string report = temp_dir() + "/r.json";
  Paused p("scan", Paused::attach_args(report, t.pid()));
  REQUIRE(p.until("ptmem: attached to process"));
  t.write_stdin("leak 4\n");
  REQUIRE(expect_line(t, "leaked 4", seen));
  ::kill(p.child->pid(), SIGINT);
  REQUIRE(p.until("ptmem: paused before scan"));
  // Every thread is in a ptrace-stop: the kernel keeps the SIGKILL pending until ptmem
  // resumes them.
  t.signal(SIGKILL);
  REQUIRE(p.release());
  REQUIRE(p.wait_exit());
  const std::string ctx = p.describe() + "\ntarget said:\n" + seen;
  INFO(ctx);
  CHECK(p.status == 0);
  auto lines = p.ptmem_lines();
  REQUIRE(lines.size() == 3);
  CHECK(lines[2] == "ptmem: process " + std::to_string(t.pid()) +
                        " was killed by SIGKILL during the end scan; the report holds what was recorded before");
  Json rep;
  std::string error;
  REQUIRE(load_report(report, rep, &error));
  CHECK(rep["target"]["detached"] == false);
  CHECK(rep["target"]["signal"] == "SIGKILL");
  CHECK(expect_site(rep, kPhases, marker_line(kPhases, "@leak phase"), 1, 4, 96) == "");
  auto st = t.wait(10s);
  REQUIRE(st);
  CHECK((WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL));
}

// A process stopped in its exit for the end scan has its exit status already: a SIGKILL
// then changes nothing (the kernel drops it), and ptmem reports the exit as it was.
TEST_CASE("trace launch: SIGKILL to the program during the end scan after its exit changes nothing") {
  std::string report = temp_dir() + "/report.json";
  Paused p("scan", {"launch", "--show-kinds", "all", "--no-default-suppressions", "--format", "json", "-o", report, "--", sample("trace_phases")}, true);
  auto ready = p.until("ready ");
  REQUIRE(ready);
  pid_t pid = static_cast<pid_t>(std::stol(ready->substr(ready->find("ready ") + 6)));
  p.child->write_stdin("leak 1\nexit 5\n");
  REQUIRE(p.until("ptmem: paused before scan"));
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(p.release());
  REQUIRE(p.wait_exit());
  const std::string ctx = p.describe();
  INFO(ctx);
  CHECK(p.status == 5);
  auto lines = p.ptmem_lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "ptmem: tracing " + std::to_string(pid));
  CHECK(lines[1] == "ptmem: paused before scan");
  Json rep;
  std::string error;
  REQUIRE(load_report(report, rep, &error));
  CHECK(rep["target"]["exit_code"] == 5);
  CHECK(rep["target"]["signal"].is_null());
  CHECK(expect_site(rep, kPhases, marker_line(kPhases, "@leak phase"), 1, 1, 24) == "");
  CHECK(summary(rep, "alloc_calls") == 3);  // and the two helper threads' TLS (272 bytes each)
  CHECK(summary(rep, "leaked_bytes") == 24 + 2 * 272);
}

TEST_CASE("trace attach: the target exits or is killed during the detach") {
  for (int code : {7, -1}) {
    CAPTURE(code);
    std::string seen;
    Child t = phases_target(seen);
    std::string report = temp_dir() + "/r.json";
    Paused p("detach", Paused::attach_args(report, t.pid()));
    REQUIRE(p.until("ptmem: attached to process"));
    t.write_stdin("leak 2\n");
    REQUIRE(expect_line(t, "leaked 2", seen));
    ::kill(p.child->pid(), SIGTERM);
    REQUIRE(p.until("ptmem: paused before detach"));
    REQUIRE(end_target(t, code, seen, "tZX"));
    REQUIRE(p.release());
    REQUIRE(p.wait_exit());
    const std::string ctx = p.describe() + "\ntarget said:\n" + seen;
    INFO(ctx);
    CHECK(p.status == 0);
    const std::string what = code < 0 ? "was killed by SIGKILL during the detach" : "exited with status 7 during the detach";
    auto lines = p.ptmem_lines();
    REQUIRE(lines.size() == 3);
    CHECK(lines[2] == "ptmem: process " + std::to_string(t.pid()) + " " + what +
                          "; the report holds what was recorded before");
    Json rep;
    REQUIRE(report_whole_or_absent(report, rep));
    REQUIRE(rep.is_object());
    CHECK(rep["target"]["detached"] == false);
    if (code < 0) CHECK(rep["target"]["signal"] == "SIGKILL");
    else CHECK(rep["target"]["exit_code"] == 7);
    CHECK(expect_site(rep, kPhases, marker_line(kPhases, "@leak phase"), 1, 2, 48) == "");
    auto st = t.wait(10s);
    REQUIRE(st);
    if (code < 0) CHECK((WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL));
    else CHECK((WIFEXITED(*st) && WEXITSTATUS(*st) == code));
  }
}
