// Bad input for `ptmem launch` / `ptmem attach`: one clear line on stderr, a non-zero exit
// (1 for errors, 2 for command-line mistakes), nothing hanging, nothing run by mistake.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/attach_target.hpp"
#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

constexpr auto kQuick = std::chrono::seconds(30);

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// A process that waits on stdin until the test ends it (trace_signals prints "ready PID").
Child waiting_target(std::string& seen) {
  Child::Options o;
  o.argv = {sample("trace_signals")};
  o.pipe_stdin = true;
  Child c(o);
  expect_line(c, "ready ", seen);
  return c;
}

RunResult attach(const std::string& pid, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{ptmem::test::ptmem(), "attach"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(pid);
  return run(argv, kQuick);
}

/// A kernel thread's pid: kthreadd (2) when this pid namespace has it, else any process
/// flagged PF_KTHREAD in /proc/PID/stat; -1 when none is visible (e.g. in a container).
pid_t kernel_thread() {
  for (auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 2));
    std::string field;
    unsigned long flags = 0;
    // state ppid pgrp session tty_nr tpgid flags
    for (int i = 0; i < 7 && rest >> field; i++)
      if (i == 6) flags = std::stoul(field);
    if (flags & 0x00200000 /* PF_KTHREAD */) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

}  // namespace

