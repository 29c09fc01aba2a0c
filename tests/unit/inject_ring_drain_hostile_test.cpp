// RingDrain against a target that rewrote the shared region (it maps it read-write): the
// defects tests/fuzz/fuzz_ring_drain.cpp found.  Each case crashed, read out of bounds or
// spun before the fix; now the drain reads only what ptmem laid out and counts the rest bad.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <sys/mman.h>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ptmem/inject/ring_drain.hpp"
#include "ptmem/track/functions.hpp"

using namespace ptmem;

namespace {

constexpr uint32_t kRing = 64 * 1024;
constexpr uint32_t kRings = 2;  // rings in the region (slots 0 and 1)

struct Region {
  size_t bytes;
  uint8_t* mem = nullptr;
  ptmem_control* c;
  uint64_t threads_offset, rings_offset;

  Region() {
    threads_offset = 4096 * ((sizeof(ptmem_control) + 4095) / 4096);
    rings_offset = threads_offset + sizeof(ptmem_thread) * PTMEM_MAX_THREADS;
    bytes = rings_offset + uint64_t{kRing} * kRings;
    REQUIRE(bytes % 4096 == 0);
    // A page no access follows the region: a read past its end faults, as it would past
    // ptmem's mapping of the memfd.
    void* p = ::mmap(nullptr, bytes + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    mem = static_cast<uint8_t*>(p);
    REQUIRE(::mprotect(mem + bytes, 4096, PROT_NONE) == 0);
    c = reinterpret_cast<ptmem_control*>(mem);
    c->magic = PTMEM_CONTROL_MAGIC;
    c->ring_bytes = kRing;
    c->threads_offset = threads_offset;
    c->rings_offset = rings_offset;
    thread(0).key = 0x1000;
  }
  ~Region() { ::munmap(mem, bytes + 4096); }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  ptmem_thread& thread(uint32_t i) { return reinterpret_cast<ptmem_thread*>(mem + threads_offset)[i]; }
  uint8_t* ring(uint32_t slot) { return mem + rings_offset + uint64_t{slot} * kRing; }

  uint16_t hook(const char* name) {
    int row = track::find_traced_function(name);
    REQUIRE(row >= 0);
    ptmem_hook& h = c->hooks[c->nhooks];
    h.address = 0x400000 + 0x100 * c->nhooks;
    h.function = static_cast<uint16_t>(row);
    return static_cast<uint16_t>(c->nhooks++);
  }
  // As the agent appends a record: a PAD fills the ring's end when it would not fit.
  void push(uint32_t slot, const ptmem_record& r) {
    ptmem_thread& t = thread(slot);
    uint64_t off = t.head & (kRing - 1);
    if (off + sizeof r > kRing) {
      ptmem_record pad{};
      pad.type = PTMEM_REC_PAD;
      pad.size = static_cast<uint32_t>(kRing - off);
      std::memcpy(ring(slot) + off, &pad, 8);
      t.head += kRing - off;
      off = 0;
    }
    std::memcpy(ring(slot) + off, &r, sizeof r);
    t.head += sizeof r;
  }
  // free(addr) as the agent records it: an entry, no return, no stack.
  void free_entry(uint32_t slot, uint16_t hook, uint64_t seq, uint64_t addr) {
    ptmem_record r{};
    r.type = PTMEM_REC_ENTRY;
    r.hook = hook;
    r.size = sizeof r;
    r.tid = static_cast<int32_t>(100 + slot);
    r.seq = seq;
    r.ts = 10 + seq;
    r.args[0] = addr;
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
  void on_realloc(pid_t, uint64_t, uint64_t, uint64_t, track::StackId) override { events.push_back("realloc"); }
  void on_failed_alloc(pid_t tid) override { events.push_back(fmt::format("{} failed", tid)); }
  void on_fd_open(pid_t, int, track::FdOrigin, track::StackId) override { events.push_back("open"); }
  void on_fd_close(pid_t, int) override { events.push_back("close"); }
  void on_fd_close_range(pid_t, unsigned, unsigned) override {}
  void on_exec(pid_t) override {}
};

struct NoStacks final : inject::StackSource {
  track::StackId stack(const ptmem_record&, uint64_t, std::span<const uint64_t>, std::span<const uint8_t>) override {
    return track::kNoStack;
  }
};

}  // namespace

TEST_CASE("ring drain, hostile target: geometry rewritten after ptmem wrote it is not followed") {
  Region g;
  inject::RingDrain drain(g.c, g.bytes);
  const uint16_t free_hook = g.hook("free");
  g.free_entry(0, free_hook, 0, 0x5000);
  // The fuzzer's first find: a misaligned threads_offset (and any ring size or offset)
  // sent the drain to read thread slots and rings wherever they pointed.
  g.c->threads_offset = 0xd081310b91eb375;
  g.c->ring_bytes = 3;
  g.c->rings_offset = ~uint64_t{0} - 7;
  Log log;
  NoStacks stacks;
  CHECK(drain.drain(log, stacks) == 1);
  CHECK(log.events == std::vector<std::string>{"100 free 0x5000"});
  CHECK(drain.counters().bad == 0);
}

TEST_CASE("ring drain, hostile target: a geometry that does not fit the region reads nothing") {
  for (int variant = 0; variant < 4; ++variant) {
    CAPTURE(variant);
    Region g;
    const uint16_t free_hook = g.hook("free");
    g.free_entry(0, free_hook, 0, 0x5000);
    if (variant == 0) g.c->ring_bytes = 96;                       // not a power of two
    if (variant == 1) g.c->ring_bytes = 64;                       // smaller than one record
    if (variant == 2) g.c->threads_offset = g.threads_offset + 8; // misaligned slots
    if (variant == 3) g.c->threads_offset = g.bytes;              // slots past the end
    inject::RingDrain drain(g.c, g.bytes);
    Log log;
    NoStacks stacks;
    CHECK(drain.drain(log, stacks) == 0);
    CHECK(log.events.empty());
  }
}

TEST_CASE("ring drain, hostile target: a slot whose ring lies past the region is skipped") {
  Region g;  // rings for slots 0 and 1 only: slot 2's would start at the guard page
  inject::RingDrain drain(g.c, g.bytes);
  g.thread(2).key = 0x5000;
  g.thread(2).head = sizeof(ptmem_record);
  Log log;
  NoStacks stacks;
  CHECK(drain.drain(log, stacks) == 0);
  CHECK(log.events.empty());
  CHECK(drain.counters().bad == 1);
}

TEST_CASE("ring drain, hostile target: a misaligned tail or a head more than a ring ahead is skipped") {
  SUBCASE("tail not 8-aligned: records would be read across the ring's end, misaligned") {
    Region g;
    inject::RingDrain drain(g.c, g.bytes);
    const uint16_t free_hook = g.hook("free");
    g.free_entry(0, free_hook, 0, 0x5000);
    g.thread(0).tail = 4;
    g.thread(0).head = 4 + sizeof(ptmem_record);
    Log log;
    NoStacks stacks;
    CHECK(drain.drain(log, stacks) == 0);
    CHECK(log.events.empty());
    CHECK(drain.counters().bad == 1);
    CHECK(g.thread(0).tail == 4 + sizeof(ptmem_record));  // caught up: the next record is read
  }
  SUBCASE("head 2^40 bytes ahead over a ring of PAD records: the drain went round it 2^33 times") {
    Region g;
    inject::RingDrain drain(g.c, g.bytes);
    for (uint32_t off = 0; off < kRing; off += 8) {
      ptmem_record pad{};
      pad.type = PTMEM_REC_PAD;
      pad.size = 8;
      std::memcpy(g.ring(0) + off, &pad, 8);
    }
    g.thread(0).head = uint64_t{1} << 40;
    Log log;
    NoStacks stacks;
    CHECK(drain.drain(log, stacks) == 0);
    CHECK(drain.counters().bad == 1);
    CHECK(g.thread(0).tail == uint64_t{1} << 40);
  }
  SUBCASE("tail near 2^64: tail + size wrapped past the head check") {
    Region g;
    inject::RingDrain drain(g.c, g.bytes);
    g.thread(0).tail = ~uint64_t{0} - 15;  // 8-aligned, 8 bytes before head
    g.thread(0).head = ~uint64_t{0} - 7;
    const uint16_t free_hook = g.hook("free");
    ptmem_record r{};
    r.type = PTMEM_REC_ENTRY;
    r.hook = free_hook;
    r.size = sizeof r;  // larger than the 8 bytes between tail and head
    r.args[0] = 0x5000;
    std::memcpy(g.ring(0) + (g.thread(0).tail & (kRing - 1)), &r, sizeof r);
    Log log;
    NoStacks stacks;
    CHECK(drain.drain(log, stacks) == 0);
    CHECK(log.events.empty());
    CHECK(drain.counters().bad == 1);
    CHECK(g.thread(0).tail == ~uint64_t{0} - 7);
  }
}

TEST_CASE("ring drain, hostile target: nhooks beyond the hook table is not trusted") {
  Region g;
  inject::RingDrain drain(g.c, g.bytes);
  g.c->nhooks = 1000;
  // Hook 500 was read 16 KB past the table, from the zeroed thread slots: "function" 0,
  // flags 0, so a call nobody made was decoded (a malloc that failed).
  g.free_entry(0, 500, 0, 0x5000);
  Log log;
  NoStacks stacks;
  CHECK(drain.drain(log, stacks) == 1);
  CHECK(log.events.empty());
  CHECK(drain.counters().bad == 1);
}

TEST_CASE("ring drain, hostile target: entries that never return stop being kept at the shadow stacks' capacity") {
  Region g;
  inject::RingDrain drain(g.c, g.bytes);
  int row = track::find_traced_function("malloc");
  REQUIRE(row >= 0);
  ptmem_hook& h = g.c->hooks[g.c->nhooks++];
  h.function = static_cast<uint16_t>(row);
  h.flags = PTMEM_HOOK_RETURN;  // waits for a return that never comes
  const uint64_t cap = uint64_t{PTMEM_MAX_THREADS} * PTMEM_SHADOW_DEPTH;
  Log log;
  NoStacks stacks;
  uint64_t seq = 0;
  while (seq < cap + 10) {  // a ring holds about 400 records: drain as the agent would wait
    for (int i = 0; i < 400 && seq < cap + 10; ++i) {
      ptmem_record r{};
      r.type = PTMEM_REC_ENTRY;
      r.size = sizeof r;
      r.tid = 100;
      r.seq = seq++;
      r.ts = seq;
      g.push(0, r);
    }
    drain.drain(log, stacks);
  }
  CHECK(drain.pending() == cap);
  CHECK(drain.counters().bad == 10);
  CHECK(log.events.empty());
}
