#include <doctest/doctest.h>

#include <map>
#include <signal.h>
#include <sys/stat.h>
#include <tuple>

#include "ptmem/report/render.hpp"
#include "ptmem/report/report.hpp"
#include "ptmem/report/site.hpp"

using namespace ptmem;
using report::Frame;
using track::FdOrigin;
using track::kNoStack;

namespace {

const std::string kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const std::string kLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30";
const std::string kApp = "/work/app/widget";

Frame fr(uint64_t address, std::string module, std::string function, std::string file = "",
         int line = 0, bool inlined = false) {
  Frame f;
  f.address = address;
  f.module = std::move(module);
  f.module_offset = address & 0xfff;
  f.function = std::move(function);
  f.file = std::move(file);
  f.line = line;
  f.inlined = inlined;
  return f;
}

// Frames by pc; an unknown pc gets a frame with its address only.  Records every call.
class FakeFrames : public report::FrameSource {
 public:
  std::map<uint64_t, std::vector<Frame>> frames;
  std::vector<std::tuple<uint64_t, uint64_t, bool>> calls;

  const std::vector<Frame>& frames_for(uint64_t pc, uint64_t generation, bool is_return) override {
    calls.emplace_back(pc, generation, is_return);
    auto it = frames.find(pc);
    if (it != frames.end()) return it->second;
    unknown_ = {fr(pc, "", "")};
    return unknown_;
  }

 private:
  std::vector<Frame> unknown_;
};

std::vector<std::string> functions(const std::vector<Frame>& frames) {
  std::vector<std::string> out;
  for (const Frame& f : frames) out.push_back(f.function);
  return out;
}

// pcs of the scenario below
constexpr uint64_t kMalloc = 0x7f0000001000, kNew = 0x7f0000002000, kSocket = 0x7f0000003000,
                   kPipe = 0x7f0000004000, kMakeWidget = 0x401136, kMain30 = 0x4011a0,
                   kMain31 = 0x4011b0, kBuild = 0x401500, kWorker = 0x401600, kSingle = 0x401700,
                   kServer = 0x401800, kMakePipes = 0x401900;

FakeFrames scenario_frames() {
  FakeFrames f;
  f.frames[kMalloc] = {fr(kMalloc, kLibc, "malloc")};
  f.frames[kNew] = {fr(kNew, kLibstdcxx, "operator new(unsigned long)")};
  f.frames[kSocket] = {fr(kSocket, kLibc, "socket")};
  f.frames[kPipe] = {fr(kPipe, kLibc, "pipe")};
  f.frames[kMakeWidget] = {fr(kMakeWidget, kApp, "make_widget", "/work/app/widget.c", 12)};
  f.frames[kMain30] = {fr(kMain30, kApp, "main", "/work/app/main.c", 30)};
  f.frames[kMain31] = {fr(kMain31, kApp, "main", "/work/app/main.c", 31)};
  f.frames[kBuild] = {fr(kBuild, kApp, "helper", "/work/app/widget.h", 5, true),
                      fr(kBuild, kApp, "build", "/work/app/widget.c", 40)};
  f.frames[kWorker] = {fr(kWorker, "/work/app/libw.so", "worker")};
  f.frames[kSingle] = {fr(kSingle, kApp, "single", "/work/app/f.c", 1)};
  f.frames[kServer] = {fr(kServer, kApp, "open_server", "/work/app/server.c", 40)};
  f.frames[kMakePipes] = {fr(kMakePipes, kApp, "make_pipes", "/work/app/pipes.c", 7)};
  return f;
}

struct Scenario {
  track::StackTable stacks;
  track::Tracker tracker;
  std::vector<proc::FdEntry> fds_at_end;

