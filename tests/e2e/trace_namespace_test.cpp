// Targets in a mount namespace of their own (unshare -m), run from a private tmpfs: the path
// in their /proc/PID/maps names nothing in ptmem's namespace, or another file.  ptmem must
// read the target's files through /proc/PID/root (hooks and symbols), and keep them for a
// report written after the target is gone.  samples/trace_ns_target.c is built twice: build
// A (dynamic, leak_from_build_a, 32-byte blocks) and build B (trace_ns_other: static, other
// lines, leak_from_build_b, 48-byte blocks), so a report from the wrong file cannot match.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <unistd.h>

#include "../support/attach_target.hpp"
#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kSource = "trace_ns_target.c";

// argv running |program| as DIR/prog in a new mount namespace where a tmpfs covers DIR, so
// that DIR/prog exists only there.  sh execs the program: its pid is unshare's.
std::vector<std::string> in_namespace(const std::string& dir, const std::string& program,
                                      const std::vector<std::string>& args = {}) {
  std::vector<std::string> argv = {
      "/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
      "d=$1 p=$2; shift 2; mount -t tmpfs ptmem-ns \"$d\" && cp \"$p\" \"$d/prog\" && exec \"$d/prog\" \"$@\"",
      "sh", dir, program};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// A fresh directory for the namespace's tmpfs to cover; with build A at DIR/prog when
// |ours| (what ptmem's namespace sees at the target's path).
std::string make_dir(const std::string& name, bool ours) {
  std::string dir = fs::canonical(temp_dir()).string() + "/" + name;
  fs::create_directories(dir);
  if (ours) fs::copy_file(sample("trace_ns_target"), dir + "/prog");
  return dir;
}

// The site frame of the single leak group at build |which|'s marker ("" when it is fine).
std::string site_frame_is(const Json& report, const std::string& function, const std::string& module, int line) {
  auto groups = leaks_at(report, kSource, line);
  if (groups.size() != 1) return "expected one group at line " + std::to_string(line) + "\n" + leak_table(report);
  const Json& frame = groups[0]["stack"][0];
  if (frame_function(frame) != function || frame.value("module", "") != module)
    return "site frame: " + frame.dump();
  return "";
}

}  // namespace

TEST_CASE("trace attach: a target in its own mount namespace, run from a path ptmem cannot see") {
  const std::string dir = make_dir("private", false);
  auto t = start(in_namespace(dir, sample("trace_ns_target")));
  std::string seen;
  REQUIRE_MESSAGE(ready_pid(expect_line(t, "ready ", seen)) == t.pid(), (seen + t.read_rest_stderr(2s)));
  // The target runs DIR/prog, which ptmem's namespace does not have.
  REQUIRE(fs::read_symlink("/proc/" + std::to_string(t.pid()) + "/exe").string() == dir + "/prog");
  REQUIRE(!fs::exists(dir + "/prog"));

  AttachSession s(t.pid());
  REQUIRE(s.wait_attached());
  t.write_stdin("leak 3\n");
  REQUIRE(expect_line(t, "leaked 3", seen));
  REQUIRE(s.detach(SIGINT));
  const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
  INFO(ctx);
  CHECK(s.status() == 0);
  REQUIRE(s.load());
  const Json& rep = s.report();
  const int line = marker_line(kSource, "@leak build-a");
  CHECK(expect_site(rep, kSource, line, 1, 3, 96) == "");
  CHECK(site_frame_is(rep, "leak_from_build_a", dir + "/prog", line) == "");
  CHECK(leaks_of(rep).size() == 1);
  CHECK(summary(rep, "alloc_calls") == 3);
  CHECK(summary(rep, "free_calls") == 0);
  CHECK(summary(rep, "leaked_blocks") == 3);
  CHECK(summary(rep, "leaked_bytes") == 96);

  t.write_stdin("leak 1\n");  // still running, untraced
  CHECK(expect_line(t, "leaked 1", seen));
  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace attach: the target's path is another program in ptmem's namespace; ptmem reads the target's") {
  // Ours: build A at DIR/prog.  The target's: build B (static: its malloc is in that file
  // alone, so even the hooks fail if ptmem opens our DIR/prog).
  const std::string dir = make_dir("shared", true);
  auto t = start(in_namespace(dir, sample("trace_ns_other")));
  std::string seen;
  REQUIRE_MESSAGE(ready_pid(expect_line(t, "ready ", seen)) == t.pid(), (seen + t.read_rest_stderr(2s)));
  const std::string exe = "/proc/" + std::to_string(t.pid()) + "/exe";
  REQUIRE(fs::read_symlink(exe).string() == dir + "/prog");
  REQUIRE(fs::file_size(exe) == fs::file_size(sample("trace_ns_other")));
  REQUIRE(fs::file_size(dir + "/prog") == fs::file_size(sample("trace_ns_target")));
  REQUIRE(fs::file_size(exe) != fs::file_size(dir + "/prog"));

  AttachSession s(t.pid());
  REQUIRE(s.wait_attached());
  t.write_stdin("leak 4\n");
  REQUIRE(expect_line(t, "leaked 4", seen));
  REQUIRE(s.detach(SIGINT));
  const std::string ctx = s.describe() + "\ntarget said:\n" + seen;
  INFO(ctx);
  CHECK(s.status() == 0);
  REQUIRE(s.load());
  const Json& rep = s.report();
  const int line = marker_line(kSource, "@leak build-b");
  CHECK(expect_site(rep, kSource, line, 1, 4, 192) == "");
  CHECK(site_frame_is(rep, "leak_from_build_b", dir + "/prog", line) == "");
  CHECK(leaks_in_function(rep, "leak_from_build_a").empty());
  CHECK(leaks_of(rep).size() == 1);
  CHECK(summary(rep, "alloc_calls") == 4);
  CHECK(summary(rep, "free_calls") == 0);
  CHECK(summary(rep, "leaked_bytes") == 192);

  t.write_stdin("quit\n");
  CHECK(exited_zero(t));
}

TEST_CASE("trace launch: a program exec'd in a private mount namespace is symbolized from its file after it exits") {
  // The report is written once the target and its namespace are gone: ptmem must have kept
  // the target's DIR/prog (build B), not take ours (build A) at the same path.
  const std::string dir = make_dir("launched", true);
  auto r = launch_traced(in_namespace(dir, sample("trace_ns_other"), {"5"}));
  INFO(r.describe());
  CHECK(r.status == 0);
  REQUIRE(r.parsed);
  const Json& rep = r.report;
  const int line = marker_line(kSource, "@leak build-b");
  CHECK(expect_site(rep, kSource, line, 1, 5, 240) == "");
  CHECK(site_frame_is(rep, "leak_from_build_b", dir + "/prog", line) == "");
  CHECK(leaks_in_function(rep, "leak_from_build_a").empty());
  // Static glibc's own start-up blocks are live at exit too; none of them has a frame in
  // the program's source.
  int in_source = 0;
  for (const auto& group : leaks_of(rep))
    for (const auto& frame : group["stack"])
      if (frame_file(frame) == kSource) {
        ++in_source;
        break;
      }
  CHECK(in_source == 1);
}
