#include <doctest/doctest.h>

#include <vector>

#include "ptmem/track/stack_table.hpp"

using ptmem::track::kNoStack;
using ptmem::track::StackId;
using ptmem::track::StackTable;

namespace {
std::vector<uint64_t> pcs_of(const StackTable& t, StackId id) {
  auto s = t.get(id);
  return {s.pcs.begin(), s.pcs.end()};
}
}  // namespace

TEST_CASE("stack interning: same pcs and generation, same id; ids from 1") {
  StackTable t;
  std::vector<uint64_t> a{0x1000, 0x401136, 0x4011a0};
  std::vector<uint64_t> b{0x1000, 0x401136};
  CHECK(t.intern(a, 1) == 1);
  CHECK(t.intern(a, 1) == 1);
  CHECK(t.intern(a, 2) == 2);  // another module generation: maybe other code at those pcs
  CHECK(t.intern(b, 1) == 3);  // a prefix is another stack
  CHECK(t.intern(std::vector<uint64_t>{0x1000, 0x401136, 0x4011a0}, 1) == 1);
  CHECK(t.size() == 3);

  CHECK(pcs_of(t, 1) == a);
  CHECK(t.get(1).module_generation == 1);
  CHECK(pcs_of(t, 2) == a);
  CHECK(t.get(2).module_generation == 2);
  CHECK(pcs_of(t, 3) == b);
}

TEST_CASE("stack interning: empty stack and unknown ids") {
  StackTable t;
  CHECK(t.intern({}, 7) == kNoStack);
  CHECK(t.size() == 0);
  CHECK(t.get(kNoStack).pcs.empty());
  CHECK(t.get(1).pcs.empty());
  std::vector<uint64_t> a{1, 2};
  CHECK(t.intern(a, 0) == 1);
  CHECK(t.get(2).pcs.empty());
  CHECK(t.get(0xffffffff).pcs.empty());
}

TEST_CASE("stack interning survives growth and moves") {
  StackTable t;
  constexpr uint64_t kStacks = 20000;
  // Many distinct stacks force several rehashes, which re-hash stored stacks by id.
  for (uint64_t i = 0; i < kStacks; ++i) {
    std::vector<uint64_t> pcs{0x500000 + i, 0x401000 + (i % 7), i % 3};
    REQUIRE(t.intern(pcs, i % 2) == i + 1);
  }
  CHECK(t.size() == kStacks);
  StackTable moved = std::move(t);
  for (uint64_t i = 0; i < kStacks; ++i) {
    std::vector<uint64_t> pcs{0x500000 + i, 0x401000 + (i % 7), i % 3};
    REQUIRE(moved.intern(pcs, i % 2) == i + 1);
    REQUIRE(pcs_of(moved, static_cast<StackId>(i + 1)) == pcs);
  }
  CHECK(moved.size() == kStacks);
  // 3 pcs (24 bytes) + offset (4) + generation (8) per stack, plus set slots (5 bytes each):
  // vectors may hold up to twice what they use.
  CHECK(moved.memory_usage() >= kStacks * (24 + 4 + 8 + 5));
  CHECK(moved.memory_usage() <= kStacks * 2 * (24 + 4 + 8 + 5) + 4096);
}
