// `ptmem launch` memory reports against samples with known leaks.  Every expected figure
// below was checked independently: valgrind memcheck (--run-libc-freeres=no
// --run-cxx-freeres=no: what is really live at exit) and samples/trace_gdb_oracle.py (gdb
// breakpoints on the same allocator entry points, counting with the contract's semantics).
// Lines come from the markers in the samples, never from numbers written here.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

namespace {

const std::string kMalloc = "trace_malloc.c";

void check_malloc_counters(const Json& report) {
  CHECK(summary(report, "alloc_calls") == 16);
  CHECK(summary(report, "free_calls") == 5);
  CHECK(summary(report, "free_null_calls") == 2);
  CHECK(summary(report, "failed_alloc_calls") == 1);
  CHECK(summary(report, "realloc_calls") == 0);
  CHECK(summary(report, "frees_of_unknown_blocks") == 0);
  CHECK(summary(report, "total_allocated_bytes") == 11116);
  CHECK(summary(report, "peak_live_bytes") == 11116);
  CHECK(summary(report, "live_blocks") == 11);
  CHECK(summary(report, "live_bytes") == 1836);
  CHECK(summary(report, "leaked_blocks") == 11);
  CHECK(summary(report, "leaked_bytes") == 1836);
  CHECK(summary(report, "threads_seen") == 1);
}

void check_clean_target(const Json& report, int exit_code) {
  REQUIRE(report.contains("target"));
  CHECK(report["target"]["exit_code"] == exit_code);
  CHECK(report["target"]["signal"].is_null());
  CHECK(report["target"]["detached"] == false);
  CHECK(report["version"] == 1);
}

}  // namespace