  Scenario() {
    auto st = [&](std::vector<uint64_t> pcs) { return stacks.intern(pcs, 3); };
    auto A = st({kMalloc, kNew, kMakeWidget, kMain30});
    auto B = st({kMalloc, kBuild, kMain30});
    auto C = st({kMalloc, kMakeWidget, kMain31});
    auto D = st({kMalloc, kWorker, 0x9999});
    auto G = st({kMalloc, kSingle});
    auto& t = tracker;
    for (uint64_t a : {0xa1, 0xa2, 0xa3}) t.on_alloc(1, a, 40, A);
    t.on_alloc(1, 0xa4, 40, A);
    t.on_free(1, 0xa4);
    t.on_alloc(1, 0xb1, 500, B);
    t.on_alloc(1, 0xc1, 10, C);
    t.on_alloc(1, 0xc2, 10, C);
    t.on_alloc(1, 0xd1, 50, D);
    t.on_alloc(1, 0xd2, 50, D);
    t.on_alloc(1, 0xe1, 100, G);
    t.on_alloc(1, 0xf1, 7, kNoStack);
    t.on_free_null(1);

    std::vector<int> inherited{0, 1, 2, 9};
    t.mark_inherited(inherited);
    auto S = st({kSocket, kServer, kMain30});
    auto P = st({kPipe, kMakePipes, kMain30});
    t.on_fd_open(2, 3, FdOrigin::Socket, S);
    t.on_fd_open(2, 4, FdOrigin::Pipe, P);
    t.on_fd_open(2, 5, FdOrigin::Pipe, P);
    t.on_fd_open(2, 6, FdOrigin::Pipe, P);
    t.on_fd_open(2, 7, FdOrigin::Pipe, P);
    t.on_fd_close(2, 7);
    t.on_fd_open(2, 8, FdOrigin::Open, P);
    t.on_fd_close(2, 8);

    proc::SocketTable sockets;
    sockets.parse(proc::NetFile::Tcp,
                  "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
                  "     0        0 1001 1 0000000000000000 100 0 0 10 0\n");
    auto add = [&](int fd, std::string target, const char* flags, std::optional<uint32_t> mode = {}) {
      proc::RawFd raw{fd, std::move(target), std::string("pos:\t0\nflags:\t") + flags + "\n", mode};
      fds_at_end.push_back(proc::interpret_fd(raw, &sockets));
    };
    add(0, "/dev/pts/0", "02");
    add(1, "/dev/pts/0", "02");
    add(2, "/dev/pts/0", "02");
    add(3, "socket:[1001]", "02000002");
    add(4, "pipe:[2001]", "00");
    add(5, "pipe:[2001]", "01");
    add(6, "pipe:[2002]", "00");
    add(9, "/dev/null", "0100000");
    add(10, "/etc/hosts", "00", S_IFREG | 0644);
    t.reconcile_fds(fds_at_end);  // fd 10: opened before attach
  }
};

}  // namespace

