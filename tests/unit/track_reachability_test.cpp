#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "ptmem/track/reachability.hpp"

using namespace ptmem::track;

namespace {

/// A sparse fake address space: 8-byte words at chosen addresses, zeros elsewhere inside
/// the mapped ranges, nothing readable outside them.
class FakeMemory : public TargetMemory {
 public:
  void map(uint64_t start, uint64_t end) { ranges_.push_back({start, end}); }
  void put(uint64_t addr, uint64_t value) { words_[addr] = value; }
  size_t read(uint64_t addr, void* buf, size_t len) override {
    size_t n = 0;
    for (; n < len; ++n) {
      uint64_t a = addr + n;
      bool mapped = false;
      for (auto& r : ranges_) mapped |= a >= r.start && a < r.end;
      if (!mapped) break;
      uint64_t word = 0;
      auto it = words_.find(a & ~uint64_t{7});
      if (it != words_.end()) word = it->second;
      static_cast<uint8_t*>(buf)[n] = static_cast<uint8_t>(word >> (8 * (a & 7)));
    }
    ++reads;
    return n;
  }
  int reads = 0;

 private:
  std::vector<MemoryRange> ranges_;
  std::map<uint64_t, uint64_t> words_;
};

}  // namespace

TEST_CASE("reachability: start pointers, interior pointers, lost chains, registers") {
  const uint64_t globals = 0x10000, heap = 0x20000;
  AllocationTable t;
  auto add = [&](uint64_t addr, uint64_t size) { t.insert(Block{addr, size, 1, 1, 1}); };
  const uint64_t A = heap, B = heap + 0x100, C = heap + 0x200, D = heap + 0x300, E = heap + 0x400,
                 F = heap + 0x500, G = heap + 0x600, Z = heap + 0x700;
  for (uint64_t b : {A, B, C, D, E, F, G}) add(b, 64);
  add(Z, 0);  // malloc(0): still a block, found by its start

  FakeMemory mem;
  mem.map(globals, globals + 0x100);
  mem.map(heap, heap + 0x1000);
  mem.put(globals + 8, A);          // a global points to A
  mem.put(A + 16, B + 24);          // A points into the middle of B
  mem.put(C + 8, D);                // C (unreferenced) points to D
  mem.put(F, G);                    // F lies inside the root range but is a block: not a root
  mem.put(globals + 0x40, Z);       // a global points to the zero-size block
  mem.put(heap + 0x900, C + 1);     // heap memory outside blocks is a root too
  mem.put(globals + 0x48, 0xdead);  // not a pointer to anything

  std::vector<MemoryRange> roots{{globals, globals + 0x100}, {heap, heap + 0x1000}};
  std::vector<uint64_t> registers{E, 0, 42};
  auto r = Reachability::scan(t, roots, registers, mem);
  CHECK(r.kind_of(A) == LeakKind::StillReachable);
  CHECK(r.kind_of(B) == LeakKind::PossiblyLost);   // only an interior pointer
  CHECK(r.kind_of(C) == LeakKind::PossiblyLost);   // the stray heap word points inside it
  CHECK(r.kind_of(D) == LeakKind::PossiblyLost);   // reached through C, an interior chain
  CHECK(r.kind_of(E) == LeakKind::StillReachable); // a register holds it
  CHECK(r.kind_of(F) == LeakKind::DefinitelyLost);
  CHECK(r.kind_of(G) == LeakKind::IndirectlyLost); // only the lost F points to it
  CHECK(r.kind_of(Z) == LeakKind::StillReachable);
  // The root bytes are the two ranges minus the 8 blocks (7 x 64 bytes + the 1-byte span of Z).
  CHECK(r.root_bytes_scanned() == 0x100 + 0x1000 - 7 * 64 - 1);
}

