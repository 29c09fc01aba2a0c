// RingDrain, the inject engine's host-side reader: records written into a control region
// the way the agent writes them come out as the events of completed calls, in the order
// their effects happened across threads.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ptmem/inject/ring_drain.hpp"
#include "ptmem/track/functions.hpp"

using namespace ptmem;

namespace {

constexpr uint32_t kRing = 64 * 1024;
constexpr uint32_t kThreads = 4;  // slots used by the tests (the region has them all)

struct Region {
  size_t bytes;
  std::unique_ptr<uint8_t[]> mem;
  ptmem_control* c;

  Region() {
    const uint64_t threads_offset = 4096 * ((sizeof(ptmem_control) + 4095) / 4096);
    const uint64_t rings_offset = threads_offset + sizeof(ptmem_thread) * PTMEM_MAX_THREADS;
    bytes = rings_offset + uint64_t{kRing} * kThreads;
    mem.reset(new (std::align_val_t(64)) uint8_t[bytes]());
    c = reinterpret_cast<ptmem_control*>(mem.get());
    c->magic = PTMEM_CONTROL_MAGIC;
    c->ring_bytes = kRing;
    c->threads_offset = threads_offset;
    c->rings_offset = rings_offset;
    for (uint32_t i = 0; i < kThreads; ++i) thread(i).key = 0x1000 * (i + 1);
  }
  ptmem_thread& thread(uint32_t i) { return reinterpret_cast<ptmem_thread*>(mem.get() + c->threads_offset)[i]; }

  /// Hook |name| as the agent host would; returns its index.
  uint16_t hook(const char* name) {
    int row = track::find_traced_function(name);
    REQUIRE(row >= 0);
    const auto& fn = track::traced_functions()[static_cast<size_t>(row)];
    ptmem_hook& h = c->hooks[c->nhooks];
    h.address = 0x400000 + 0x100 * c->nhooks;
    h.function = static_cast<uint16_t>(row);
    h.family = static_cast<uint8_t>(fn.family);
    h.flags = static_cast<uint8_t>((fn.needs_return ? PTMEM_HOOK_RETURN : 0) |
                                   (track::creates(fn.action) ? PTMEM_HOOK_STACK : 0));
    return static_cast<uint16_t>(c->nhooks++);
  }

  void push(uint32_t slot, const ptmem_record& r) {
    ptmem_thread& t = thread(slot);
    uint8_t* ring = mem.get() + c->rings_offset + uint64_t{slot} * kRing;
    std::memcpy(ring + (t.head & (kRing - 1)), &r, sizeof r);
    t.head += sizeof r;
  }
  void entry(uint32_t slot, uint16_t hook, uint64_t seq, uint64_t ts, uint64_t a0, uint64_t a1 = 0) {
    ptmem_record r{};
    r.type = PTMEM_REC_ENTRY;
    r.hook = hook;
    r.size = sizeof r;
    r.tid = static_cast<int32_t>(100 + slot);
    r.seq = seq;
    r.ts = ts;
    r.args[0] = a0;
    r.args[1] = a1;
    push(slot, r);
  }
  void ret(uint32_t slot, uint16_t hook, uint64_t seq, uint64_t ts, uint64_t result, uint16_t type = PTMEM_REC_RETURN) {
    ptmem_record r{};
    r.type = type;
    r.hook = hook;
    r.size = sizeof r;
    r.tid = static_cast<int32_t>(100 + slot);
    r.seq = seq;
    r.ts = ts;
    r.args[0] = result;
    push(slot, r);
  }
};

struct Log final : track::EventSink {
  std::vector<std::string> events;
  void on_alloc(pid_t tid, uint64_t addr, uint64_t size, track::StackId) override {
    events.push_back(fmt::format("{} alloc {:#x} {}", tid, addr, size));
  }
  void on_free(pid_t tid, uint64_t addr) override { events.push_back(fmt::format("{} free {:#x}", tid, addr)); }
  void on_free_null(pid_t tid) override { events.push_back(fmt::format("{} free NULL", tid)); }
  void on_realloc(pid_t tid, uint64_t a, uint64_t b, uint64_t size, track::StackId) override {
    events.push_back(fmt::format("{} realloc {:#x} {:#x} {}", tid, a, b, size));
  }
  void on_failed_alloc(pid_t tid) override { events.push_back(fmt::format("{} failed", tid)); }
  void on_fd_open(pid_t tid, int fd, track::FdOrigin, track::StackId) override {
    events.push_back(fmt::format("{} open {}", tid, fd));
  }
  void on_fd_close(pid_t tid, int fd) override { events.push_back(fmt::format("{} close {}", tid, fd)); }
  void on_fd_close_range(pid_t, unsigned, unsigned) override {}
  void on_exec(pid_t) override {}
};

struct NoStacks final : inject::StackSource {
  int asked = 0;
  track::StackId stack(const ptmem_record&, uint64_t, std::span<const uint64_t>, std::span<const uint8_t>) override {
    ++asked;
    return track::kNoStack;
  }
};

/// A region, its drain, and what came out.
struct Fixture {
  Region g;
  inject::RingDrain drain{g.c, g.bytes};
  Log log;
  NoStacks stacks;
};

}  // namespace