TEST_CASE("site rule: allocator and runtime frames before the first program frame are dropped") {
  using V = std::vector<std::vector<Frame>>;
  // operator new -> malloc, called from the program
  auto s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")},
                                 {fr(kNew, kLibstdcxx, "operator new[](unsigned long)")},
                                 {fr(kMakeWidget, kApp, "make_widget", "/w.c", 12)},
                                 {fr(kMain30, kApp, "main", "/m.c", 30)}},
                               16);
  CHECK(functions(s) == std::vector<std::string>{"make_widget", "main"});
  // std::vector growth instantiated into the program from the system headers
  s = report::site_frames(
      V{{fr(kNew, kLibstdcxx, "operator new(unsigned long)")},
        {fr(0x402000, kApp, "__gnu_cxx::new_allocator<int>::allocate(unsigned long, void const*)",
            "/usr/include/c++/12/bits/new_allocator.h", 137)},
        {fr(0x402100, kApp, "std::vector<int, std::allocator<int> >::_M_realloc_insert",
            "/usr/include/c++/12/bits/vector.tcc", 440)},
        {fr(0x402200, kApp, "main", "/work/app/vec.cpp", 9)}},
      16);
  CHECK(functions(s) == std::vector<std::string>{"main"});
  // a static binary: libc internals in the program's module, without line info
  s = report::site_frames(V{{fr(0x401000, kApp, "malloc")},
                            {fr(0x401100, kApp, "_IO_file_doallocate")},
                            {fr(0x401200, kApp, "__fopen_internal")},
                            {fr(0x401300, kApp, "main", "/m.c", 3)}},
                          16);
  CHECK(functions(s) == std::vector<std::string>{"main"});
  // below main and below a thread's function: the runtime that called them is left out
  s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")},
                            {fr(0x401300, kApp, "all_kinds", "/m.c", 3)},
                            {fr(0x401400, kApp, "main", "/m.c", 9)},
                            {fr(0x7f0000006000, kLibc, "__libc_start_call_main", "../sysdeps/nptl/libc_start_call_main.h", 58)},
                            {fr(0x7f0000007000, kLibc, "__libc_start_main_impl", "../csu/libc-start.c", 360)},
                            {fr(0x401050, kApp, "_start")}},
                          16);
  CHECK(functions(s) == std::vector<std::string>{"all_kinds", "main"});
  s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")},
                            {fr(0x401300, kApp, "worker", "/m.c", 3)},
                            {fr(0x7f0000008000, kLibc, "start_thread")},
                            {fr(0x7f0000009000, kLibc, "clone3")}},
                          16);
  CHECK(functions(s) == std::vector<std::string>{"worker"});
  // the frames between the site and the last program frame are all kept, runtime ones included
  s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")},
                            {fr(0x401300, kApp, "cb", "/m.c", 3)},
                            {fr(0x7f0000005000, kLibc, "qsort")},
                            {fr(0x401400, kApp, "main", "/m.c", 9)}},
                          16);
  CHECK(functions(s) == std::vector<std::string>{"cb", "qsort", "main"});
  // no program frame at all: everything after the allocator entry
  s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")},
                            {fr(0x7f0000010000, "/lib64/ld-linux-x86-64.so.2", "_dl_allocate_tls")},
                            {fr(0x7f0000005000, kLibc, "pthread_create")}},
                          16);
  CHECK(functions(s) == std::vector<std::string>{"_dl_allocate_tls", "pthread_create"});
  // a stack of only the allocator entry keeps it
  s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")}}, 16);
  CHECK(functions(s) == std::vector<std::string>{"malloc"});
  CHECK(report::site_frames(V{}, 16).empty());
  // unknown code (no symbol, no module) counts as the program's
  s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")}, {fr(0x1234, "", "")}}, 16);
  REQUIRE(s.size() == 1);
  CHECK(s[0].address == 0x1234);
  // depth counts inlined frames as frames
  s = report::site_frames(V{{fr(kMalloc, kLibc, "malloc")},
                            {fr(kBuild, kApp, "helper", "/w.h", 5, true), fr(kBuild, kApp, "build", "/w.c", 40)},
                            {fr(kMain30, kApp, "main", "/m.c", 30)}},
                          2);
  CHECK(functions(s) == std::vector<std::string>{"helper", "build"});
  CHECK(report::site_frames(V{{fr(kMalloc, kLibc, "malloc")}, {fr(kMain30, kApp, "main")}}, 0).empty());
}