TEST_CASE("reachability: a lost cycle has one definitely lost block; unreadable memory is no root") {
  AllocationTable t;
  t.insert(Block{0x5000, 32, 1, 1, 1});
  t.insert(Block{0x6000, 32, 1, 1, 2});
  FakeMemory mem;
  mem.map(0x5000, 0x5020);
  mem.map(0x6000, 0x6020);
  mem.put(0x5000, 0x6000);
  mem.put(0x6000, 0x5000);
  std::vector<MemoryRange> roots{{0x1000, 0x2000}};  // not mapped: nothing read
  auto r = Reachability::scan(t, roots, {}, mem);
  // Each points to the other: one leads the lost clique, the other is lost through it.
  CHECK(r.kind_of(0x5000) == LeakKind::DefinitelyLost);
  CHECK(r.kind_of(0x6000) == LeakKind::IndirectlyLost);
  CHECK(to_string(LeakKind::DefinitelyLost) == "definitely_lost");
}

TEST_CASE("reachability: a former clique leader reached from a later block joins its clique") {
  AllocationTable t;
  // 0x1000 is unreached and leads first; then 0x2000 (unreached) points to it.
  t.insert(Block{0x1000, 16, 1, 1, 1});
  t.insert(Block{0x2000, 16, 1, 1, 2});
  FakeMemory mem;
  mem.map(0x1000, 0x1010);
  mem.map(0x2000, 0x2010);
  mem.put(0x2000, 0x1000);
  auto r = Reachability::scan(t, {}, {}, mem);
  CHECK(r.kind_of(0x2000) == LeakKind::DefinitelyLost);
  CHECK(r.kind_of(0x1000) == LeakKind::IndirectlyLost);
}

TEST_CASE("reachability: the scan's figures") {
  // The first test's layout again, smaller: a global points to A, A to B's start, C is lost.
  AllocationTable t;
  t.insert(Block{0x20000, 64, 1, 1, 1});  // A
  t.insert(Block{0x20100, 40, 1, 1, 2});  // B
  t.insert(Block{0x20200, 24, 1, 1, 3});  // C
  FakeMemory mem;
  mem.map(0x10000, 0x10100);
  mem.map(0x20000, 0x20300);
  mem.put(0x10008, 0x20000);
  mem.put(0x20000 + 16, 0x20100);
  std::vector<MemoryRange> roots{{0x10000, 0x10100}};
  auto r = Reachability::scan(t, roots, {}, mem);
  CHECK(r.kind_of(0x20000) == LeakKind::StillReachable);
  CHECK(r.kind_of(0x20100) == LeakKind::StillReachable);
  CHECK(r.kind_of(0x20200) == LeakKind::DefinitelyLost);
  const ScanStats& s = r.stats();
  CHECK(s.blocks == 3);
  CHECK(s.blocks_scanned == 3);  // A and B reached, C read as a clique's leader
  CHECK(s.block_bytes == 64 + 40 + 24);
  CHECK(s.roots_bytes == 0x100);
  CHECK(s.bytes() == 0x100 + 128);
  CHECK(s.reads == 2);  // one window per mapping
  CHECK(s.seconds >= 0);
  CHECK(s.index_bytes > 0);
}

