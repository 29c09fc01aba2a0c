// The inject engine's own promises, beyond the reports both engines must agree on (`make
// test` runs every tracer test under each engine): attach and detach leave the target's
// code and mappings exactly as they were, it is never left traced, and a ptmem killed with
// SIGKILL leaves a target that runs on, correct.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "../support/attach_target.hpp"
#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kInject = {"--engine", "inject"};

struct Mapping {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms, path;
};

std::vector<Mapping> maps_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::vector<Mapping> out;
  std::string line;
  while (std::getline(in, line)) {
    Mapping m;
    char range[64], perms[8], dev[16];
    unsigned long inode = 0;
    int used = 0;
    if (std::sscanf(line.c_str(), "%63s %7s %lx %15s %lu %n", range, perms, &m.offset, dev, &inode, &used) < 5) continue;
    std::sscanf(range, "%lx-%lx", &m.start, &m.end);
    m.perms = perms;
    m.path = line.substr(static_cast<size_t>(used));
    out.push_back(m);
  }
  return out;
}

/// "" when the code of every executable file mapping of |pid| equals its file, else where
/// it does not: a patch, a jump or an int3 left behind.
std::string code_differs(pid_t pid) {
  std::ifstream mem("/proc/" + std::to_string(pid) + "/mem", std::ios::binary);
  for (const Mapping& m : maps_of(pid)) {
    if (m.perms.find('x') == std::string::npos || m.path.empty() || m.path[0] != '/') continue;
    std::ifstream file(m.path, std::ios::binary);
    std::string want(m.end - m.start, '\0'), have(m.end - m.start, '\0');
    file.seekg(static_cast<std::streamoff>(m.offset));
    file.read(want.data(), static_cast<std::streamsize>(want.size()));
    want.resize(static_cast<size_t>(file.gcount()));  // the file may end inside the last page
    mem.clear();
    mem.seekg(static_cast<std::streamoff>(m.start));
    mem.read(have.data(), static_cast<std::streamsize>(want.size()));
    have.resize(want.size());
    if (!mem) return m.path + ": unreadable";
    if (have != want) {
      size_t at = 0;
      while (at < want.size() && have[at] == want[at]) ++at;
      std::ostringstream o;
      o << m.path << " differs at file offset 0x" << std::hex << m.offset + at;
      return o.str();
    }
  }
  return "";
}

/// Mappings ptmem could have left: its agent's and anonymous executable pages.
std::string leftovers(pid_t pid) {
  std::string out;
  for (const Mapping& m : maps_of(pid))
    if (m.path.find("ptmem") != std::string::npos || (m.path.empty() && m.perms.find('x') != std::string::npos))
      out += m.perms + " " + m.path + "\n";
  return out;
}

pid_t tracer_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("TracerPid:", 0) == 0) return std::stoi(line.substr(10));
  return -1;
}

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