TEST_CASE("site rule: names and modules") {
  for (const char* f : {"malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign",
                        "aligned_alloc", "memalign", "valloc", "pvalloc", "__libc_malloc",
                        "operator new(unsigned long)", "operator new[](unsigned long)",
                        "operator new(unsigned long, std::align_val_t)",
                        "operator new(unsigned long, std::nothrow_t const&)", "_Znwm", "_Znam",
                        "_ZnwmSt11align_val_t", "strdup"}) {
    CAPTURE(f);
    CHECK(report::is_allocator_function(f));
  }
  for (const char* f : {"", "main", "mallocate", "my_malloc", "operator delete(void*)", "newton"}) {
    CAPTURE(f);
    CHECK_FALSE(report::is_allocator_function(f));
  }
  CHECK(report::is_runtime_module("/usr/lib/x86_64-linux-gnu/libc.so.6"));
  CHECK(report::is_runtime_module("/lib/x86_64-linux-gnu/libstdc++.so.6"));
  CHECK(report::is_runtime_module("/lib64/ld-linux-x86-64.so.2"));
  CHECK(report::is_runtime_module("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"));
  CHECK_FALSE(report::is_runtime_module("/work/app/libcrypto.so.3"));
  CHECK_FALSE(report::is_runtime_module("/work/app/widget"));
  CHECK_FALSE(report::is_runtime_module(""));
}

TEST_CASE("report groups blocks by shown stack, sorts by bytes then blocks") {
  Scenario sc;
  FakeFrames frames = scenario_frames();
  auto r = report::build_report(sc.tracker, sc.stacks, frames, {1234, "./widget"}, sc.fds_at_end);
  REQUIRE(r.leaks.size() == 6);
  std::vector<std::pair<uint64_t, uint64_t>> sizes;
  for (const auto& l : r.leaks) sizes.emplace_back(l.bytes, l.blocks);
  CHECK(sizes == std::vector<std::pair<uint64_t, uint64_t>>{{500, 1}, {120, 3}, {100, 2}, {100, 1}, {20, 2}, {7, 1}});
  CHECK(functions(r.leaks[0].stack) == std::vector<std::string>{"helper", "build", "main"});
  CHECK(r.leaks[0].stack[0].inlined);
  CHECK_FALSE(r.leaks[0].stack[1].inlined);
  CHECK(functions(r.leaks[1].stack) == std::vector<std::string>{"make_widget", "main"});
  CHECK(r.leaks[1].stack[1].line == 30);
  CHECK(r.leaks[4].stack[1].line == 31);
  CHECK(r.leaks[5].stack.empty());
  CHECK(r.summary.leaked_blocks == 10);
  CHECK(r.summary.leaked_bytes == 847);
  CHECK(r.summary.leak_sites == 6);
  // pcs[0] is looked up as an entry address, the others as return addresses, at the stack's
  // generation; each stack is symbolized once.
  for (auto [pc, gen, ret] : frames.calls) {
    CHECK(gen == 3);
    CHECK(ret == (pc != kMalloc && pc != kSocket && pc != kPipe));
  }
  CHECK(frames.calls.size() == 4 + 3 + 3 + 3 + 2 + 3 + 3);

  // With one frame, A (main.c:30) and C (main.c:31) show the same stack: one site.
  FakeFrames frames1 = scenario_frames();
  report::ReportOptions opts;
  opts.depth = 1;
  r = report::build_report(sc.tracker, sc.stacks, frames1, {1234, "./widget"}, sc.fds_at_end, opts);
  sizes.clear();
  for (const auto& l : r.leaks) sizes.emplace_back(l.bytes, l.blocks);
  CHECK(sizes == std::vector<std::pair<uint64_t, uint64_t>>{{500, 1}, {140, 5}, {100, 2}, {100, 1}, {7, 1}});
  CHECK(functions(r.leaks[0].stack) == std::vector<std::string>{"helper"});
  CHECK(r.summary.leak_sites == 5);

  // --fds-only / --no-fds
  opts = {};
  opts.memory = false;
  r = report::build_report(sc.tracker, sc.stacks, frames1, {1234, "./widget"}, sc.fds_at_end, opts);
  CHECK(r.leaks.empty());
  CHECK(r.summary.leaked_bytes == 0);
  CHECK(r.fd_leaks.size() == 5);
  opts = {};
  opts.fds = false;
  r = report::build_report(sc.tracker, sc.stacks, frames1, {1234, "./widget"}, sc.fds_at_end, opts);
  CHECK(r.leaks.size() == 6);
  CHECK(r.fd_leaks.empty());
}