TEST_CASE("trace errors: attach to a PID that does not exist") {
  std::ifstream in("/proc/sys/kernel/pid_max");
  long pid_max = 0;
  in >> pid_max;
  REQUIRE(pid_max > 0);
  auto r = attach(std::to_string(pid_max));  // pids are < pid_max
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(one_line(r.err, "ptmem: error: "));
  CHECK(r.err.find(std::to_string(pid_max)) != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("trace errors: attach to ptmem itself") {
  // $$ is the shell's pid, which exec turns into ptmem's.
  auto r = run({"/bin/sh", "-c", "exec \"$0\" attach $$", ptmem::test::ptmem()}, kQuick);
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(one_line(r.err, "ptmem: error: "));
}

TEST_CASE("trace errors: attach to a zombie") {
  Child z(std::vector<std::string>{"/bin/true"});
  REQUIRE(wait_for_state(z.pid(), "Z", 10s));  // exited, not reaped yet
  auto r = attach(std::to_string(z.pid()));
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(one_line(r.err, "ptmem: error: "));
  CHECK(lower(r.err).find("zombie") != std::string::npos);
  CHECK(z.wait(10s).has_value());
}

TEST_CASE("trace errors: attach to a kernel thread") {
  pid_t k = kernel_thread();
  if (k < 0) {
    MESSAGE("skipped: no kernel thread is visible in this pid namespace");
    return;
  }
  auto r = attach(std::to_string(k));
  INFO("stderr: " << r.err << " (pid " << k << ")");
  CHECK(r.status == 1);
  CHECK(one_line(r.err, "ptmem: error: "));
  CHECK(lower(r.err).find("kernel thread") != std::string::npos);
}

TEST_CASE("trace errors: attach to an already traced process names the tracer") {
  std::string seen;
  Child t = waiting_target(seen);
  REQUIRE(seen.find("ready") != std::string::npos);
  // This test process becomes the target's tracer (it is the parent: always allowed).
  REQUIRE(::ptrace(PTRACE_SEIZE, t.pid(), nullptr, nullptr) == 0);
  std::string comm;
  {
    std::ifstream in("/proc/self/comm");
    std::getline(in, comm);
  }
  auto r = attach(std::to_string(t.pid()));
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(one_line(r.err, "ptmem: error: "));
  CHECK(r.err.find(comm) != std::string::npos);
  // t's destructor SIGKILLs and reaps it (SIGKILL ends a tracee too).
}

TEST_CASE("trace errors: 32-bit targets are refused") {
  auto exe = sample("trace_i386");
  // launch: whether or not this kernel can run i386 code, ptmem must refuse it cleanly.
  {
    Child::Options o;
    o.argv = {ptmem::test::ptmem(), "launch", "--", exe};
    o.pipe_stdin = true;
    Child c(o);
    c.close_stdin();
    auto st = c.wait(kQuick);
    REQUIRE(st.has_value());
    std::string err = c.read_rest_stderr(2s);
    INFO("stderr: " << err);
    CHECK(Child::exit_code(*st) == 1);
    CHECK(one_line(err, "ptmem: error: "));
  }
  // attach needs the 32-bit program running.
  Child::Options o;
  o.argv = {exe};
  o.pipe_stdin = true;
  Child t(o);
  auto ready = t.read_line(5s);
  if (!ready || *ready != "ready") {
    MESSAGE("skipped attach: this kernel cannot run i386 binaries (no IA32 emulation), and gcc -m32 is "
            "unavailable (gcc-multilib not installed)");
    return;
  }
  auto r = attach(std::to_string(t.pid()));
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(one_line(r.err, "ptmem: error: "));
  CHECK(r.err.find("32-bit") != std::string::npos);
  t.close_stdin();
  CHECK(t.wait(10s).has_value());
}

TEST_CASE("trace errors: launching a program that does not exist or is not executable") {
  auto dir = temp_dir();
  auto plain = dir + "/not-executable";
  {
    std::ofstream(plain) << "#!/bin/sh\necho ran\n";
    ::chmod(plain.c_str(), 0644);
  }
  for (const std::string& prog : {std::string("/nonexistent/program"), std::string("ptmem-no-such-program-xyz"), plain}) {
    CAPTURE(prog);
    auto r = run({ptmem::test::ptmem(), "launch", "--", prog}, kQuick);
    INFO("stderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err, "ptmem: error: "));
    CHECK(r.err.find(base_name(prog)) != std::string::npos);
    CHECK(r.out.empty());
  }
}

TEST_CASE("trace errors: a bad --duration is a command-line mistake and nothing runs") {
  for (const std::string& d : {std::string("banana"), std::string("0"), std::string("-5s"), std::string("10parsecs")}) {
    CAPTURE(d);
    auto r = run({ptmem::test::ptmem(), "launch", "--duration", d, "--", sample("trace_clean")}, kQuick);
    INFO("stderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(one_line(r.err, "ptmem: "));
    CHECK(r.out.empty());  // trace_clean would have printed "clean"
    std::string seen;
    Child t = waiting_target(seen);  // never our own pid: a broken ptmem would trace us
    auto a = attach(std::to_string(t.pid()), {"--duration", d});
    INFO("attach stderr: " << a.err);
    CHECK(a.status == 2);
    CHECK(one_line(a.err, "ptmem: "));
  }
  auto r = run({ptmem::test::ptmem(), "attach", "not-a-pid"}, kQuick);
  INFO("stderr: " << r.err);
  CHECK(r.status == 2);
  CHECK(one_line(r.err, "ptmem: "));
}

TEST_CASE("trace errors: a --live that cannot be had is a command-line mistake, the target untouched") {
  std::string seen;
  Child t = waiting_target(seen);
  const std::string pid = std::to_string(t.pid());
  struct Case {
    std::vector<std::string> options;
    std::string says;
  };
  // run() gives ptmem pipes, not a terminal.
  for (const Case& c : {Case{{"--live", "screen"}, "--live screen needs a terminal on stdin and stderr"},
                        Case{{"--live", "banana"}, "--live"},
                        Case{{"-q", "--live", "blocks"}, "-q and --live exclude each other"}}) {
    CAPTURE(c.options);
    auto r = attach(pid, c.options);
    INFO("stderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(one_line(r.err, "ptmem: "));
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(ptmem::test::tracer_of(t.pid()) == 0);
  }
}

TEST_CASE("trace errors: an unwritable -o fails before the program runs") {
  for (const std::string& out : {std::string("/nonexistent-dir/report.json"), std::string("/proc/version/report.json")}) {
    CAPTURE(out);
    auto r = run({ptmem::test::ptmem(), "launch", "--format", "json", "-o", out, "--", sample("trace_clean")}, kQuick);
    INFO("stderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err, "ptmem: error: "));
    CHECK(r.out.empty());  // the program did not run
    std::error_code ec;
    CHECK(!std::filesystem::exists(out, ec));
  }
  std::string seen;
  Child t = waiting_target(seen);
  auto r = attach(std::to_string(t.pid()), {"-o", "/nonexistent-dir/report.json"});
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(one_line(r.err, "ptmem: error: "));
  // The target was never touched: it answers and is not traced.
  t.write_stdin("ping\n");
  CHECK(expect_line(t, "pong", seen, 10s).has_value());
  std::ifstream status("/proc/" + std::to_string(t.pid()) + "/status");
  std::string line, tracer;
  while (std::getline(status, line))
    if (line.rfind("TracerPid:", 0) == 0) tracer = line;
  CHECK(tracer == "TracerPid:\t0");
}

TEST_CASE("trace errors: a malformed value is one line naming the option and what it accepts") {
  struct Case {
    std::vector<std::string> argv;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"attach", "abc"}, "pid: 'abc' is not a positive integer"},
      {{"attach", "--", "-5"}, "pid: '-5' is not a positive integer"},
      {{"attach", "99999999999"}, "pid: '99999999999' is not a positive integer"},
      {{"attach", "--engine", "fast", "1"}, "--engine"},
      {{"launch", "--depth", "x", "--", "true"}, "--depth"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{ptmem::test::ptmem()};
    argv.insert(argv.end(), c.argv.begin(), c.argv.end());
    auto r = run(argv, kQuick);
    CAPTURE(r.err);
    CHECK(r.status == 2);
    CHECK(one_line(r.err, "ptmem: "));
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(r.err.size() < 160);  // no 300-digit range
  }
}
