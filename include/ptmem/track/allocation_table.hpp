// Live heap blocks of the target: address -> size, allocating stack, thread, sequence number.
// One entry per live block, so its size is the tracer's memory cost per block: entries are
// packed into 24 bytes (key included) in an open-addressing absl::flat_hash_set, i.e. 25
// bytes per slot with the control byte.
//
// Packed limits (x86-64 user space fits them): address < 2^48, size < 2^48 - 1,
// tid < 2^22 (PID_MAX_LIMIT), sequence < 2^42.  A block outside them is not truncated: it
// goes, unpacked, to a small side table, so every figure stays exact.
#pragma once
#include <cstdint>
#include <optional>
#include <sys/types.h>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/hash/hash.h>

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
  /// The packed form.  Exposed so tests can assert its size.
  struct PackedBlock {
    uint64_t address : 48;
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

  /// Adds |block|.  If its address was already live (its free went unseen), the old block
  /// is replaced and returned.
  std::optional<Block> insert(const Block& block);
  /// Removes and returns the block at |address|; nullopt if unknown.
  std::optional<Block> erase(uint64_t address);
  std::optional<Block> find(uint64_t address) const;

  size_t size() const { return packed_.size() + wide_.size(); }
  bool empty() const { return size() == 0; }
  void clear();
  /// Bytes held by the table (slots, control bytes, side table).
  size_t memory_usage() const;
  size_t wide_entries() const { return wide_.size(); }  ///< blocks stored unpacked

  /// Calls |f(const Block&)| for every live block, in no particular order.
  template <typename F>
  void for_each(F&& f) const {
    for (const PackedBlock& p : packed_) f(p.unpack());
    for (const auto& [addr, b] : wide_) f(b);
  }

 private:
  // Hash and equality look at the address bits only, and accept a bare address for lookup,
  // so the set works as a map whose key lives inside the packed value.
  struct Hash {
    using is_transparent = void;
    size_t operator()(const PackedBlock& p) const { return absl::HashOf(uint64_t{p.address}); }
    size_t operator()(uint64_t address) const { return absl::HashOf(address); }
  };
  struct Eq {
    using is_transparent = void;
    bool operator()(const PackedBlock& a, const PackedBlock& b) const { return a.address == b.address; }
    bool operator()(const PackedBlock& a, uint64_t b) const { return a.address == b; }
    bool operator()(uint64_t a, const PackedBlock& b) const { return a == b.address; }
  };
  static bool fits(const Block& b);
  static PackedBlock pack(const Block& b);

  absl::flat_hash_set<PackedBlock, Hash, Eq> packed_;
  absl::flat_hash_map<uint64_t, Block> wide_;
};

}  // namespace ptmem::track