TEST_CASE("report: every allocating site with what it allocated, freed or not, on request") {
  Scenario sc;
  FakeFrames frames = scenario_frames();
  auto r = report::build_report(sc.tracker, sc.stacks, frames, {1234, "./widget"}, sc.fds_at_end);
  CHECK(r.allocated.empty());  // not asked: no symbolization of freed-only stacks
  report::ReportOptions opts;
  opts.allocated_sites = true;
  FakeFrames frames2 = scenario_frames();
  r = report::build_report(sc.tracker, sc.stacks, frames2, {1234, "./widget"}, sc.fds_at_end, opts);
  std::vector<std::tuple<std::string, uint64_t, uint64_t>> got;
  for (const auto& a : r.allocated) {
    CHECK(a.kind == "allocated");
    got.emplace_back(a.stack.empty() ? "" : a.stack[0].function, a.blocks, a.bytes);
  }
  // A: 4 calls of 40 (one freed); the leak report still has its 3 live blocks only.
  CHECK(got == std::vector<std::tuple<std::string, uint64_t, uint64_t>>{
                   {"helper", 1, 500}, {"make_widget", 4, 160}, {"worker", 2, 100}, {"single", 1, 100},
                   {"make_widget", 2, 20}, {"", 1, 7}});
  CHECK(r.leaks[1].blocks == 3);
}

TEST_CASE("report: live blocks by allocating thread; a block freed by another thread is gone") {
  track::StackTable stacks;
  track::Tracker t;
  auto s = stacks.intern(std::vector<uint64_t>{kMalloc, kSingle}, 3);
  t.on_alloc(10, 0x100, 64, s);
  t.on_alloc(10, 0x200, 32, s);
  t.on_alloc(11, 0x300, 500, s);
  t.on_alloc(11, 0x400, 8, s);
  t.on_free(10, 0x400);  // 11's block, freed by 10: gone from 11's figures
  t.on_alloc(12, 0x500, 1, s);
  t.on_free(12, 0x500);
  t.on_thread_name(10, "main");
  t.on_thread_name(11, "worker-1");
  t.on_thread_name(11, "renamed");  // the last name counts
  FakeFrames frames = scenario_frames();
  auto r = report::build_report(t, stacks, frames, {1234, "./widget"}, {});
  REQUIRE(r.threads.size() == 2);  // 12 holds nothing
  CHECK(r.threads[0].tid == 11);
  CHECK(r.threads[0].name == "renamed");
  CHECK(r.threads[0].blocks == 1);
  CHECK(r.threads[0].bytes == 500);
  CHECK(r.threads[1].tid == 10);
  CHECK(r.threads[1].name == "main");
  CHECK(r.threads[1].blocks == 2);
  CHECK(r.threads[1].bytes == 96);
  auto j = report::to_json(r);
  CHECK(j["threads"].dump() ==
        R"([{"tid":11,"name":"renamed","live_blocks":1,"live_bytes":500},{"tid":10,"name":"main","live_blocks":2,"live_bytes":96}])");
  auto text = report::to_text(r);
  CHECK(text.find("ptmem:     11 (renamed): 500 bytes in 1 block\n") != std::string::npos);
}

