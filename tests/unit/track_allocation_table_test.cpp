#include <doctest/doctest.h>

#include "ptmem/track/allocation_table.hpp"

using ptmem::track::AllocationTable;
using ptmem::track::Block;

TEST_CASE("allocation table entries are packed into 24 bytes") {
  CHECK(sizeof(AllocationTable::PackedBlock) == 24);
}

TEST_CASE("allocation table: insert, find, erase keep every field") {
  AllocationTable t;
  CHECK_FALSE(t.insert({0x7f12345678a0, 4096, 0xabcdef01, 4194303, 123456789}));
  auto b = t.find(0x7f12345678a0);
  REQUIRE(b);
  CHECK(b->address == 0x7f12345678a0);
  CHECK(b->size == 4096);
  CHECK(b->stack == 0xabcdef01);
  CHECK(b->tid == 4194303);
  CHECK(b->sequence == 123456789);
  CHECK(t.size() == 1);
  CHECK(t.wide_entries() == 0);

  CHECK_FALSE(t.find(0x7f12345678b0));
  CHECK_FALSE(t.erase(0x7f12345678b0));
  auto e = t.erase(0x7f12345678a0);
  REQUIRE(e);
  CHECK(e->size == 4096);
  CHECK(t.empty());
  CHECK_FALSE(t.find(0x7f12345678a0));
}

TEST_CASE("allocation table: inserting a live address returns the replaced block") {
  AllocationTable t;
  t.insert({0x1000, 10, 1, 100, 1});
  auto old = t.insert({0x1000, 20, 2, 101, 2});
  REQUIRE(old);
  CHECK(old->size == 10);
  CHECK(old->stack == 1);
  CHECK(t.size() == 1);
  CHECK(t.find(0x1000)->size == 20);
}

TEST_CASE("allocation table: blocks beyond the packed limits are kept exactly") {
  AllocationTable t;
  const uint64_t huge_size = uint64_t{1} << 48;           // > kMaxPackedSize
  const uint64_t high_addr = uint64_t{1} << 52;           // LA57 user space
  const uint64_t big_seq = uint64_t{1} << 42;             // > kMaxPackedSequence
  t.insert({0x2000, huge_size, 7, 1, 1});
  t.insert({high_addr, 16, 8, 1, 2});
  t.insert({0x3000, 16, 9, 1 << 22, 3});                  // tid > kMaxPackedTid
  t.insert({0x4000, 16, 10, 1, big_seq});
  t.insert({0x5000, AllocationTable::kMaxPackedSize, 11, 5, AllocationTable::kMaxPackedSequence});
  CHECK(t.size() == 5);
  CHECK(t.wide_entries() == 4);
  CHECK(t.find(0x2000)->size == huge_size);
  CHECK(t.find(high_addr)->stack == 8);
  CHECK(t.find(0x3000)->tid == 1 << 22);
  CHECK(t.find(0x4000)->sequence == big_seq);
  CHECK(t.find(0x5000)->size == AllocationTable::kMaxPackedSize);
  CHECK(t.find(0x5000)->sequence == AllocationTable::kMaxPackedSequence);
  // A high address must not alias the packed entry with the same low 48 bits.
  CHECK_FALSE(t.find(high_addr + 0x2000));
  // Replacing a wide block by a packed one at the same address leaves one entry.
  auto old = t.insert({0x2000, 32, 12, 1, 6});
  REQUIRE(old);
  CHECK(old->size == huge_size);
  CHECK(t.size() == 5);
  CHECK(t.wide_entries() == 3);
  uint64_t total = 0, count = 0;
  t.for_each([&](const Block& b) {
    total += b.size;
    ++count;
  });
  CHECK(count == 5);
  CHECK(total == 32 + 16 + 16 + 16 + AllocationTable::kMaxPackedSize);
  CHECK(t.erase(high_addr)->size == 16);
  CHECK(t.wide_entries() == 2);
  t.clear();
  CHECK(t.empty());
}

TEST_CASE("allocation table memory per live block") {
  AllocationTable t;
  CHECK(t.memory_usage() == 0);
  constexpr uint64_t kBlocks = 100000;
  for (uint64_t i = 0; i < kBlocks; ++i) t.insert({0x10000 + i * 32, 24, 1, 1000, i});
  CHECK(t.size() == kBlocks);
  // absl grows to 2^k - 1 slots at 7/8 load: 131071 slots of 24 bytes + 1 control byte,
  // + 16 cloned control bytes: 32.8 bytes per block at this load.
  CHECK(t.memory_usage() == 131071 * 25 + 16);
}
