// Issue #10's report options end to end: which kinds are shown (--show-kinds), what the exit
// codes count, target.argv, and several report forms from one run (--format repeated with
// -o each, --output-dir, --svg).  The formats' contents are checked in
// tests/unit/report_formats_test.cpp and tests/e2e/report_formats_test.cpp.  Not run per engine:
// the report is built the same way after either.
#include <doctest/doctest.h>

#include <fstream>
#include <sys/stat.h>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

namespace {

const std::string kReach = "trace_reachability.c";

TraceRun launch_plain(const std::vector<std::string>& program, const std::vector<std::string>& options) {
  // Without kEveryLeak: ptmem's own defaults.
  TraceRun r;
  r.report_path = temp_dir() + "/report.json";
  std::vector<std::string> argv{ptmem::test::ptmem(), "launch", "--format", "json", "-o", r.report_path};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  auto res = run(argv);
  r.status = res.status;
  r.out = res.out;
  r.err = res.err;
  r.parsed = load_report(r.report_path, r.report, &r.parse_error);
  return r;
}

std::vector<std::string> kinds_of(const Json& report) {
  std::vector<std::string> k;
  for (auto& g : leaks_of(report)) k.push_back(g["kind"]);
  std::sort(k.begin(), k.end());
  k.erase(std::unique(k.begin(), k.end()), k.end());
  return k;
}

}  // namespace

TEST_CASE("report options: --show-kinds, memcheck's default less nothing: definite, indirect, possible") {
  // trace_reachability: definitely lost 232 B / 2 blocks (2 sites), indirectly 144 / 3 (1),
  // possibly 300 / 1 (1), still reachable 236 / 3 (3 sites).
  auto r = launch_plain({sample("trace_reachability")}, {});
  INFO(r.describe());
  REQUIRE(r.parsed);
  CHECK(kinds_of(r.report) == std::vector<std::string>{"definitely_lost", "indirectly_lost", "possibly_lost"});
  CHECK(summary(r.report, "leaked_bytes") == 232 + 144 + 300);
  CHECK(summary(r.report, "leaked_blocks") == 6);
  CHECK(summary(r.report, "hidden_bytes") == 236);
  CHECK(summary(r.report, "hidden_blocks") == 3);
  CHECK(summary(r.report, "hidden_sites") == 3);
  // The per-kind totals stay whole, as memcheck's LEAK SUMMARY.
  CHECK(summary(r.report, "still_reachable_bytes") == 236);

  r = launch_plain({sample("trace_reachability")}, {"--show-kinds", "definite"});
  INFO(r.describe());
  REQUIRE(r.parsed);
  CHECK(kinds_of(r.report) == std::vector<std::string>{"definitely_lost"});
  CHECK(summary(r.report, "leaked_bytes") == 232);
  CHECK(summary(r.report, "hidden_bytes") == 144 + 300 + 236);

  r = launch_plain({sample("trace_reachability")}, {"--show-kinds", "reachable,possible"});
  REQUIRE(r.parsed);
  CHECK(kinds_of(r.report) == std::vector<std::string>{"possibly_lost", "still_reachable"});
  CHECK(summary(r.report, "leaked_bytes") == 300 + 236);

  r = launch_plain({sample("trace_reachability")}, {"--show-kinds", "all"});
  REQUIRE(r.parsed);
  CHECK(summary(r.report, "leaked_bytes") == 232 + 144 + 300 + 236);
  CHECK(summary(r.report, "hidden_sites") == 0);

  // Without the scan the kinds are unknown: every site is shown.
  r = launch_plain({sample("trace_reachability")}, {"--no-reachability"});
  REQUIRE(r.parsed);
  CHECK(kinds_of(r.report) == std::vector<std::string>{"unclassified"});
  CHECK(summary(r.report, "leaked_bytes") == 232 + 144 + 300 + 236);

  // The text report says what it left out.
  auto dir = temp_dir();
  auto res = run({ptmem::test::ptmem(), "launch", "-o", dir + "/r.txt", "--", sample("trace_reachability")});
  REQUIRE(res.status == 0);
  auto text = read_text_file(dir + "/r.txt");
  INFO(text);
  CHECK(text.find("not shown (--show-kinds): 236 bytes in 3 blocks (3 sites)") != std::string::npos);
  CHECK(text.find("(still reachable)") == std::string::npos);
}