namespace {

// What BlockIndex must answer: the block with the greatest start <= v, if v < its end.
struct Reference {
  std::vector<uint64_t> starts, ends;
  explicit Reference(const AllocationTable& t) {
    t.for_each([&](const Block& b) { starts.push_back(b.address); });
    std::sort(starts.begin(), starts.end());
    for (uint64_t s : starts) ends.push_back(s + std::max<uint64_t>(t.find(s)->size, 1));
  }
  uint32_t find(uint64_t v) const {
    auto it = std::upper_bound(starts.begin(), starts.end(), v);
    if (it == starts.begin()) return BlockIndex::kNone;
    size_t i = static_cast<size_t>(it - starts.begin()) - 1;
    return v < ends[i] ? static_cast<uint32_t>(i) : BlockIndex::kNone;
  }
};

// Every start, its neighbours, every end and its neighbours, and |extra| pseudo-random
// values around the blocks: BlockIndex and the reference must agree on each.
void expect_same(const AllocationTable& t, size_t extra) {
  BlockIndex ix(t);
  Reference ref(t);
  REQUIRE(ix.size() == ref.starts.size());
  for (size_t i = 0; i < ref.starts.size(); ++i) {
    CAPTURE(i);
    REQUIRE(ix.start(i) == ref.starts[i]);
    REQUIRE(ix.end(i) == ref.ends[i]);
    REQUIRE(ix.find_start(ref.starts[i]) == i);
    for (uint64_t v : {ref.starts[i] - 1, ref.starts[i], ref.starts[i] + 1, ref.ends[i] - 1, ref.ends[i],
                       ref.ends[i] + 1, (ref.starts[i] + ref.ends[i]) / 2}) {
      CAPTURE(v);
      REQUIRE(ix.find(v) == ref.find(v));
      if (ref.find(v) == BlockIndex::kNone || ref.starts[ref.find(v)] != v) REQUIRE(ix.find_start(v) == BlockIndex::kNone);
    }
  }
  uint64_t x = 88172645463325252ULL;  // xorshift64: the same values every run
  const uint64_t lo = ref.starts.front() - 4096, span = ref.ends.back() - lo + 8192;
  for (size_t k = 0; k < extra; ++k) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t v = lo + x % span;
    CAPTURE(v);
    REQUIRE(ix.find(v) == ref.find(v));
  }
  CHECK(ix.find(0) == BlockIndex::kNone);
  CHECK(ix.find(~uint64_t{0}) == BlockIndex::kNone);
  // Without sizes, blocks are still found by their start.
  ix.drop_sizes();
  for (size_t i = 0; i < ref.starts.size(); i += 7) REQUIRE(ix.find_start(ref.starts[i]) == i);
}

}  // namespace

TEST_CASE("block index: dense, sparse, huge, empty and overlapping blocks") {
  SUBCASE("dense small blocks, as malloc lays them out: one segment, about 9 bytes a block") {
    AllocationTable t;
    uint64_t at = 0x555555560000;
    for (uint64_t i = 0; i < 20000; ++i) {
      uint64_t size = 16 * (1 + (i * 37) % 53);
      t.insert(Block{at, size, 1, 1, i + 1});
      at += size + 16;
    }
    expect_same(t, 100000);
    BlockIndex ix(t);
    CHECK(ix.segment_count() == 1);
    CHECK(ix.memory_usage() <= 20000 * 10);
  }
  SUBCASE("blocks far apart (mmapped chunks, other arenas, > 4 GiB spans): several segments") {
    AllocationTable t;
    uint64_t at = 0x10000;
    for (uint64_t i = 0; i < 3000; ++i) {
      uint64_t size = i % 3 == 0 ? 0 : 8 + i % 200;  // some malloc(0)
      t.insert(Block{at, size, 1, 1, i + 1});
      at += i % 100 == 99 ? (uint64_t{5} << 30) + 4096 * (i % 7)  // past 4 GiB
            : i % 10 == 9 ? 1 << 20                                // a wide gap
                          : size + 16;
    }
    expect_same(t, 100000);
    BlockIndex ix(t);
    CHECK(ix.segment_count() >= 30);
  }
  SUBCASE("a block of 5 GiB (its size does not fit 32 bits), and blocks inside another") {
    AllocationTable t;
    t.insert(Block{0x7f0000000000, uint64_t{5} << 30, 1, 1, 1});
    t.insert(Block{0x7f0000000000 + (uint64_t{6} << 30), 100, 1, 1, 2});
    // Overlaps happen when a free went unseen: the later start wins, as with a plain search.
    t.insert(Block{0x400000, 0x10000, 1, 1, 3});
    t.insert(Block{0x401000, 64, 1, 1, 4});
    t.insert(Block{0x402000, 64, 1, 1, 5});
    expect_same(t, 100000);
    BlockIndex ix(t);
    CHECK(ix.find(0x7f0000000000 + (uint64_t{4} << 30)) == 3);
    CHECK(ix.find(0x401040) == BlockIndex::kNone);  // past the inner block's end
    CHECK(ix.find(0x400800) == 0);
  }
  SUBCASE("one block; none") {
    AllocationTable t;
    BlockIndex none(t);
    CHECK(none.size() == 0);
    CHECK(none.find(0x1000) == BlockIndex::kNone);
    CHECK(none.find_start(0x1000) == BlockIndex::kNone);
    t.insert(Block{0x1000, 8, 1, 1, 1});
    expect_same(t, 1000);
  }
}