TEST_CASE("trace launch: malloc, calloc, memalign family leaks at their lines with exact counters") {
  auto r = launch_traced({sample("trace_malloc")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  check_clean_target(r.report, 0);
  CHECK(r.report["target"]["command"].get<std::string>().find("trace_malloc") != std::string::npos);
  for (auto& s : kMallocSites) {
    const std::string marker = s.marker;
    CAPTURE(marker);
    CHECK(expect_site(r.report, kMalloc, marker_line(kMalloc, s.marker), s.groups, s.blocks, s.bytes) == "");
    auto at = leaks_at(r.report, kMalloc, marker_line(kMalloc, s.marker));
    if (at.size() == 1) {
      CHECK(at[0]["kind"] == "still_reachable");  // keep[] is a global
      CHECK(frame_function(at[0]["stack"][0]) == s.function);
      CHECK(frame_module(at[0]["stack"][0]) == "trace_malloc");
      CHECK(at[0]["stack"][0]["address"].get<std::string>().rfind("0x", 0) == 0);
      // The caller is main, one frame down.
      REQUIRE(at[0]["stack"].size() >= 2);
      CHECK(frame_function(at[0]["stack"][1]) == "main");
    }
  }
  CHECK(leaks_of(r.report).size() == 7);
  // Sorted by bytes, largest first (then blocks).
  auto& leaks = leaks_of(r.report);
  for (size_t i = 1; i < leaks.size(); i++) {
    auto prev = std::make_tuple(leaks[i - 1]["bytes"].get<long>(), leaks[i - 1]["blocks"].get<long>());
    auto cur = std::make_tuple(leaks[i]["bytes"].get<long>(), leaks[i]["blocks"].get<long>());
    CHECK(prev >= cur);
  }
  check_malloc_counters(r.report);
}

TEST_CASE("trace launch: realloc chains belong to the realloc's line, moved or in place") {
  const std::string f = "trace_realloc.c";
  auto r = launch_traced({sample("trace_realloc")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  // malloc -> realloc (moves) -> realloc (grows in place) -> realloc (shrinks in place).
  CHECK(expect_site(r.report, f, marker_line(f, "@leak realloc-chain"), 1, 1, 50) == "");
  CHECK(expect_site(r.report, f, marker_line(f, "@leak realloc-null"), 1, 1, 77) == "");
  CHECK(expect_site(r.report, f, marker_line(f, "@leak reallocarray"), 1, 1, 300) == "");
  CHECK(leaks_of(r.report).size() == 3);
  // 9 allocating calls: 4 malloc, 4 successful realloc incl. realloc(NULL, 77), 1
  // reallocarray; realloc(NULL, n) calling malloc inside glibc is not a second call.
  CHECK(summary(r.report, "alloc_calls") == 9);
  // free(fence), realloc(p, 0), free(q): a moving realloc is not a free call.
  CHECK(summary(r.report, "free_calls") == 3);
  CHECK(summary(r.report, "realloc_calls") == 7);
  CHECK(summary(r.report, "failed_alloc_calls") == 1);  // realloc(q, huge): q stays live
  CHECK(summary(r.report, "free_null_calls") == 0);
  CHECK(summary(r.report, "frees_of_unknown_blocks") == 0);
  CHECK(summary(r.report, "total_allocated_bytes") == 6985);  // 24+24+2000+4000+50+77+500+300+10
  CHECK(summary(r.report, "peak_live_bytes") == 4024);  // the 4000-byte block + fence
  CHECK(summary(r.report, "leaked_blocks") == 3);
  CHECK(summary(r.report, "leaked_bytes") == 427);
}

TEST_CASE("trace launch: C++ new, new[], leaked std::string and std::vector at the user's lines") {
  const std::string f = "trace_cxx.cpp";
  auto r = launch_traced({sample("trace_cxx")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  // operator new / new[] and libstdc++ (its .so and its headers) are not the site.
  check_sites(r.report, f, kCxxSites);
  for (auto* m : {"@leak string", "@leak vector"}) {
    CAPTURE(m);
    std::set<long> sizes;
    for (auto& g : leaks_at(r.report, f, marker_line(f, m))) {
      sizes.insert(g["bytes"].get<long>());
      CHECK(frame_function(g["stack"][0]).find("leak_containers") != std::string::npos);
    }
    CHECK(sizes == (std::string(m) == "@leak string" ? std::set<long>{32, 41} : std::set<long>{24, 400}));
  }
  // + libstdc++'s emergency pool, allocated by a library constructor before main.
  CHECK(leaks_of(r.report).size() == 7);
  CHECK(summary(r.report, "leaked_blocks") == 7);
  CHECK(summary(r.report, "leaked_bytes") == 601 + kLibstdcxxPoolBytes);
  CHECK(summary(r.report, "alloc_calls") == 16);
  CHECK(summary(r.report, "free_calls") == 9);
  CHECK(summary(r.report, "total_allocated_bytes") == 73726);
  CHECK(summary(r.report, "peak_live_bytes") == 73598);
}

TEST_CASE("trace launch: -O2 -fomit-frame-pointer C++ still unwinds the whole call chain") {
  const std::string f = "trace_cxx_o2.cpp";
  auto r = launch_traced({sample("trace_cxx_o2")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  auto site = leaks_at(r.report, f, marker_line(f, "@leak o2-site"));
  REQUIRE(site.size() == 1);
  CHECK(site[0]["blocks"] == 1);
  CHECK(site[0]["bytes"] == 40);
  auto& st = site[0]["stack"];
  REQUIRE(st.size() >= 4);
  CHECK(frame_function(st[0]).find("level3") != std::string::npos);
  CHECK(frame_line(st[1]) == marker_line(f, "@frame o2-level2"));
  CHECK(frame_function(st[1]).find("level2") != std::string::npos);
  CHECK(frame_line(st[2]) == marker_line(f, "@frame o2-level1"));
  CHECK(frame_function(st[2]).find("level1") != std::string::npos);
  CHECK(frame_line(st[3]) == marker_line(f, "@frame o2-main"));
  CHECK(frame_function(st[3]) == "main");
  // The vector's buffer comes through libstdc++ code inlined into make_vector: still the
  // user's line (inlined library frames are not the site).
  CHECK(expect_site(r.report, f, marker_line(f, "@leak o2-vector"), 2, 2, 104) == "");
  CHECK(leaks_of(r.report).size() == 4);  // + libstdc++'s pool
  CHECK(summary(r.report, "alloc_calls") == 5);
  CHECK(summary(r.report, "free_calls") == 1);
  CHECK(summary(r.report, "leaked_blocks") == 4);
  CHECK(summary(r.report, "leaked_bytes") == 144 + kLibstdcxxPoolBytes);
}

TEST_CASE("trace launch: --depth limits the frames reported per stack") {
  const std::string f = "trace_cxx_o2.cpp";
  auto r = launch_traced({sample("trace_cxx_o2")}, {"--depth", "2"});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  for (auto& g : leaks_of(r.report)) CHECK(g["stack"].size() <= 2);
  auto site = leaks_at(r.report, f, marker_line(f, "@leak o2-site"));
  REQUIRE(site.size() == 1);
  REQUIRE(site[0]["stack"].size() == 2);
  CHECK(frame_line(site[0]["stack"][1]) == marker_line(f, "@frame o2-level2"));
  CHECK(summary(r.report, "leaked_blocks") == 4);
}

TEST_CASE("trace launch: leaks inside a shared library the program links, its constructor included") {
  const std::string lib = "leaky.c", prog = "trace_uses_lib.c";
  const std::string lib_rel = "trace_lib/leaky.c";
  auto r = launch_traced({sample("trace_uses_lib")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  // The library's constructor runs before main (from ld.so's _dl_init).
  CHECK(expect_site(r.report, lib, marker_line(lib_rel, "@leak lib-ctor"), 1, 1, 11) == "");
  auto make = leaks_at(r.report, lib, marker_line(lib_rel, "@leak lib-make"));
  REQUIRE(make.size() == 1);
  CHECK(make[0]["blocks"] == 1);
  CHECK(make[0]["bytes"] == 200);
  auto& st = make[0]["stack"];
  REQUIRE(st.size() >= 3);
  CHECK(frame_module(st[0]) == "libtrace_leaky.so");
  CHECK(frame_function(st[0]) == "leaky_alloc");
  CHECK(frame_line(st[1]) == marker_line(lib_rel, "@frame lib-make-caller"));
  CHECK(frame_file(st[2]) == prog);
  CHECK(frame_line(st[2]) == marker_line(prog, "@frame uses-make"));
  CHECK(frame_module(st[2]) == "trace_uses_lib");
  auto dup = leaks_at(r.report, lib, marker_line(lib_rel, "@leak lib-dup"));
  REQUIRE(dup.size() == 1);
  CHECK(dup[0]["bytes"] == 6);
  REQUIRE(dup[0]["stack"].size() >= 2);
  CHECK(frame_line(dup[0]["stack"][1]) == marker_line(prog, "@frame uses-dup"));
  CHECK(leaks_of(r.report).size() == 3);
  CHECK(summary(r.report, "alloc_calls") == 4);
  CHECK(summary(r.report, "free_calls") == 1);
  CHECK(summary(r.report, "leaked_blocks") == 3);
  CHECK(summary(r.report, "leaked_bytes") == 217);
  CHECK(summary(r.report, "peak_live_bytes") == 217);
}

TEST_CASE("trace launch: leaks in dlopen'ed code resolve after dlclose") {
  const std::string plugin = "plugin.c", prog = "trace_dlopen.c";
  const std::string plugin_rel = "trace_lib/plugin.c";
  // dlopen's stacks run deep through ld.so: room for all of them.
  auto r = launch_traced({sample("trace_dlopen")}, {"--depth", "32"});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  // Two calls from two lines of main: two stacks, same site in the unloaded plugin.
  auto groups = leaks_at(r.report, plugin, marker_line(plugin_rel, "@leak plugin"));
  CHECK(totals(groups).groups == 2);
  CHECK(totals(groups).blocks == 2);
  CHECK(totals(groups).bytes == 100);
  std::set<std::pair<long, int>> callers;  // (bytes, line in main)
  for (auto& g : groups) {
    auto& st = g["stack"];
    REQUIRE(st.size() >= 3);
    CHECK(frame_module(st[0]) == "trace_plugin.so");
    CHECK(frame_function(st[0]) == "plugin_alloc");
    CHECK(frame_line(st[1]) == marker_line(plugin_rel, "@frame plugin-caller"));
    CHECK(frame_file(st[2]) == prog);
    callers.insert({g["bytes"].get<long>(), frame_line(st[2])});
  }
  CHECK(callers == std::set<std::pair<long, int>>{{64, marker_line(prog, "@frame dlopen-call")},
                                                  {36, marker_line(prog, "@frame dlopen-call2")}});
  // glibc keeps one block from dlopen (its _dl_find_object table, 2304 bytes here) after
  // dlclose; its first program frame is the dlopen line.
  CHECK(expect_site(r.report, prog, marker_line(prog, "@leak dlopen-internal"), 1, 1, 2304) == "");
  CHECK(leaks_of(r.report).size() == 3);
  CHECK(summary(r.report, "alloc_calls") == 9);
  CHECK(summary(r.report, "free_calls") == 6);
  CHECK(summary(r.report, "free_null_calls") == 3);
  CHECK(summary(r.report, "leaked_blocks") == 3);
  CHECK(summary(r.report, "leaked_bytes") == 2404);
  // dlopen copies the plugin's path into three of its blocks: the total depends on where
  // the build directory is (3899 bytes for a 44-character path).
  const long path_len = static_cast<long>(sample("trace_plugin.so").size());
  CHECK(summary(r.report, "total_allocated_bytes") == 3899 + 3 * (path_len - 44));
}

TEST_CASE("trace launch: allocations of static constructors before main are seen") {
  const std::string f = "trace_ctor.cpp";
  auto r = launch_traced({sample("trace_ctor")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  auto global = leaks_at(r.report, f, marker_line(f, "@leak ctor-global"));
  REQUIRE(global.size() == 1);
  CHECK(global[0]["bytes"] == 40);
  CHECK(frame_function(global[0]["stack"][0]).find("Registry") != std::string::npos);
  CHECK(expect_site(r.report, f, marker_line(f, "@leak ctor-attr"), 1, 1, 33) == "");
  // The 16-byte block is freed by ~Registry during exit, after main: not a leak.
  CHECK(leaks_of(r.report).size() == 3);  // + libstdc++'s pool
  CHECK(summary(r.report, "alloc_calls") == 4);
  CHECK(summary(r.report, "free_calls") == 1);
  CHECK(summary(r.report, "leaked_blocks") == 3);
  CHECK(summary(r.report, "leaked_bytes") == 73 + kLibstdcxxPoolBytes);
  CHECK(summary(r.report, "peak_live_bytes") == 89 + kLibstdcxxPoolBytes);
}

namespace {
void check_threads_report(const TraceRun& r) {
  const std::string f = "trace_threads.c";
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  // Thread i leaks i+1 blocks of (i+1)*8 bytes on one line, same stack in every thread.
  CHECK(expect_site(r.report, f, marker_line(f, "@leak thread"), 1, 36, 1632) == "");
  // pthread_create's DTV (calloc in ld.so), kept by glibc with each cached stack.
  CHECK(expect_site(r.report, f, marker_line(f, "@leak thread-create"), 1, 8, 2176) == "");
  CHECK(leaks_of(r.report).size() == 2);
  CHECK(summary(r.report, "threads_seen") == 9);
  CHECK(summary(r.report, "alloc_calls") == 8044);
  // 8000 frees by the workers, plus 40 by glibc as each thread exits (its tcache and the
  // chunks cached in it: allocated inside malloc, never seen as blocks).
  CHECK(summary(r.report, "free_calls") == 8040);
  CHECK(summary(r.report, "frees_of_unknown_blocks") == 40);
  CHECK(summary(r.report, "free_null_calls") == 16);
  CHECK(summary(r.report, "leaked_blocks") == 44);
  CHECK(summary(r.report, "leaked_bytes") == 3808);
  CHECK(summary(r.report, "total_allocated_bytes") == 379968);
  // Up to one churn block (<= 79 bytes) per thread can be live beside the leaks.
  CHECK(summary(r.report, "peak_live_bytes") >= 3808);
  CHECK(summary(r.report, "peak_live_bytes") <= 3808 + 8 * 79);
  // By allocating thread (issue #9): worker-i holds its i+1 blocks of (i+1)*8 bytes, main
  // the eight DTVs its pthread_create calls made.  Names from /proc as each thread ended.
  std::map<std::string, std::pair<long, long>> by_name;
  std::set<long> tids;
  for (auto& t : r.report["threads"]) {
    by_name[t["name"].get<std::string>()] = {t["live_blocks"].get<long>(), t["live_bytes"].get<long>()};
    tids.insert(t["tid"].get<long>());
  }
  std::map<std::string, std::pair<long, long>> expected{{"trace_threads", {8, 2176}}};
  for (long i = 0; i < 8; i++) expected["worker-" + std::to_string(i)] = {i + 1, (i + 1) * (i + 1) * 8};
  CHECK(by_name == expected);
  CHECK(tids.size() == 9);
  CHECK(tids.contains(r.report["target"]["pid"].get<long>()));
}
}  // namespace

TEST_CASE("trace launch: 8 threads leaking different amounts") {
  check_threads_report(launch_traced({sample("trace_threads")}, {}, std::chrono::seconds(240)));
}

// The stop-the-world step (original byte back, single-step, int3 again, every other thread
// stopped meanwhile) is the engine's last resort and no glibc entry needs it: forced here
// on every hooked function, the figures must not change.
TEST_CASE("trace launch: 8 threads, every breakpoint stepped over with the world stopped") {
  check_threads_report(launch_traced({sample("trace_threads")}, {}, std::chrono::seconds(240),
                                     {"PTMEM_FORCE_STEP_IN_PLACE=1"}));
}

TEST_CASE("trace launch: 200000 malloc/free pairs with exactly 3 leaks") {
  const std::string f = "trace_many.c";
  auto r = launch_traced({sample("trace_many")}, {}, std::chrono::seconds(300));
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done 25493856\n");
  CHECK(expect_site(r.report, f, marker_line(f, "@leak many"), 1, 3, 102) == "");
  CHECK(leaks_of(r.report).size() == 1);
  CHECK(summary(r.report, "alloc_calls") == 200000);
  CHECK(summary(r.report, "free_calls") == 199997);
  CHECK(summary(r.report, "leaked_blocks") == 3);
  CHECK(summary(r.report, "leaked_bytes") == 102);
  CHECK(summary(r.report, "total_allocated_bytes") == 10100000);
  CHECK(summary(r.report, "peak_live_bytes") == 102);
}

TEST_CASE("trace launch: static binary (the allocator is in the executable)") {
  auto exe = sample("trace_malloc_static");
  auto r = launch_traced({exe});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  for (auto& s : kMallocSites) {
    const std::string marker = s.marker;
    CAPTURE(marker);
    CHECK(expect_site(r.report, kMalloc, marker_line(kMalloc, s.marker), s.groups, s.blocks, s.bytes) == "");
    for (auto& g : leaks_at(r.report, kMalloc, marker_line(kMalloc, s.marker)))
      CHECK(frame_function(g["stack"][0]) == s.function);
  }
  // Static glibc allocates 5 blocks of its own at start-up, before main, and keeps them
  // (_dl_non_dynamic_init & co.): 160 + 360 (two blocks) + 1225 + the executable's directory from
  // _dl_get_origin (strlen + 2).
  long origin = static_cast<long>(std::filesystem::canonical(exe).parent_path().string().size()) + 2;
  CHECK(summary(r.report, "alloc_calls") == 16 + 5);
  CHECK(summary(r.report, "free_calls") == 5);
  CHECK(summary(r.report, "failed_alloc_calls") == 1);
  CHECK(summary(r.report, "leaked_blocks") == 11 + 5);
  CHECK(summary(r.report, "leaked_bytes") == 1836 + 160 + 360 + 1225 + origin);
}

TEST_CASE("trace launch: binary without debug info names functions from the symbol table") {
  auto r = launch_traced({sample("trace_malloc_nodebug")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "done\n");
  std::multiset<std::tuple<std::string, long, long>> expected, found;
  for (auto& s : kMallocSites) expected.insert({s.function, s.blocks, s.bytes});
  for (auto& g : leaks_of(r.report)) {
    auto& f = g["stack"][0];
    found.insert({frame_function(f), g["blocks"].get<long>(), g["bytes"].get<long>()});
    CHECK(f["file"].is_null());
    CHECK(f["line"].is_null());
    CHECK(frame_module(f) == "trace_malloc_nodebug");
  }
  CHECK(found == expected);
  check_malloc_counters(r.report);
}

TEST_CASE("trace launch: fully stripped binary still gets one group per site (module+offset)") {
  auto r = launch_traced({sample("trace_malloc_stripped")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  std::multiset<std::pair<long, long>> expected, found;
  for (auto& s : kMallocSites) expected.insert({s.blocks, s.bytes});
  std::set<std::string> addresses;
  for (auto& g : leaks_of(r.report)) {
    auto& f = g["stack"][0];
    found.insert({g["blocks"].get<long>(), g["bytes"].get<long>()});
    CHECK(frame_module(f) == "trace_malloc_stripped");
    CHECK(f["file"].is_null());
    addresses.insert(f["address"].get<std::string>());
  }
  CHECK(found == expected);
  CHECK(addresses.size() == 7);  // seven distinct call sites
  check_malloc_counters(r.report);
}

TEST_CASE("trace launch: a program that leaks nothing gives an empty report") {
  auto r = launch_traced({sample("trace_clean")});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  REQUIRE(r.parsed);
  CHECK(r.out == "clean\n");
  check_clean_target(r.report, 0);
  CHECK(leaks_of(r.report).empty());
  CHECK(fd_leaks_of(r.report).empty());
  CHECK(summary(r.report, "alloc_calls") == 10);
  CHECK(summary(r.report, "free_calls") == 10);
  CHECK(summary(r.report, "leaked_blocks") == 0);
  CHECK(summary(r.report, "leaked_bytes") == 0);
  CHECK(summary(r.report, "live_blocks") == 0);
  CHECK(summary(r.report, "fd_opened") == 1);
  CHECK(summary(r.report, "fd_closed") == 1);
}

TEST_CASE("trace launch: exit status is the program's; --error-exitcode only when leaks were found") {
  {
    auto r = launch_traced({sample("trace_clean"), "exit", "3"});
    const std::string ctx = r.describe();
    INFO(ctx);
    CHECK(r.status == 3);
    REQUIRE(r.parsed);
    CHECK(r.report["target"]["exit_code"] == 3);
  }
  {
    auto r = launch_traced({sample("trace_clean")}, {"--error-exitcode", "42"});
    const std::string ctx = r.describe();
    INFO(ctx);
    CHECK(r.status == 0);
  }
  {
    const std::string f = "trace_clean.c";
    auto r = launch_traced({sample("trace_clean"), "leak"}, {"--error-exitcode", "42"});
    const std::string ctx = r.describe();
    INFO(ctx);
    CHECK(r.status == 42);
    REQUIRE(r.parsed);
    CHECK(expect_site(r.report, f, marker_line(f, "@leak clean-leak"), 1, 1, 16) == "");
  }
}

TEST_CASE("trace launch: text report names every leak line; stdout stays the program's") {
  auto dir = temp_dir();
  auto path = dir + "/report.txt";
  auto res = run({ptmem::test::ptmem(), "launch", "--show-kinds", "all", "--no-default-suppressions", "-o", path, "--", sample("trace_malloc")}, std::chrono::seconds(120));
  INFO("stderr: " << res.err);
  REQUIRE(res.status == 0);
  CHECK(res.out == "done\n");
  auto text = read_text_file(path);
  INFO("report:\n" << text);
  for (auto& s : kMallocSites) {
    const std::string marker = s.marker;
    CAPTURE(marker);
    CHECK(text.find(kMalloc + ":" + std::to_string(marker_line(kMalloc, s.marker))) != std::string::npos);
  }
  CHECK(text.find("1836") != std::string::npos);  // total leaked bytes
}

TEST_CASE("trace launch: the program inherits exactly the fds ptmem was given") {
  auto r = launch_traced({sample("trace_clean"), "fds"});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  std::string expected = "fds";
  for (int fd : inheritable_fds()) expected += " " + std::to_string(fd);
  CHECK(r.out == expected + "\n");
}

namespace {
void check_fork_exec_report(const TraceRun& r) {
  const std::string f = "trace_fork_exec.c";
  const std::string ctx = r.describe();
  INFO(ctx);
  // A child dying of an inherited breakpoint makes the sample exit 1 ("FAILED child").
  REQUIRE(r.status == 0);
  CHECK(r.out == "children ok\n");
  REQUIRE(r.parsed);
  CHECK(expect_site(r.report, f, marker_line(f, "@leak parent"), 1, 1, 123) == "");
  CHECK(leaks_at(r.report, f, marker_line(f, "@leak fork-child")).empty());
  CHECK(leaks_at(r.report, f, marker_line(f, "@leak exec-child")).empty());
  CHECK(leaks_of(r.report).size() == 1);
  // The parent's own calls: 123, then popen's stream, its posix_spawn file actions
  // (realloc(NULL, 256)) and the stream's buffer, all three freed by pclose.
  CHECK(summary(r.report, "alloc_calls") == 4);
  CHECK(summary(r.report, "free_calls") == 3);
  CHECK(summary(r.report, "leaked_blocks") == 1);
  CHECK(summary(r.report, "leaked_bytes") == 123);
  CHECK(fd_leaks_of(r.report).empty());
}
}  // namespace

TEST_CASE("trace launch: forked and exec'ed children are not harmed and not counted") {
  check_fork_exec_report(launch_traced({sample("trace_fork_exec")}));
}

// popen's vfork child runs through the parent's breakpoints while the parent thread waits
// in the kernel, unable to stop: the stop-the-world step must not wait for it.
TEST_CASE("trace launch: fork, vfork and exec with every breakpoint stepped over with the world stopped") {
  check_fork_exec_report(launch_traced({sample("trace_fork_exec")}, {}, std::chrono::seconds(120),
                                       {"PTMEM_FORCE_STEP_IN_PLACE=1"}));
}

TEST_CASE("trace launch: exec replaces the traced image; the report covers the new one") {
  const std::string f = "trace_fork_exec.c";
  auto r = launch_traced({sample("trace_fork_exec"), "exec"});
  const std::string ctx = r.describe();
  INFO(ctx);
  REQUIRE(r.status == 0);
  CHECK(r.out == "after exec\n");
  REQUIRE(r.parsed);
  CHECK(expect_site(r.report, f, marker_line(f, "@leak after-exec"), 1, 1, 47) == "");
  // The block leaked before exec vanished with the old image.
  CHECK(leaks_at(r.report, f, marker_line(f, "@leak pre-exec")).empty());
  CHECK(leaks_of(r.report).size() == 1);
  CHECK(summary(r.report, "leaked_blocks") == 1);
  CHECK(summary(r.report, "leaked_bytes") == 47);
  // The close-on-exec fd closed at the exec; the other crossed it and is reported with the
  // stack of the old image that opened it.
  auto& fds = fd_leaks_of(r.report);
  REQUIRE(fds.size() == 1);
  CHECK(fds[0]["target"] == "/dev/null");
  REQUIRE(!fds[0]["stack"].empty());
  CHECK(frame_line(fds[0]["stack"][0]) == marker_line(f, "@fd kept"));
  CHECK(summary(r.report, "fd_opened") == 2);
  CHECK(summary(r.report, "fd_closed") == 1);  // by the exec
  CHECK(summary(r.report, "fd_closed_at_exec") == 1);
  CHECK(summary(r.report, "fd_found_closed") == 0);
}

TEST_CASE("trace launch: a program dying of SIGSEGV still gets its report; exit 139") {
  const std::string f = "trace_segv.c";
  auto r = launch_traced({sample("trace_segv")});
  const std::string ctx = r.describe();
  INFO(ctx);
  CHECK(r.status == 139);
  CHECK(r.out == "crashing\n");
  REQUIRE(r.parsed);
  CHECK(r.report["target"]["signal"] == "SIGSEGV");
  CHECK(r.report["target"]["exit_code"].is_null());
  CHECK(r.report["target"]["detached"] == false);
  CHECK(expect_site(r.report, f, marker_line(f, "@leak segv"), 1, 2, 200) == "");
  CHECK(leaks_of(r.report).size() == 1);
  CHECK(summary(r.report, "alloc_calls") == 3);
  CHECK(summary(r.report, "free_calls") == 1);
  CHECK(summary(r.report, "leaked_blocks") == 2);
  CHECK(summary(r.report, "leaked_bytes") == 200);
  CHECK(summary(r.report, "peak_live_bytes") == 250);
}
