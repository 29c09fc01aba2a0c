#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "ptmem/track/allocation_table.hpp"

using ptmem::track::AllocationTable;
using ptmem::track::Block;

namespace {

bool same(const Block& a, const Block& b) {
  return a.address == b.address && a.size == b.size && a.stack == b.stack && a.tid == b.tid &&
         a.sequence == b.sequence;
}

bool fits_packed(const Block& b) {
  return b.address != 0 && b.address <= AllocationTable::kMaxPackedAddress &&
         b.size <= AllocationTable::kMaxPackedSize &&
         b.sequence <= AllocationTable::kMaxPackedSequence && b.tid >= 0 &&
         static_cast<uint64_t>(b.tid) <= AllocationTable::kMaxPackedTid;
}

}  // namespace

TEST_CASE("allocation table entries are packed into 24 bytes") {
  CHECK(sizeof(AllocationTable::PackedBlock) == 24);
}

TEST_CASE("allocation table: the stored key is a bijection of 48-bit addresses, 0 -> 0") {
  CHECK(AllocationTable::hash_address(0) == 0);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    uint64_t a = rng() & AllocationTable::kMaxPackedAddress;
    uint64_t k = AllocationTable::hash_address(a);
    CHECK(k <= AllocationTable::kMaxPackedAddress);
    if (a != 0) CHECK(k != 0);
    REQUIRE(AllocationTable::unhash_address(k) == a);
  }
  CHECK(AllocationTable::unhash_address(AllocationTable::hash_address(
            AllocationTable::kMaxPackedAddress)) == AllocationTable::kMaxPackedAddress);
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
  CHECK_FALSE(t.find(0));  // 0 is the empty-slot marker: never a match by accident
  CHECK_FALSE(t.erase(0));
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
  // Address 0 cannot be packed (it marks empty slots) but is still kept exactly.
  t.insert({0, 8, 13, 1, 7});
  CHECK(t.wide_entries() == 3);
  CHECK(t.find(0)->stack == 13);
  CHECK(t.erase(0)->stack == 13);
  t.clear();
  CHECK(t.empty());
  CHECK(t.memory_usage() == 0);
}

TEST_CASE("allocation table agrees with std::unordered_map under adversarial addresses") {
  // Address pools a heap produces: sequential 16-byte-aligned blocks, page-aligned blocks,
  // tight clusters at a few distant bases, plus addresses that only the side table can take
  // (above 2^48, and 0).  Blocks at ordinary addresses sometimes carry fields too large to
  // pack, so an address moves between the packed and the side table.
  std::vector<uint64_t> pool;
  for (uint64_t i = 0; i < 60000; ++i) pool.push_back(0x555555560000 + i * 16);
  for (uint64_t i = 0; i < 60000; ++i) pool.push_back(0x7f0000000000 + i * 4096);
  const uint64_t bases[] = {0x10000, 0x7ffff7a00000, 0x600000000000, 0xfffffff00000};
  for (uint64_t base : bases)
    for (uint64_t i = 0; i < 15000; ++i) pool.push_back(base + i * 8);
  pool.push_back(AllocationTable::kMaxPackedAddress);
  for (uint64_t i = 0; i < 50; ++i) pool.push_back((uint64_t{1} << 48) + i * 16);
  pool.push_back(0);

  std::mt19937_64 rng(12345);
  AllocationTable t;
  std::unordered_map<uint64_t, Block> ref;
  uint64_t sequence = 0;
  auto random_block = [&](uint64_t address) {
    Block b{address, 1 + rng() % 4096, static_cast<uint32_t>(rng()), static_cast<pid_t>(rng() % 5000),
            ++sequence};
    switch (rng() % 64) {  // about 5% of blocks need the side table for a field
      case 0: b.size = AllocationTable::kMaxPackedSize + 1 + rng() % 1000; break;
      case 1: b.tid = static_cast<pid_t>(AllocationTable::kMaxPackedTid + 1); break;
      case 2: b.sequence = AllocationTable::kMaxPackedSequence + 1 + sequence; break;
      default: break;
    }
    return b;
  };
  size_t reinserts = 0, hits = 0, misses = 0;
  auto erase_checked = [&](uint64_t address) {
    std::optional<Block> got = t.erase(address);
    auto it = ref.find(address);
    if (it == ref.end()) {
      REQUIRE_FALSE(got);
      ++misses;
    } else {
      REQUIRE(got);
      REQUIRE(same(*got, it->second));
      ref.erase(it);
      ++hits;
    }
  };
  auto step = [&](int insert_pct, int erase_pct) {
    const uint64_t address = pool[rng() % pool.size()];
    const int op = static_cast<int>(rng() % 100);
    if (op < insert_pct) {
      Block b = random_block(address);
      std::optional<Block> old = t.insert(b);
      auto it = ref.find(address);
      if (it == ref.end()) {
        REQUIRE_FALSE(old);
        ref.emplace(address, b);
      } else {
        REQUIRE(old);
        REQUIRE(same(*old, it->second));
        it->second = b;
        ++reinserts;
      }
    } else if (op < insert_pct + erase_pct) {
      erase_checked(address);
    } else {
      std::optional<Block> got = t.find(address);
      auto it = ref.find(address);
      REQUIRE(got.has_value() == (it != ref.end()));
      if (got) REQUIRE(same(*got, it->second));
    }
  };
  auto check_all = [&] {
    REQUIRE(t.size() == ref.size());
    size_t wide = 0;
    for (const auto& [a, b] : ref) wide += fits_packed(b) ? 0 : 1;
    REQUIRE(t.wide_entries() == wide);
    size_t seen = 0;
    bool all_match = true;
    t.for_each([&](const Block& b) {
      ++seen;
      auto it = ref.find(b.address);
      all_match = all_match && it != ref.end() && same(b, it->second);
    });
    REQUIRE(seen == ref.size());
    REQUIRE(all_match);
  };

  for (int i = 0; i < 400000; ++i) step(70, 20);  // grow to ~140k live
  check_all();
  size_t peak_size = t.size();
  for (int i = 0; i < 400000; ++i) step(45, 45);  // churn at that size
  check_all();
  {
    // Shrink to 2000 live blocks, erasing live ones in random order amid random steps:
    // shards give memory back.
    std::vector<uint64_t> live;
    for (const auto& [a, b] : ref) live.push_back(a);
    std::shuffle(live.begin(), live.end(), rng);
    for (size_t i = 0; ref.size() > 2000 && i < live.size(); ++i) {
      if (ref.count(live[i])) erase_checked(live[i]);
      if (i % 8 == 0) step(30, 30);
    }
    while (ref.size() > 2000) erase_checked(ref.begin()->first);
  }
  check_all();
  CHECK(t.size() == 2000);
  CHECK(peak_size > 100000);
  CHECK(reinserts > 10000);
  CHECK(hits > 100000);
  CHECK(misses > 100000);
  // Below 1/4 full a shard shrinks back to at most 6/10 full, and the side table shrinks
  // below 1/8 full: at most 96 bytes a packed block, plus the 64 shard headers and their
  // smallest arrays (<= 6 slots), however many blocks were live before.
  CHECK(t.memory_usage() <= 96 * t.size() + 64 * (32 + 6 * 24) + 49 * 8 * t.wide_entries() + 64);
  for (int i = 0; i < 100000; ++i) step(60, 30);  // and grows again
  check_all();
}