TEST_CASE("report fd leaks: all open fds but 0-2 and inherited ones, by fd") {
  Scenario sc;
  FakeFrames frames = scenario_frames();
  auto r = report::build_report(sc.tracker, sc.stacks, frames, {1234, "./widget"}, sc.fds_at_end);
  REQUIRE(r.fd_leaks.size() == 5);
  std::vector<int> fds;
  for (const auto& f : r.fd_leaks) fds.push_back(f.fd);
  CHECK(fds == std::vector<int>{3, 4, 5, 6, 10});
  CHECK(r.fd_leaks[0].kind == proc::FdKind::Socket);
  CHECK(r.fd_leaks[0].description == "socket, TCP 127.0.0.1:8080");
  CHECK(r.fd_leaks[0].origin == FdOrigin::Socket);
  CHECK(functions(r.fd_leaks[0].stack) == std::vector<std::string>{"open_server", "main"});
  CHECK(r.fd_leaks[4].origin == FdOrigin::Unknown);
  CHECK(r.fd_leaks[4].stack.empty());
  CHECK(r.fd_leaks[4].target == "/etc/hosts");
  CHECK(r.summary.fd_open_at_end == 9);
  CHECK(r.summary.fd_leaked == 5);

  // Without /proc details (the process is gone), the kind comes from the origin.
  r = report::build_report(sc.tracker, sc.stacks, frames, {1234, "./widget"}, {});
  CHECK(r.fd_leaks[0].kind == proc::FdKind::Socket);
  CHECK(r.fd_leaks[0].target == "");
  CHECK(r.fd_leaks[1].kind == proc::FdKind::Pipe);
  CHECK(r.fd_leaks[4].kind == proc::FdKind::Other);
}

TEST_CASE("text report") {
  Scenario sc;
  FakeFrames frames = scenario_frames();
  auto r = report::build_report(sc.tracker, sc.stacks, frames, {1234, "./widget --fast", 0}, sc.fds_at_end);
  CHECK(report::to_text(r) ==
        "ptmem: process 1234 (./widget --fast) exited with status 0\n"
        "\n"
        "ptmem: 500 bytes in 1 block is never freed (unclassified)\n"
        "    at 0x401500: helper (widget.h:5) [inlined]\n"
        "    by 0x401500: build (widget.c:40)\n"
        "    by 0x4011a0: main (main.c:30)\n"
        "\n"
        "ptmem: 120 bytes in 3 blocks are never freed (unclassified)\n"
        "    at 0x401136: make_widget (widget.c:12)\n"
        "    by 0x4011a0: main (main.c:30)\n"
        "\n"
        "ptmem: 100 bytes in 2 blocks are never freed (unclassified)\n"
        "    at 0x401600: worker (in /work/app/libw.so)\n"
        "    by 0x9999: ???\n"
        "\n"
        "ptmem: 100 bytes in 1 block is never freed (unclassified)\n"
        "    at 0x401700: single (f.c:1)\n"
        "\n"
        "ptmem: 20 bytes in 2 blocks are never freed (unclassified)\n"
        "    at 0x401136: make_widget (widget.c:12)\n"
        "    by 0x4011b0: main (main.c:31)\n"
        "\n"
        "ptmem: 7 bytes in 1 block is never freed (unclassified)\n"
        "    (no call stack: it could not be unwound)\n"
        "\n"
        "ptmem: fd 3 (socket, TCP 127.0.0.1:8080, flags O_RDWR|O_CLOEXEC) is never closed\n"
        "    at 0x401800: open_server (server.c:40)\n"
        "    by 0x4011a0: main (main.c:30)\n"
        "\n"
        "ptmem: 3 fds are never closed, all opened at the same place:\n"
        "      fd 4 (pipe, pipe:[2001], flags O_RDONLY)\n"
        "      fd 5 (pipe, pipe:[2001], flags O_WRONLY)\n"
        "      fd 6 (pipe, pipe:[2002], flags O_RDONLY)\n"
        "    at 0x401900: make_pipes (pipes.c:7)\n"
        "    by 0x4011a0: main (main.c:30)\n"
        "\n"
        "ptmem: fd 10 (file, /etc/hosts, flags O_RDONLY) is never closed\n"
        "    (origin unknown: open before ptmem attached, or created through a path ptmem does not trace)\n"
        "\n"
        "ptmem: SUMMARY\n"
        "ptmem:   leaked memory: 847 bytes in 10 blocks (6 sites)\n"
        "ptmem:   heap usage: 11 allocs, 1 free, 887 bytes allocated, peak 847 bytes in use\n"
        "ptmem:   other calls: 1 free(NULL), 0 realloc, 0 failed allocations\n"
        "ptmem:   leaked fds: 5 (9 open at the end, counting 0-2 and inherited ones)\n"
        "ptmem:   fds: 6 opened, 2 closed\n"
        "ptmem:   fds not seen opening: 1, not seen closing: 0\n"
        "ptmem:   threads seen: 2\n");

  report::Report empty;
  empty.target = {77, "", std::nullopt, SIGSEGV, false};
  CHECK(report::to_text(empty) ==
        "ptmem: process 77 was killed by SIGSEGV\n"
        "\n"
        "ptmem: SUMMARY\n"
        "ptmem:   leaked memory: 0 bytes in 0 blocks (0 sites)\n"
        "ptmem:   heap usage: 0 allocs, 0 frees, 0 bytes allocated, peak 0 bytes in use\n"
        "ptmem:   other calls: 0 free(NULL), 0 realloc, 0 failed allocations\n"
        "ptmem:   leaked fds: 0 (0 open at the end, counting 0-2 and inherited ones)\n"
        "ptmem:   fds: 0 opened, 0 closed\n"
        "ptmem:   threads seen: 0\n");
  // Lines for unusual counters appear only when they are not zero.
  track::Tracker t;
  track::StackTable st;
  t.on_free(1, 0x10);
  t.on_alloc(1, 0x20, 8, kNoStack);
  t.on_alloc(1, 0x20, 16, kNoStack);
  t.on_exec(1);
  FakeFrames none;
  auto odd = report::to_text(report::build_report(t, st, none, {5, "x"}, {}));
  CHECK(odd.find("ptmem:   frees of unknown blocks (allocated before tracing, or not seen): 1\n") != std::string::npos);
  CHECK(odd.find("ptmem:   blocks whose free was not seen: 1\n") != std::string::npos);
  CHECK(odd.find("ptmem:   dropped at exec: 16 bytes in 1 block\n") != std::string::npos);
  CHECK(report::to_text(empty).find("frees of unknown") == std::string::npos);

  empty.target = {77, "srv", std::nullopt, std::nullopt, true};
  CHECK(report::to_text(empty).substr(0, 56) == "ptmem: detached from process 77 (srv), which keeps runni");
}