TEST_CASE("ring drain: an entry and its return make one call; a free needs no return") {
  Fixture x;
  auto& [g, drain, log, stacks] = x;
  const uint16_t malloc_hook = g.hook("malloc"), free_hook = g.hook("free");
  g.entry(0, malloc_hook, 0, 10, 40);
  CHECK(drain.drain(log, stacks) == 1);
  CHECK(log.events.empty());  // waiting for its return
  CHECK(drain.pending() == 1);
  g.ret(0, malloc_hook, 0, 20, 0x5000);
  g.entry(0, free_hook, 1, 30, 0x5000);
  CHECK(drain.drain(log, stacks) == 2);
  CHECK(log.events == std::vector<std::string>{"100 alloc 0x5000 40", "100 free 0x5000"});
  CHECK(drain.pending() == 0);
  CHECK(stacks.asked == 1);  // malloc's stack; free has none to take
  CHECK(g.thread(0).tail == g.thread(0).head);
  CHECK(drain.counters().bad == 0);
}

TEST_CASE("ring drain: calls of different threads come out in the order their effects happened") {
  Fixture x;
  auto& [g, drain, log, stacks] = x;
  const uint16_t m = g.hook("malloc"), f = g.hook("free");
  // Thread 1 frees 0x7000 (entry at 50) and thread 0 gets it back from malloc, which
  // started earlier (entry 40) but returned later (70): the free comes first.
  g.entry(0, m, 0, 40, 24);
  g.ret(0, m, 0, 70, 0x7000);
  g.entry(1, f, 0, 50, 0x7000);
  // And the other way: thread 1's malloc returns 0x8000 at 80, thread 0 frees it at 90.
  g.entry(1, m, 1, 75, 16);
  g.ret(1, m, 1, 80, 0x8000);
  g.entry(0, f, 1, 90, 0x8000);
  drain.drain(log, stacks);
  CHECK(log.events == std::vector<std::string>{"101 free 0x7000", "100 alloc 0x7000 24", "101 alloc 0x8000 16",
                                               "100 free 0x8000"});
}

TEST_CASE("ring drain: a release still waiting for its result holds back what came after it") {
  Fixture x;
  auto& [g, drain, log, stacks] = x;
  const uint16_t close_hook = g.hook("close"), open_hook = g.hook("open");
  // close(5) entered at 10 on thread 0; thread 1's open returned 5 at 20.  Until the close
  // returns, the open cannot be emitted: it may have reused the number close freed.
  g.entry(0, close_hook, 0, 10, 5);
  g.entry(1, open_hook, 0, 12, 0x1234);
  g.ret(1, open_hook, 0, 20, 5);
  drain.drain(log, stacks);
  CHECK(log.events.empty());
  g.ret(0, close_hook, 0, 25, 0);
  drain.drain(log, stacks);
  CHECK(log.events == std::vector<std::string>{"100 close 5", "101 open 5"});
}

TEST_CASE("ring drain: a call that never returns (abandoned, or pending at the end) is a failed allocation") {
  Fixture x;
  auto& [g, drain, log, stacks] = x;
  const uint16_t m = g.hook("_Znwm");
  g.entry(2, m, 0, 10, 1ull << 50);
  g.ret(2, m, 0, 20, 0, PTMEM_REC_ABANDONED);  // bad_alloc unwound through it
  g.entry(3, m, 0, 30, 64);                    // still inside when the target stopped for good
  drain.drain(log, stacks);
  CHECK(log.events == std::vector<std::string>{"102 failed"});
  CHECK(drain.pending() == 1);
  drain.drain(log, stacks, true);
  CHECK(log.events == std::vector<std::string>{"102 failed", "103 failed"});
  CHECK(drain.counters().abandoned == 1);
  CHECK(drain.pending() == 0);
}

TEST_CASE("ring drain: malformed records are counted and skipped, never read past") {
  Fixture x;
  auto& [g, drain, log, stacks] = x;
  const uint16_t m = g.hook("malloc");
  ptmem_record r{};
  r.type = PTMEM_REC_ENTRY;
  r.hook = m;
  r.size = 12;  // not a multiple of 8
  g.push(0, r);
  g.entry(1, 99, 0, 5, 1);  // no such hook
  drain.drain(log, stacks);
  CHECK(drain.counters().bad == 2);
  CHECK(log.events.empty());
  CHECK(g.thread(0).tail == g.thread(0).head);
}
