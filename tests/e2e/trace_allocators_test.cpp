// A preloaded allocator (jemalloc, tcmalloc) provides malloc and, for C++, its own operators
// new and delete: ptmem must hook it there, not in libc, and count every call once (their
// operator delete is a tail jump to free).  Unwinding through traced calls (an exception out
// of operator new, a thread cancelled inside accept) must find real return addresses.
// The expected figures are glibc's, checked in trace_memory_test.cpp; an allocator's own
// start-up allocations (tcmalloc makes some) are allowed outside the sample's code.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

namespace {

const std::string kLibDir = "/usr/lib/x86_64-linux-gnu/";

struct Allocator {
  std::string name;
  std::string preload;     ///< LD_PRELOAD value; empty: glibc's malloc
  bool startup_allocs;     ///< allocates for itself at start-up (tcmalloc)
  bool brings_libstdcxx;   ///< a C++ library: libstdc++'s pool is one more block in C programs
};

/// The preloaded ones; glibc's own figures are trace_memory_test.cpp's.  The shim is the
/// samples' own: it forwards to glibc's __libc_* functions, and its operator delete is
/// "endbr64; jmp free", with free itself "endbr64; jmp __libc_free": one call, three entries.
std::vector<Allocator> preloaded() {
  return {{"jemalloc", kLibDir + "libjemalloc.so.2", false, true},
          {"tcmalloc", kLibDir + "libtcmalloc_minimal.so.4", true, true},
          {"shim", sample("libtrace_shim_alloc.so"), false, false}};
}

TraceRun launch_with(const Allocator& a, const std::string& program) {
  std::vector<std::string> env;
  if (!a.preload.empty()) {
    REQUIRE_MESSAGE(std::filesystem::exists(a.preload), a.preload << " missing: run make deps");
    env.push_back("LD_PRELOAD=" + a.preload);
  }
  return launch_traced({sample(program)}, {}, std::chrono::seconds(120), env);
}

/// Leaks whose top frame is in |module| (the sample itself).
size_t leaks_in(const Json& report, const std::string& module) {
  size_t n = 0;
  for (auto& g : leaks_of(report))
    if (!g["stack"].empty() && frame_module(g["stack"][0]) == module) ++n;
  return n;
}

}  // namespace

TEST_CASE("trace allocators: C calls reach jemalloc and tcmalloc and are counted exactly") {
  const std::string f = "trace_malloc.c";
  for (const auto& a : preloaded()) {
    CAPTURE(a.name);
    auto r = launch_with(a, "trace_malloc");
    const std::string ctx = r.describe();
    INFO(ctx);
    REQUIRE(r.status == 0);
    REQUIRE(r.parsed);
    check_sites(r.report, f, kMallocSites);
    CHECK(leaks_in(r.report, "trace_malloc") == 7);
    CHECK(summary(r.report, "free_null_calls") == 2);
    CHECK(summary(r.report, "failed_alloc_calls") == 1);
    CHECK(summary(r.report, "frees_of_unknown_blocks") == 0);
    if (!a.startup_allocs) {
      // libstdc++'s emergency pool, allocated by its constructor, is one more block.
      long pool = a.brings_libstdcxx ? 1 : 0;
      CHECK(summary(r.report, "alloc_calls") == 16 + pool);
      CHECK(summary(r.report, "free_calls") == 5);
      CHECK(summary(r.report, "live_blocks") == 11 + pool);
      CHECK(summary(r.report, "live_bytes") == 1836 + pool * kLibstdcxxPoolBytes);
    }
  }
}

TEST_CASE("trace allocators: C++ operators new and delete of a preloaded allocator are hooked, once each") {
  const std::string f = "trace_cxx.cpp";
  for (const auto& a : preloaded()) {
    CAPTURE(a.name);
    auto r = launch_with(a, "trace_cxx");
    const std::string ctx = r.describe();
    INFO(ctx);
    REQUIRE(r.status == 0);
    REQUIRE(r.parsed);
    CHECK(r.out == "done\n");
    check_sites(r.report, f, kCxxSites);
    CHECK(leaks_in(r.report, "trace_cxx") == 6);
    CHECK(summary(r.report, "frees_of_unknown_blocks") == 0);  // delete -> free is one free
    if (!a.startup_allocs) {
      CHECK(summary(r.report, "alloc_calls") == 16);
      CHECK(summary(r.report, "free_calls") == 9);
      CHECK(summary(r.report, "leaked_blocks") == 7);
      CHECK(summary(r.report, "leaked_bytes") == 601 + kLibstdcxxPoolBytes);
    }
  }
}

TEST_CASE("trace allocators: an exception out of operator new and a cancelled accept unwind as without ptmem") {
  const std::string f = "trace_unwind.cpp";
  auto all = preloaded();
  all.insert(all.begin(), {"glibc", "", false, false});
  std::erase_if(all, [](const Allocator& a) { return a.name == "shim"; });  // its new aborts
  for (const auto& a : all) {
    CAPTURE(a.name);
    auto r = launch_with(a, "trace_unwind");
    const std::string ctx = r.describe();
    INFO(ctx);
    REQUIRE(r.status == 0);
    REQUIRE(r.parsed);
    // Without the real return addresses the throw would end in std::terminate and the
    // cancellation would skip the destructor.
    CHECK(r.out == "caught bad_alloc\ncaught bad_alloc new[]\ndestructor ran\njoined canceled\ndone\n");
    CHECK(expect_site(r.report, f, marker_line(f, "@leak after"), 1, 1, 48) == "");
    CHECK(summary(r.report, "failed_alloc_calls") == 2);  // the two huge news
    for (auto& g : leaks_of(r.report)) CHECK(g["bytes"] != 32);  // the destructor's free
    CHECK(summary(r.report, "fd_opened") == summary(r.report, "fd_closed"));
    CHECK(r.report["fd_leaks"].empty());
  }
}