TEST_CASE("JSON report follows the contract") {
  Scenario sc;
  FakeFrames frames = scenario_frames();
  auto r = report::build_report(sc.tracker, sc.stacks, frames, {1234, "./widget", std::nullopt, SIGSEGV, false},
                                sc.fds_at_end);
  auto j = report::to_json(r);
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"version", "target", "summary", "leaks", "fd_leaks", "threads", "suppressions_used"});
  CHECK(j["version"] == 1);
  CHECK(j["target"].dump() ==
        R"({"pid":1234,"command":"./widget","exit_code":null,"signal":"SIGSEGV","detached":false,"argv":[]})");

  const auto& s = j["summary"];
  std::map<std::string, uint64_t> expected{
      {"alloc_calls", 11},    {"free_calls", 1},       {"total_allocated_bytes", 887},
      {"live_blocks", 10},    {"live_bytes", 847},     {"peak_live_bytes", 847},
      {"leaked_blocks", 10},  {"leaked_bytes", 847},   {"free_null_calls", 1},
      {"realloc_calls", 0},   {"failed_alloc_calls", 0}, {"frees_of_unknown_blocks", 0},
      {"fd_opened", 6},       {"fd_closed", 2},        {"fd_open_at_end", 9},
      {"threads_seen", 2}};
  for (const auto& [k, v] : expected) {
    CAPTURE(k);
    REQUIRE(s.contains(k));
    CHECK(s[k].get<uint64_t>() == v);
  }

  CHECK(s["scan"].is_null());  // no reachability scan
  REQUIRE(j["leaks"].size() == 6);
  const auto& l0 = j["leaks"][0];
  keys.clear();
  for (auto& [k, v] : l0.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"kind", "blocks", "bytes", "stack"});
  CHECK(l0["kind"] == "unclassified");
  CHECK(l0["bytes"] == 500);
  CHECK(l0["blocks"] == 1);
  CHECK(l0["stack"][0]["address"] == "0x401500");
  CHECK(l0["stack"][0]["module"] == kApp);
  CHECK(l0["stack"][0]["function"] == "helper");
  CHECK(l0["stack"][0]["file"] == "/work/app/widget.h");
  CHECK(l0["stack"][0]["line"] == 5);
  CHECK(l0["stack"][0]["inlined"] == true);
  CHECK(l0["stack"][1]["inlined"] == false);
  // missing information is null, not "" or 0
  const auto& worker = j["leaks"][2]["stack"];
  CHECK(worker[0]["function"] == "worker");
  CHECK(worker[0]["file"].is_null());
  CHECK(worker[0]["line"].is_null());
  CHECK(worker[1]["function"].is_null());
  CHECK(worker[1]["module"] == "");
  CHECK(j["leaks"][5]["stack"].empty());

  REQUIRE(j["fd_leaks"].size() == 5);
  const auto& f0 = j["fd_leaks"][0];
  CHECK(f0["fd"] == 3);
  CHECK(f0["kind"] == "socket");
  CHECK(f0["target"] == "socket:[1001]");
  CHECK(f0["flags"] == "O_RDWR|O_CLOEXEC");
  CHECK(f0["origin"] == "socket");
  CHECK(f0["stack"][0]["function"] == "open_server");
  CHECK(f0["stack"][0]["line"] == 40);
  CHECK(f0["socket"]["local"] == "127.0.0.1:8080");
  CHECK(j["fd_leaks"][1]["kind"] == "pipe");
  CHECK(j["fd_leaks"][4]["fd"] == 10);
  CHECK(j["fd_leaks"][4]["origin"] == "unknown");
  CHECK(j["fd_leaks"][4]["stack"].empty());

  // Serialized text parses back, and bytes that are not UTF-8 do not throw.
  auto text = report::to_json_text(r);
  CHECK(nlohmann::json::parse(text)["summary"]["leaked_bytes"] == 847);
  r.target.command = "bad\xff\xfe";
  CHECK_NOTHROW(report::to_json_text(r));
  r.target.signal = 64;
  CHECK(report::to_json(r)["target"]["signal"] == "SIG64");
}