TEST_CASE("report options: --error-exitcode counts shown memory leaks, --fd-error-exitcode leaked fds") {
  // trace_clean leak: one 16-byte block, still reachable (a global holds it): not shown by
  // default, so not counted.
  auto r = launch_plain({sample("trace_clean"), "leak"}, {"--error-exitcode", "42", "--fd-error-exitcode", "43"});
  INFO(r.describe());
  CHECK(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(summary(r.report, "hidden_blocks") == 1);
  r = launch_plain({sample("trace_clean"), "leak"}, {"--error-exitcode", "42", "--show-kinds", "reachable"});
  INFO(r.describe());
  CHECK(r.status == 42);
  // demo: 3 blocks definitely lost and an fd: memory first, then fds alone.
  r = launch_plain({sample("demo")}, {"--error-exitcode", "42", "--fd-error-exitcode", "43"});
  CHECK(r.status == 42);
  r = launch_plain({sample("demo")}, {"--fd-error-exitcode", "43"});
  CHECK(r.status == 43);
  r = launch_plain({sample("demo")}, {"--error-exitcode", "42", "--show-kinds", "none", "--fd-error-exitcode", "43"});
  CHECK(r.status == 43);
  r = launch_plain({sample("trace_clean")}, {"--error-exitcode", "42", "--fd-error-exitcode", "43"});
  CHECK(r.status == 0);
}

TEST_CASE("report options: target.argv is the whole argument list, launched or attached") {
  auto r = launch_plain({sample("trace_clean"), "exit", "0"}, {});
  REQUIRE(r.parsed);
  CHECK(r.report["target"]["argv"] == Json::array({sample("trace_clean"), "exit", "0"}));
  CHECK(r.report["target"]["command"].is_string());
}

TEST_CASE("report options: several forms from one run, each whole; bad combinations refused before tracing") {
  auto dir = temp_dir();
  auto res = run({ptmem::test::ptmem(), "launch", "--format", "json", "-o", dir + "/a.json", "--format", "text", "-o",
                  dir + "/a.txt", "--svg", dir + "/a.svg", "--", sample("demo")});
  INFO(res.err);
  REQUIRE(res.status == 0);
  Json j;
  std::string error;
  REQUIRE(load_report(dir + "/a.json", j, &error));
  CHECK(summary(j, "leaked_bytes") == 105);
  auto text = read_text_file(dir + "/a.txt");
  CHECK(text.find("105 bytes in 3 blocks are never freed (definitely lost)") != std::string::npos);
  CHECK(read_text_file(dir + "/a.svg").find("<svg") != std::string::npos);

  auto out = dir + "/out";
  res = run({ptmem::test::ptmem(), "launch", "--output-dir", out, "--format", "json", "--format", "valgrind-xml", "--format",
             "sarif", "--format", "folded", "--format", "pprof", "--format", "text", "--", sample("demo")});
  INFO(res.err);
  REQUIRE(res.status == 0);
  for (const char* f : {"report.json", "report.xml", "report.sarif", "report.folded", "report.pb.gz", "report.txt"}) {
    CAPTURE(f);
    struct stat st{};
    CHECK(::stat((out + "/" + f).c_str(), &st) == 0);
    CHECK(st.st_size > 0);
  }

  // Refused up front, with one line and no trace.
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad{
      {{"--format", "json", "--format", "text"}, "several --format need one -o each"},
      {{"--format", "json", "-o", dir + "/x", "--format", "text"}, "give one -o per --format"},
      {{"--format", "pprof"}, "--format pprof is binary"},
      {{"--output-dir", out, "-o", dir + "/y"}, "either -o or --output-dir"},
      {{"-o", "/nonexistent-dir/r.txt"}, "/nonexistent-dir"},
  };
  for (auto& [opts, says] : bad) {
    CAPTURE(says);
    std::vector<std::string> argv{ptmem::test::ptmem(), "launch"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.insert(argv.end(), {"--", sample("trace_clean"), "exit", "7"});
    auto r = run(argv);
    CHECK(r.status == 1);
    CHECK(one_line(r.err, "ptmem: error: "));
    CHECK(r.err.find(says) != std::string::npos);
    CHECK(r.out == "");  // the program never ran
  }
  for (auto [opt, value] : {std::pair{"--show-kinds", "definitely"}, {"--format", "xml"}}) {
    auto r = run({ptmem::test::ptmem(), "launch", opt, value, "--", sample("trace_clean")});
    CHECK(r.status == 2);
    CHECK(one_line(r.err));
    CHECK(r.err.find(opt) != std::string::npos);
  }
}

TEST_CASE("report options: --show-kinds, suppressions and the exit codes apply to each followed child") {
  // trace_forks: every leak is still reachable (globals hold them); child 2 leaks an fd.
  // Parent 2x24, child 1 3x40, child 2 2x100 + fd, grandchild (trace_malloc) 1836 bytes.
  auto lsan = temp_dir() + "/lsan.txt";
  {
    std::ofstream(lsan) << "leak:child1\n";
  }
  auto r = launch_plain({sample("trace_forks")}, {"--follow-forks", "--error-exitcode", "42", "--fd-error-exitcode", "43"});
  INFO(r.describe());
  REQUIRE(r.parsed);
  REQUIRE(r.report["children"].size() == 3);
  // Nothing shown (reachable only): no memory exit code, but child 2's fd counts.
  CHECK(r.status == 43);
  CHECK(summary(r.report, "hidden_bytes") == 48);
  std::vector<long> hidden;
  for (auto& c : r.report["children"]) hidden.push_back(summary(c, "hidden_bytes"));
  CHECK(hidden == std::vector<long>{120, 200, 1836});

  r = launch_plain({sample("trace_forks")}, {"--follow-forks", "--show-kinds", "all", "--suppressions", lsan,
                                              "--error-exitcode", "42"});
  INFO(r.describe());
  REQUIRE(r.parsed);
  CHECK(r.status == 42);
  std::vector<std::pair<long, long>> shown_suppressed;
  for (auto& c : r.report["children"])
    shown_suppressed.emplace_back(summary(c, "leaked_bytes"), summary(c, "suppressed_bytes"));
  CHECK(shown_suppressed == std::vector<std::pair<long, long>>{{0, 120}, {200, 0}, {1836, 0}});
  CHECK(r.report["children"][0]["suppressions_used"][0]["name"] == "child1");
  CHECK(summary(r.report, "leaked_bytes") == 48);
}
