// ptmem run as an unprivileged user (nobody, 65534, through setpriv, every capability
// dropped): another user's process is refused with one line naming both uids and what to
// do; its own programs, launched or attached to, are traced; its own non-dumpable process is
// refused with that reason.  ptmem and the sample are copied into a directory nobody can
// read, whatever the build tree's permissions.  Yama's ptrace_scope changes what the kernel
// allows: each test expects what the machine's setting (absent: classic rules) must give.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/attach_target.hpp"
#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kSource = "trace_ns_target.c";
constexpr uint32_t kNobody = 65534;

std::vector<std::string> as_nobody(std::vector<std::string> argv) {
  std::vector<std::string> all = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                  "--inh-caps=-all"};
  all.insert(all.end(), argv.begin(), argv.end());
  return all;
}

// ptmem and trace_ns_target where nobody can run them, and a directory it can write to.
struct NobodyKit {
  std::string dir, ptmem, target, report;
  NobodyKit() {
    dir = fs::canonical(temp_dir()).string();
    fs::permissions(dir, fs::perms(0755));
    ptmem = dir + "/ptmem";
    target = dir + "/trace_ns_target";
    fs::copy_file(ptmem::test::ptmem(), ptmem);
    fs::copy_file(sample("trace_ns_target"), target);
    fs::permissions(ptmem, fs::perms(0755));
    fs::permissions(target, fs::perms(0755));
    std::string out = dir + "/out";
    fs::create_directory(out);
    REQUIRE(::chown(out.c_str(), kNobody, kNobody) == 0);
    report = out + "/report.json";
  }
};

// kernel.yama.ptrace_scope, nullopt without Yama.
std::optional<int> yama_scope() {
  std::string s = read_text_file("/proc/sys/kernel/yama/ptrace_scope");
  if (s.empty()) return std::nullopt;
  return std::stoi(s);
}

void require_root() {
  REQUIRE_MESSAGE(::geteuid() == 0, "these tests drop from root to nobody with setpriv");
  REQUIRE(fs::exists("/usr/bin/setpriv"));
}

}  // namespace

TEST_CASE("trace attach: another user's process is refused in one line naming both uids and what to do") {
  require_root();
  NobodyKit kit;
  auto t = start({kit.target});  // root's
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  const std::string pid = std::to_string(t.pid());

  auto r = run(as_nobody({kit.ptmem, "attach", pid}), 60s);
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  std::string why = "process " + pid +
                    " belongs to uid 0 (root) and ptmem runs as uid 65534 (nobody) without CAP_SYS_PTRACE; "
                    "run ptmem as root or with CAP_SYS_PTRACE";
  if (yama_scope() == 2) why += " (kernel.yama.ptrace_scope is 2: nothing else may trace)";
  if (yama_scope() >= 3)
    why = "kernel.yama.ptrace_scope is 3: ptrace is disabled for every process, root's included, until reboot "
          "(the setting cannot be lowered); ptmem launch is refused too";
  CHECK(r.err == "ptmem: error: permission denied attaching to " + pid + ": " + why + "\n");
  CHECK(r.out == "");

  // Untouched: not traced, still answering.
  CHECK(tracer_of(t.pid()) == 0);
  t.write_stdin("leak 1\n");
  CHECK(expect_line(t, "leaked 1", seen));
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace launch: an unprivileged user traces a program it launches") {
  require_root();
  NobodyKit kit;
  auto r = run(as_nobody({kit.ptmem, "launch", "--show-kinds", "all", "--no-default-suppressions", "--format", "json", "-o", kit.report, "--", kit.target, "3"}), 120s);
  INFO("status " << r.status << "\nstderr: " << r.err);
  auto scope = yama_scope();
  if (scope >= 2) {  // Yama refuses even a child to a tracer without CAP_SYS_PTRACE
    CHECK(r.status == 1);
    CHECK(r.err.starts_with("ptmem: error: cannot trace " + kit.target + ": kernel.yama.ptrace_scope is " +
                            std::to_string(*scope) + ": "));
    return;
  }
  CHECK(r.status == 0);
  Json rep;
  std::string error;
  REQUIRE_MESSAGE(load_report(kit.report, rep, &error), error);
  const int line = marker_line(kSource, "@leak build-a");
  CHECK(expect_site(rep, kSource, line, 1, 3, 96) == "");
  auto at = leaks_at(rep, kSource, line);
  REQUIRE(at.size() == 1);
  CHECK(frame_function(at[0]["stack"][0]) == "leak_from_build_a");
  CHECK(leaks_of(rep).size() == 1);
  CHECK(summary(rep, "alloc_calls") == 3);
  CHECK(summary(rep, "leaked_bytes") == 96);
}

