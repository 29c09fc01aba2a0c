// `ptmem launch` file-descriptor reports.  The samples print the number of every fd they
// leak ("fd NAME N"); kinds, targets and counts were checked with valgrind --track-fds=yes
// and strace (which also shows glibc's internal opens: fopen's, opendir's, freopen's dup3).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

namespace {

struct FdCase {
  const char* name;    // "fd NAME N" in the output, "// @fd NAME" in the source
  const char* kind;
  const char* target;  // exact path under the scratch dir ("" = none), or a prefix / infix below
  const char* prefix;  // target must start with this ("" = no check)
  const char* infix;   // target must contain this ("" = no check)
};

// What trace_fds.c leaks.
const FdCase kFds[] = {
    {"open", "file", "a.txt", "", ""},
    {"openat", "file", "b.txt", "", ""},
    {"fopen", "file", "d.txt", "", ""},
    {"opendir", "directory", ".", "", ""},
    {"socket", "socket", "", "socket:[", ""},
    {"tcp", "socket", "", "socket:[", ""},
    {"socketpair", "socket", "", "socket:[", ""},
    {"accept", "socket", "", "socket:[", ""},
    {"pipe", "pipe", "", "pipe:[", ""},
    {"dup", "file", "e.txt", "", ""},
    {"dup2", "file", "a.txt", "", ""},
    {"fcntl-dupfd", "file", "a.txt", "", ""},
    {"eventfd", "eventfd", "", "", ""},
    {"timerfd", "timerfd", "", "", ""},
    {"signalfd", "signalfd", "", "", ""},
    {"epoll", "epoll", "", "", ""},
    {"inotify", "inotify", "", "", ""},
    {"memfd", "memfd", "", "", "trace_memfd"},
    {"scm-rights", "file", "h.txt", "", ""},
};

std::string expected_path(const std::string& dir, const std::string& rel) {
  return rel == "." ? dir : dir + "/" + rel;
}

long expected_open_at_end(size_t leaked) {
  // fd_open_at_end counts every fd open at the end: the leaks plus what the program
  // inherited (0, 1, 2 and any non-close-on-exec fd of this test process).
  return static_cast<long>(leaked + inheritable_fds().size());
}

}  // namespace

TEST_CASE("trace launch: fd leaks of every kind at their lines, the closed ones absent") {
  const std::string f = "trace_fds.c";
  auto dir = std::filesystem::canonical(temp_dir()).string();
  auto r = launch_traced({sample("trace_fds"), dir});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  auto numbers = fd_lines(r.out);
  REQUIRE(numbers.size() == std::size(kFds));
  CHECK(r.out.ends_with("done\n"));

  std::set<int> expected_fds;
  for (auto& c : kFds) {
    const std::string name = c.name;
    CAPTURE(name);
    REQUIRE(numbers.count(c.name) == 1);
    int fd = numbers[c.name];
    expected_fds.insert(fd);
    const Json* e = fd_leak(r.report, fd);
    REQUIRE(e != nullptr);
    CHECK((*e)["kind"] == c.kind);
    std::string target = (*e)["target"].is_string() ? (*e)["target"].get<std::string>() : "";
    if (*c.target) CHECK(target == expected_path(dir, c.target));
    if (*c.prefix) CHECK(target.rfind(c.prefix, 0) == 0);
    if (*c.infix) CHECK(target.find(c.infix) != std::string::npos);
    CHECK(!target.empty());
    REQUIRE((*e)["stack"].is_array());
    REQUIRE(!(*e)["stack"].empty());
    // fopen, opendir and the SCM_RIGHTS receive reach the kernel inside glibc: the site is
    // still the program's line.
    CHECK(frame_file((*e)["stack"][0]) == f);
    CHECK(frame_line((*e)["stack"][0]) == marker_line(f, std::string("@fd ") + c.name));
  }
  // Nothing else: 0, 1, 2 and inherited fds are not leaks, the closed ones are gone.
  std::set<int> reported;
  for (auto& e : fd_leaks_of(r.report)) reported.insert(e["fd"].get<int>());
  CHECK(reported == expected_fds);
  // Sorted by fd.
  auto& leaks = fd_leaks_of(r.report);
  for (size_t i = 1; i < leaks.size(); i++) CHECK(leaks[i - 1]["fd"].get<int>() < leaks[i]["fd"].get<int>());

  // 47 fds created: a pipe or socketpair makes two, the fd received with SCM_RIGHTS one,
  // the failed open none; 28 closed, including the three of close_range and the one dup2
  // replaced.  freopen counts as one close and one open: inside glibc it opens the new file
  // on a temporary fd and dup3()s it onto the old number (strace shows 2 + 2 syscalls there),
  // but that is one call of the program's, hooked as a whole like fopen and opendir.
  CHECK(summary(r.report, "fd_opened") == 47);
  CHECK(summary(r.report, "fd_closed") == 28);
  CHECK(summary(r.report, "fd_open_at_end") == expected_open_at_end(std::size(kFds)));

  // The FILE and DIR of the leaked fopen/opendir leak as memory, on the same lines.
  CHECK(expect_site(r.report, f, marker_line(f, "@fd fopen"), 1, 1, 472) == "");
  CHECK(expect_site(r.report, f, marker_line(f, "@fd opendir"), 1, 1, 32816) == "");
  CHECK(leaks_of(r.report).size() == 2);
  CHECK(summary(r.report, "alloc_calls") == 7);
  CHECK(summary(r.report, "free_calls") == 5);
  CHECK(summary(r.report, "leaked_bytes") == 33288);
  CHECK(summary(r.report, "peak_live_bytes") == 66104);
}