TEST_CASE("allocation table: copies and moves keep every block") {
  AllocationTable t;
  for (uint64_t i = 1; i <= 50000; ++i) t.insert({0x1000 + i * 16, i, 1, 1, i});
  t.insert({uint64_t{1} << 50, 3, 1, 1, 1});
  AllocationTable copy(t);
  CHECK(copy.size() == t.size());
  CHECK(copy.memory_usage() == t.memory_usage());
  CHECK(copy.erase(0x1000 + 16)->size == 1);
  CHECK(t.find(0x1000 + 16)->size == 1);  // the copy owns its own arrays
  CHECK(copy.find(uint64_t{1} << 50)->size == 3);
  AllocationTable moved(std::move(copy));
  CHECK(moved.size() == 50000);
  CHECK(moved.find(0x1000 + 50000 * 16)->size == 50000);
  AllocationTable assigned;
  assigned.insert({0x42, 1, 1, 1, 1});
  assigned = moved;
  CHECK(assigned.size() == 50000);
  CHECK_FALSE(assigned.find(0x42));
  assigned = std::move(t);
  CHECK(assigned.size() == 50001);
  CHECK(assigned.find(0x1000 + 16)->size == 1);
}

TEST_CASE("allocation table memory per live block stays under 40 bytes, growth included") {
  // The tracer's cost per live block is memory_usage() / size().  Sampled densely from 10k
  // to 2M blocks (malloc-like 16-byte steps, then page-aligned addresses), it must stay
  // <= 40 bytes, and so must the peak, which counts the moment a shard holds its old and
  // new arrays.  Growth goes one shard at a time: memory rises by one shard's step (the
  // table has 64 shards, so well under 1/64 of the table), and the peak exceeds what is
  // held afterwards by at most one shard's old array (4 KiB of slack for the first
  // inserts, which allocate the 64 shard headers).
  for (uint64_t stride : {uint64_t{16}, uint64_t{4096}}) {
    CAPTURE(stride);
    AllocationTable t;
    CHECK(t.memory_usage() == 0);
    double worst = 0, worst_peak = 0;
    size_t growths = 0;
    bool one_shard_steps = true, one_shard_peaks = true;
    size_t before = 0;
    for (uint64_t i = 1; i <= 2000000; ++i) {
      t.insert({0x10000 + i * stride, 24, 1, 1000, i});
      const size_t now = t.memory_usage();
      if (now != before) {
        ++growths;
        one_shard_steps = one_shard_steps && now - before <= now / 64 + 4096;
        one_shard_peaks = one_shard_peaks && t.peak_memory_usage() <= now + now / 32 + 4096;
        before = now;
      }
      if (i >= 10000 && i % 7919 == 0) {
        worst = std::max(worst, static_cast<double>(now) / t.size());
        worst_peak = std::max(worst_peak, static_cast<double>(t.peak_memory_usage()) / t.size());
      }
    }
    CHECK(t.size() == 2000000);
    CHECK(growths > 64 * 20);  // each shard grew many times, in 1.5x steps
    CHECK(one_shard_steps);
    CHECK(one_shard_peaks);
    CHECK(worst <= 40.0);
    CHECK(worst_peak <= 40.0);
    // The staggered shard capacities keep the load near the middle of [0.6, 0.9] at every
    // size, not only on average: 24 bytes / 0.6 = 40 would be the worst of a sawtooth.
    CHECK(worst <= 36.0);
    MESSAGE("stride " << stride << ": worst " << worst << " bytes/block, peak " << worst_peak);
  }
}
