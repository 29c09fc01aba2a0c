// The kind of every never-freed block, from the scan of the target's memory at exit.  The
// expected kinds and figures are memcheck's on the same sample (valgrind --leak-check=full
// --show-leak-kinds=all --run-libc-freeres=no gives the same four totals).
#include <doctest/doctest.h>

#include <regex>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

namespace {

const std::string kFile = "trace_reachability.c";

/// The one group at |marker|'s line: its kind, blocks and bytes.
void expect_kind(const Json& report, const std::string& marker, const std::string& kind, long blocks,
                 long bytes) {
  CAPTURE(marker);
  auto at = leaks_at(report, kFile, marker_line(kFile, marker));
  REQUIRE(at.size() == 1);
  CHECK(at[0]["kind"] == kind);
  CHECK(at[0]["blocks"] == blocks);
  CHECK(at[0]["bytes"] == bytes);
}

}  // namespace

TEST_CASE("trace reachability: definitely, indirectly, possibly lost and still reachable, as memcheck says") {
  auto r = launch_traced({sample("trace_reachability")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  expect_kind(r.report, "@leak reachable", "still_reachable", 1, 100);
  expect_kind(r.report, "@leak chain-parent", "still_reachable", 1, 64);
  expect_kind(r.report, "@leak chain-child", "still_reachable", 1, 72);
  expect_kind(r.report, "@leak lost", "definitely_lost", 1, 200);
  expect_kind(r.report, "@leak list-head", "definitely_lost", 1, 32);
  expect_kind(r.report, "@leak list-node", "indirectly_lost", 3, 144);
  expect_kind(r.report, "@leak interior", "possibly_lost", 1, 300);
  CHECK(leaks_of(r.report).size() == 7);
  CHECK(r.report["summary"]["reachability_scanned"] == true);
  CHECK(summary(r.report, "definitely_lost_blocks") == 2);
  CHECK(summary(r.report, "definitely_lost_bytes") == 232);
  CHECK(summary(r.report, "indirectly_lost_blocks") == 3);
  CHECK(summary(r.report, "indirectly_lost_bytes") == 144);
  CHECK(summary(r.report, "possibly_lost_blocks") == 1);
  CHECK(summary(r.report, "possibly_lost_bytes") == 300);
  CHECK(summary(r.report, "still_reachable_blocks") == 3);
  CHECK(summary(r.report, "still_reachable_bytes") == 236);
  CHECK(summary(r.report, "leaked_bytes") == 912);
}

TEST_CASE("trace reachability: --no-reachability leaves the kinds unclassified") {
  auto r = launch_traced({sample("trace_reachability")}, {"--no-reachability"});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  for (auto& g : leaks_of(r.report)) CHECK(g["kind"] == "unclassified");
  CHECK(leaks_of(r.report).size() == 7);
  CHECK(r.report["summary"]["reachability_scanned"] == false);
  CHECK(r.report["summary"]["definitely_lost_bytes"].is_null());
}

namespace {

/// memcheck's four totals for |program|: kind -> {bytes, blocks}.
std::map<std::string, std::pair<long, long>> memcheck_totals(const std::string& program) {
  auto r = run({"/bin/sh", "-c", "exec valgrind --leak-check=full --run-libc-freeres=no \"$0\"", program},
               std::chrono::seconds(120));
  std::map<std::string, std::pair<long, long>> totals;
  std::regex line(R"((definitely lost|indirectly lost|possibly lost|still reachable): ([0-9,]+) bytes in ([0-9,]+) blocks)");
  auto number = [](std::string s) {
    std::erase(s, ',');
    return std::stol(s);
  };
  for (std::sregex_iterator it(r.err.begin(), r.err.end(), line), end; it != end; ++it)
    totals[(*it)[1]] = {number((*it)[2]), number((*it)[3])};
  return totals;
}

}  // namespace

TEST_CASE("trace reachability: blocks held only by the stacks of threads that ended are lost, as memcheck says") {
  const std::string file = "trace_dead_threads.c";
  auto r = launch_traced({sample("trace_dead_threads")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  // Four blocks of 64, 128, 192 and 256 bytes, one site, referenced only by stale words
  // below the dead threads' last stack pointers.
  auto at = leaks_at(r.report, file, marker_line(file, "@leak dead-thread"));
  REQUIRE(at.size() == 1);
  CHECK(at[0]["kind"] == "definitely_lost");
  CHECK(at[0]["blocks"] == 4);
  CHECK(at[0]["bytes"] == 640);
  // memcheck on the same program (make deps installs valgrind): the same four totals.
  auto mc = memcheck_totals(sample("trace_dead_threads"));
  REQUIRE(mc.size() == 4);
  CHECK(mc["definitely lost"] == std::pair<long, long>{640, 4});
  const std::pair<const char*, const char*> kinds[] = {{"definitely lost", "definitely_lost"},
                                                      {"indirectly lost", "indirectly_lost"},
                                                      {"possibly lost", "possibly_lost"},
                                                      {"still reachable", "still_reachable"}};
  for (auto [theirs, ours] : kinds) {
    CAPTURE(theirs);
    CHECK(summary(r.report, std::string(ours) + "_bytes") == mc[theirs].first);
    CHECK(summary(r.report, std::string(ours) + "_blocks") == mc[theirs].second);
  }
}
