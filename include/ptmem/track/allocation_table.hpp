// Live heap blocks of the target: address -> size, allocating stack, thread, sequence number.
// One entry per live block, so this table IS the tracer's memory cost per block; the goal is
// a worst case (transient growth included) well under 48 bytes per live block at any size.
//
// Entries are packed into 24 bytes (key included).  Packed limits (x86-64 user space fits
// them): 0 < address < 2^48, size < 2^48 - 1, tid < 2^22 (PID_MAX_LIMIT), sequence < 2^42.
// A block outside them is not truncated: it goes, unpacked, to a small side table, so every
// figure stays exact.
//
// Layout, and why (absl::flat_hash_set cost 78.6 bytes per block at 1M blocks: load 0.48
// just after a 2x growth, plus old and new arrays both held during that growth):
//  - Open addressing with linear probing kept in Robin Hood order (entries sorted by home
//    slot), backward-shift deletion, no tombstones and no control bytes.  Lookups stop
//    early (at an entry closer to its own home than we are to ours), so a miss costs about
//    what a hit costs even at load 0.9.
//  - The key stored is not the address but a bijective 48-bit hash of it (unpack() inverts
//    it): probing compares and orders hashes without rehashing each entry it passes, and
//    the hash of address 0 is 0, which marks an empty slot (no real block is at 0).
//  - 64 shards chosen by hash bits, each grown by 1.5x at load 0.9 (and shrunk back to at
//    most 0.6 below 0.25), so a rehash only ever holds one shard's old and new arrays: the
//    transient is one shard's old array, about 1/100 of the table.
//  - Staggered capacities: shard i's capacities are 4 * 1.5^(level + i/64), so the shards,
//    which hold about the same number of entries, do not all grow at the same moment.  The
//    table's load is then not a sawtooth between 0.6 and 0.9 but about their logarithmic
//    mean at every size: ~24 / 0.73 = 33 bytes per block (24 / 0.6 = 40 would be the
//    sawtooth's worst).  Capacities are not powers of two: the home slot is mapped with a
//    multiply (hash * capacity >> 48), which needs no division.
//  - A replaced array's pages are given back to the kernel before free(), or glibc would
//    keep them resident as heap holes: every earlier size of every shard, up to twice the
//    live arrays (the bench measures VmHWM, which would keep them).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <sys/types.h>

#include <absl/container/flat_hash_map.h>

#include "ptmem/track/events.hpp"

namespace ptmem::track {

/// One live block, unpacked.
struct Block {
  uint64_t address = 0;
  uint64_t size = 0;
  StackId stack = kNoStack;
  pid_t tid = 0;
  uint64_t sequence = 0;  ///< order of the allocating event among all tracked events
};

class AllocationTable {
 public:
  /// The packed form.  Exposed so tests can assert its size.  key == 0: empty slot.
  struct PackedBlock {
    uint64_t key : 48;  ///< hash_address(address), a bijection
    uint64_t stack_lo : 16;
    uint64_t size : 48;
    uint64_t stack_hi : 16;
    uint64_t sequence : 42;
    uint64_t tid : 22;

    Block unpack() const;
  };
  static_assert(sizeof(PackedBlock) == 24, "an entry must stay 24 bytes");
  static constexpr uint64_t kMaxPackedAddress = (uint64_t{1} << 48) - 1;
  static constexpr uint64_t kMaxPackedSize = (uint64_t{1} << 48) - 2;
  static constexpr uint64_t kMaxPackedSequence = (uint64_t{1} << 42) - 1;
  static constexpr uint64_t kMaxPackedTid = (uint64_t{1} << 22) - 1;

  /// The stored key: a bijection of [0, 2^48) with hash_address(0) == 0, and its inverse.
  static uint64_t hash_address(uint64_t address);
  static uint64_t unhash_address(uint64_t key);

  static constexpr size_t kShards = 64;

  AllocationTable() = default;
  AllocationTable(const AllocationTable& other);
  AllocationTable& operator=(const AllocationTable& other);
  AllocationTable(AllocationTable&& other) noexcept;
  AllocationTable& operator=(AllocationTable&& other) noexcept;
  ~AllocationTable();

  /// Adds |block|.  If its address was already live (its free went unseen), the old block
  /// is replaced and returned.
  std::optional<Block> insert(const Block& block);
  /// Removes and returns the block at |address|; nullopt if unknown.
  std::optional<Block> erase(uint64_t address);
  std::optional<Block> find(uint64_t address) const;

  size_t size() const { return packed_count_ + wide_.size(); }
  bool empty() const { return size() == 0; }
  /// Removes every block and gives all memory back.
  void clear();
  /// Bytes held by the table now: slot arrays, shard headers, side table.
  size_t memory_usage() const;
  /// The highest memory_usage() ever reached, counting the moment of each shard's growth
  /// when its old and new arrays are both held (the side table's own growth excluded).
  size_t peak_memory_usage() const { return peak_bytes_; }
  size_t wide_entries() const { return wide_.size(); }  ///< blocks stored unpacked

  /// Calls |f(const Block&)| for every live block, in no particular order.
  template <typename F>
  void for_each(F&& f) const {
    if (shards_) {
      for (size_t i = 0; i < kShards; ++i) {
        const Shard& s = shards_[i];
        for (size_t j = 0; j < s.capacity; ++j)
          if (s.slots[j].key != 0) f(s.slots[j].unpack());
      }
    }
    for (const auto& [addr, b] : wide_) f(b);
  }

 private:
  struct Shard {
    PackedBlock* slots = nullptr;  // capacity entries; nullptr until the first insert
    size_t capacity = 0;
    size_t count = 0;
    unsigned level = 0;  // capacity == slots_for(level, shard index)
  };

  static bool fits(const Block& b);
  static PackedBlock pack(const Block& b);
  static size_t slots_for(unsigned level, size_t shard);
  static PackedBlock* allocate(size_t capacity);
  static void release(PackedBlock* slots, size_t capacity);

  Shard& shard_of(uint64_t key) { return shards_[key % kShards]; }
  const Shard* find_shard(uint64_t key) const {
    return shards_ ? &shards_[key % kShards] : nullptr;
  }
  void resize(Shard& s, unsigned level);
  std::optional<Block> take_wide(uint64_t address);  // erase from the side table
  void release_all();

  std::unique_ptr<Shard[]> shards_;  // kShards of them, allocated on the first packed insert
  size_t packed_count_ = 0;
  size_t slot_bytes_ = 0;  // capacity * sizeof(PackedBlock), summed over the shards
  size_t peak_bytes_ = 0;
  absl::flat_hash_map<uint64_t, Block> wide_;
};

}  // namespace ptmem::track
