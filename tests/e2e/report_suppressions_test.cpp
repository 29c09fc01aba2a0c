// Suppressions end to end (issue #10): a .supp file that valgrind itself wrote, an LSan file,
// the built-in runtime suppressions, and --gen-suppressions read back.  The matcher's rules
// are unit-tested in tests/unit/report_suppressions_test.cpp; here ptmem's real reports meet
// real files.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

namespace {

const std::string kMalloc = "trace_malloc.c";

std::string write_file(const std::string& name, const std::string& text) {
  std::string path = temp_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// `ptmem launch` with every kind shown and no built-in suppression, plus |options|.
TraceRun traced(const std::string& program, const std::vector<std::string>& options) {
  return launch_traced({sample(program)}, options);
}

}  // namespace

TEST_CASE("suppressions: a .supp file written by valgrind suppresses the same leaks in ptmem") {
  std::string valgrind = find_in_path("valgrind");
  REQUIRE_MESSAGE(!valgrind.empty(), "valgrind is not installed (make deps installs it)");
  std::string log = temp_dir() + "/vg.log";
  auto vg = run({valgrind, "--leak-check=full", "--show-leak-kinds=all", "--gen-suppressions=all",
                 "--log-file=" + log, sample("trace_malloc")});
  REQUIRE(vg.status == 0);
  std::string supp = supp_entries(read_text_file(log));
  REQUIRE(supp.find("Memcheck:Leak") != std::string::npos);
  auto path = write_file("valgrind.supp", supp);

  auto plain = traced("trace_malloc", {});
  REQUIRE(plain.parsed);
  check_sites(plain.report, kMalloc, kMallocSites);
  const long bytes = summary(plain.report, "leaked_bytes"), blocks = summary(plain.report, "leaked_blocks");
  CHECK(bytes == 1836);

  auto r = traced("trace_malloc", {"--suppressions", path, "--error-exitcode", "9"});
  INFO(r.describe());
  REQUIRE(r.parsed);
  CHECK(leaks_of(r.report).empty());
  CHECK(summary(r.report, "leaked_bytes") == 0);
  CHECK(summary(r.report, "suppressed_bytes") == bytes);
  CHECK(summary(r.report, "suppressed_blocks") == blocks);
  CHECK(summary(r.report, "suppressed_sites") == 7);
  // Suppressed is not reported: the exit code does not fire.
  CHECK(r.status == 0);
  long sites = 0;
  for (auto& u : r.report["suppressions_used"]) {
    CHECK(u["file"] == path);
    CHECK(u["line"].get<long>() > 0);
    sites += u["sites"].get<long>();
  }
  CHECK(sites == 7);
}

TEST_CASE("suppressions: LeakSanitizer leak: patterns") {
  auto path = write_file("lsan.txt",
                         "# leak_loop's and leak_aligned's blocks are known\n"
                         "leak:leak_loop\n"
                         "leak:^leak_aligned$\n"
                         "race:ignored_here\n");
  auto r = traced("trace_malloc", {"--suppressions", path});
  INFO(r.describe());
  REQUIRE(r.parsed);
  // Left: leak_small 40, leak_calloc 120, leak_zero 0.
  CHECK(summary(r.report, "leaked_bytes") == 40 + 120 + 0);
  CHECK(summary(r.report, "leaked_blocks") == 3);
  CHECK(summary(r.report, "suppressed_bytes") == 320 + 100 + 256 + 1000);
  CHECK(summary(r.report, "suppressed_blocks") == 5 + 3);
  // In order of first match over the sites, largest first: valloc's 1000 bytes lead.
  REQUIRE(r.report["suppressions_used"].size() == 2);
  CHECK(r.report["suppressions_used"][0]["name"] == "^leak_aligned$");
  CHECK(r.report["suppressions_used"][0]["sites"] == 3);
  CHECK(r.report["suppressions_used"][0]["bytes"] == 1356);
  CHECK(r.report["suppressions_used"][1]["name"] == "leak_loop");
  CHECK(r.report["suppressions_used"][1]["blocks"] == 5);
  CHECK(r.report["suppressions_used"][1]["line"] == 2);

  auto bad = write_file("bad.txt", "leak:x\nbogus line\n");
  auto res = run({ptmem::test::ptmem(), "launch", "--suppressions", bad, "--", sample("trace_clean"), "exit", "5"});
  CHECK(res.status == 1);
  CHECK(one_line(res.err, "ptmem: error: --suppressions: " + bad + ":2: "));
  CHECK(res.out == "");  // refused before the program ran
}

TEST_CASE("suppressions: the built-in ones take the C++ runtime's one-time pool, and only that") {
  // --show-kinds all: the pool is still reachable, hidden by default anyway.
  auto r = launch_traced({sample("trace_cxx")}, {"--show-kinds", "all"}, 120s, {});
  // And without launch_traced's --no-default-suppressions:
  auto dir = temp_dir();
  auto res = run({ptmem::test::ptmem(), "launch", "--format", "json", "-o", dir + "/r.json", "--show-kinds", "all", "--",
                  sample("trace_cxx")});
  REQUIRE(res.status == 0);
  Json j;
  std::string error;
  REQUIRE(load_report(dir + "/r.json", j, &error));
  REQUIRE(r.parsed);
  // Without the defaults (launch_traced): the pool is there.
  long pools = 0;
  for (auto& g : leaks_of(r.report)) pools += g["bytes"] == kLibstdcxxPoolBytes;
  CHECK(pools == 1);
  // With them: gone, counted as suppressed by a built-in entry; the program's sites stay.
  for (auto& g : leaks_of(j)) CHECK(g["bytes"] != kLibstdcxxPoolBytes);
  check_sites(j, "trace_cxx.cpp", kCxxSites);
  CHECK(summary(j, "suppressed_bytes") == kLibstdcxxPoolBytes);
  CHECK(summary(j, "suppressed_blocks") == 1);
  REQUIRE(j["suppressions_used"].size() == 1);
  CHECK(j["suppressions_used"][0]["file"] == "<default>");
  CHECK(summary(j, "leaked_bytes") == summary(r.report, "leaked_bytes") - kLibstdcxxPoolBytes);
}

TEST_CASE("suppressions: --gen-suppressions=FILE read back suppresses every site it was made from") {
  auto supp = temp_dir() + "/gen.supp";
  auto r = traced("trace_malloc", {"--gen-suppressions=" + supp});
  INFO(r.describe());
  REQUIRE(r.parsed);
  auto text = read_text_file(supp);
  CAPTURE(text);
  size_t entries = 0;
  for (size_t at = 0; (at = text.find("Memcheck:Leak", at)) != std::string::npos; ++at) ++entries;
  CHECK(entries == leaks_of(r.report).size());
  auto again = traced("trace_malloc", {"--suppressions", supp});
  REQUIRE(again.parsed);
  CHECK(leaks_of(again.report).empty());
  CHECK(summary(again.report, "suppressed_bytes") == 1836);
  // Another program's sites are not touched by them.
  auto other = traced("demo", {"--suppressions", supp});
  REQUIRE(other.parsed);
  CHECK(summary(other.report, "leaked_bytes") == 105);
}
