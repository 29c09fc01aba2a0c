#include <doctest/doctest.h>

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