TEST_CASE("trace attach: an unprivileged user attaches to its own process") {
  require_root();
  NobodyKit kit;
  auto t = start(as_nobody({kit.target}));
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  const std::string pid = std::to_string(t.pid());

  // ptmem as nobody too, its stderr read line by line (sh makes it the Child's stdout).
  Child::Options o;
  o.argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"};
  for (auto& a : as_nobody({kit.ptmem, "attach", "--show-kinds", "all", "--no-default-suppressions", "--format", "json", "-o", kit.report, pid})) o.argv.push_back(a);
  Child p(o);
  auto scope = yama_scope();
  if (scope >= 1) {  // nobody's ptmem is not the target's ancestor
    auto line = p.read_line(60s);
    REQUIRE(line);
    CHECK(line->starts_with("ptmem: error: permission denied attaching to " + pid + ": kernel.yama.ptrace_scope is " +
                            std::to_string(*scope) + ": "));
    return;
  }
  auto attached = p.wait_for_line("ptmem: attached to process " + pid);
  REQUIRE_MESSAGE(attached, p.read_rest_stdout(2s));
  t.write_stdin("leak 2\n");
  REQUIRE(expect_line(t, "leaked 2", seen));
  p.signal(SIGINT);
  REQUIRE(p.wait_for_line("ptmem: detached from process " + pid));
  auto st = p.wait(60s);
  REQUIRE(st);
  CHECK(Child::exit_code(*st) == 0);
  Json rep;
  std::string error;
  REQUIRE_MESSAGE(load_report(kit.report, rep, &error), error);
  CHECK(rep["target"]["detached"] == true);
  const int line = marker_line(kSource, "@leak build-a");
  CHECK(expect_site(rep, kSource, line, 1, 2, 64) == "");
  CHECK(leaks_of(rep).size() == 1);
  CHECK(summary(rep, "alloc_calls") == 2);

  CHECK(tracer_of(t.pid()) == 0);
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace attach: a non-dumpable process of the same user is refused with that reason") {
  require_root();
  NobodyKit kit;
  auto t = start(as_nobody({kit.target}));
  std::string seen;
  REQUIRE(ready_pid(expect_line(t, "ready ", seen)) == t.pid());
  t.write_stdin("undumpable\n");
  REQUIRE(expect_line(t, "undumpable", seen));
  const std::string pid = std::to_string(t.pid());

  auto r = run(as_nobody({kit.ptmem, "attach", pid}), 60s);
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  std::string why = "process " + pid +
                    " is not dumpable (prctl(PR_SET_DUMPABLE, 0), a change of credentials, or an unreadable "
                    "executable), and only CAP_SYS_PTRACE may trace such a process; run ptmem as root or with "
                    "CAP_SYS_PTRACE";
  if (yama_scope() >= 3)
    why = "kernel.yama.ptrace_scope is 3: ptrace is disabled for every process, root's included, until reboot "
          "(the setting cannot be lowered); ptmem launch is refused too";
  CHECK(r.err == "ptmem: error: permission denied attaching to " + pid + ": " + why + "\n");

  CHECK(tracer_of(t.pid()) == 0);
  t.write_stdin("leak 1\n");
  CHECK(expect_line(t, "leaked 1", seen));
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}