TEST_CASE("JSON report: the end scan's figures in summary.scan") {
  Scenario sc;
  FakeFrames frames = scenario_frames();
  // A target whose memory cannot be read: every block is definitely lost, none read.
  struct Unreadable final : track::TargetMemory {
    size_t read(uint64_t, void*, size_t) override { return 0; }
  } memory;
  auto reach = track::Reachability::scan(sc.tracker.allocations(), {}, {}, memory);
  report::ReportOptions opt;
  opt.reachability = &reach;
  auto j = report::to_json(report::build_report(sc.tracker, sc.stacks, frames, {1, "x"}, sc.fds_at_end, opt));
  const auto& scan = j["summary"]["scan"];
  std::vector<std::string> keys;
  for (auto& [k, v] : scan.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"blocks", "blocks_scanned", "bytes", "block_bytes", "roots_bytes", "reads",
                                         "seconds", "cpu_seconds", "index_bytes"});
  CHECK(scan["blocks"] == 10);
  CHECK(scan["blocks_scanned"] == 10);  // each as the leader of its own clique
  CHECK(scan["bytes"] == 0);
  CHECK(scan["block_bytes"] == 0);
  CHECK(scan["roots_bytes"] == 0);
  CHECK(scan["seconds"].get<double>() >= 0);
  CHECK(j["summary"]["definitely_lost_blocks"] == 10);
}