TEST_CASE("trace launch: --fds-only reports fds without tracing the allocator; --no-fds the reverse") {
  const std::string f = "trace_fds.c";
  {
    auto dir = std::filesystem::canonical(temp_dir()).string();
    auto r = launch_traced({sample("trace_fds"), dir}, {"--fds-only"});
    const std::string ctx = r.describe();
    INFO(ctx);
    REQUIRE(r.status == 0);
    REQUIRE(r.parsed);
    CHECK(fd_leaks_of(r.report).size() == std::size(kFds));
    CHECK(summary(r.report, "fd_opened") == 47);
    CHECK(summary(r.report, "fd_closed") == 28);
    CHECK(leaks_of(r.report).empty());
    CHECK(summary(r.report, "alloc_calls") == 0);
  }
  {
    auto dir = std::filesystem::canonical(temp_dir()).string();
    auto r = launch_traced({sample("trace_fds"), dir}, {"--no-fds"});
    const std::string ctx = r.describe();
    INFO(ctx);
    REQUIRE(r.status == 0);
    REQUIRE(r.parsed);
    CHECK(fd_leaks_of(r.report).empty());
    CHECK(expect_site(r.report, f, marker_line(f, "@fd fopen"), 1, 1, 472) == "");
    CHECK(expect_site(r.report, f, marker_line(f, "@fd opendir"), 1, 1, 32816) == "");
    CHECK(summary(r.report, "alloc_calls") == 7);
  }
}

TEST_CASE("trace launch: an fd opened by one thread and closed by another is not a leak") {
  const std::string f = "trace_fds_thread.c";
  auto dir = std::filesystem::canonical(temp_dir()).string();
  auto r = launch_traced({sample("trace_fds_thread"), dir}, {"--fds-only"});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  auto numbers = fd_lines(r.out);
  REQUIRE(numbers.count("thread-leak") == 1);
  auto& leaks = fd_leaks_of(r.report);
  REQUIRE(leaks.size() == 1);
  CHECK(leaks[0]["fd"] == numbers["thread-leak"]);
  CHECK(leaks[0]["kind"] == "file");
  CHECK(leaks[0]["target"] == dir + "/leak.txt");
  REQUIRE(!leaks[0]["stack"].empty());
  CHECK(frame_file(leaks[0]["stack"][0]) == f);
  CHECK(frame_line(leaks[0]["stack"][0]) == marker_line(f, "@fd thread-leak"));
  CHECK(summary(r.report, "fd_opened") == 4);
  CHECK(summary(r.report, "fd_closed") == 3);
  CHECK(summary(r.report, "threads_seen") == 5);
}

TEST_CASE("trace launch: getaddrinfo's internal fds are attributed, closed and not reported") {
  const std::string f = "trace_fds.c";
  auto dir = std::filesystem::canonical(temp_dir()).string();
  auto r = launch_traced({sample("trace_fds"), dir, "gai"}, {"--fds-only", "--depth", "32"});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  auto numbers = fd_lines(r.out);
  REQUIRE(numbers.count("gai-after") == 1);
  auto& leaks = fd_leaks_of(r.report);
  REQUIRE(leaks.size() == 1);
  CHECK(leaks[0]["fd"] == numbers["gai-after"]);
  CHECK(leaks[0]["target"] == "/dev/null");
  CHECK(frame_line(leaks[0]["stack"][0]) == marker_line(f, "@fd gai-after"));
  // Here (Debian 12, no nscd): a netlink socket, two attempts at nscd's socket,
  // nsswitch.conf, host.conf, resolv.conf and /etc/hosts, all opened and closed inside
  // glibc, then the one leak.
  CHECK(summary(r.report, "fd_opened") == summary(r.report, "fd_closed") + 1);
  CHECK(summary(r.report, "fd_opened") == 8);
}

TEST_CASE("trace launch: fds inherited at launch are not leaks") {
  // The shell opens fd 7 without close-on-exec and becomes ptmem: the program inherits it.
  auto report = temp_dir() + "/report.json";
  auto res = run({"/bin/sh", "-c", "exec 7</dev/null; exec \"$0\" \"$@\"", ptmem::test::ptmem(), "launch", "--show-kinds", "all", "--no-default-suppressions", "--format", "json",
                  "-o", report, "--", sample("trace_clean"), "fds"},
                 std::chrono::seconds(60));
  INFO("stderr: " << res.err << "\nstdout: " << res.out);
  REQUIRE(res.status == 0);
  auto inherited = inheritable_fds();
  inherited.push_back(7);
  std::sort(inherited.begin(), inherited.end());
  inherited.erase(std::unique(inherited.begin(), inherited.end()), inherited.end());
  std::string expected = "fds";
  for (int fd : inherited) expected += " " + std::to_string(fd);
  CHECK(res.out == expected + "\n");
  Json j;
  std::string error;
  REQUIRE(load_report(report, j, &error));
  CHECK(fd_leaks_of(j).empty());
}
