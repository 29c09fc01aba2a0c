#include "ptmem/track/allocation_table.hpp"

namespace ptmem::track {

Block AllocationTable::PackedBlock::unpack() const {
  Block b;
  b.address = address;
  b.size = size;
  b.stack = static_cast<StackId>(stack_lo | (uint64_t{stack_hi} << 16));
  b.tid = static_cast<pid_t>(tid);
  b.sequence = sequence;
  return b;
}

bool AllocationTable::fits(const Block& b) {
  return b.address <= kMaxPackedAddress && b.size <= kMaxPackedSize &&
         b.sequence <= kMaxPackedSequence && b.tid >= 0 &&
         static_cast<uint64_t>(b.tid) <= kMaxPackedTid;
}

AllocationTable::PackedBlock AllocationTable::pack(const Block& b) {
  PackedBlock p;
  p.address = b.address;
  p.stack_lo = b.stack & 0xffff;
  p.size = b.size;
  p.stack_hi = b.stack >> 16;
  p.sequence = b.sequence;
  p.tid = static_cast<uint64_t>(b.tid);
  return p;
}

std::optional<Block> AllocationTable::insert(const Block& block) {
  // An address is in at most one of the two tables; a replaced block may sit in either.
  if (!fits(block)) {
    std::optional<Block> old = erase(block.address);
    wide_.insert_or_assign(block.address, block);
    return old;
  }
  std::optional<Block> old;
  if (!wide_.empty()) {
    if (auto it = wide_.find(block.address); it != wide_.end()) {
      old = it->second;
      wide_.erase(it);
    }
  }
  // One probe on the hot path: insert, and overwrite in place if the address was live.
  // Writing through the set's const reference is sound: the slot object is not const and
  // the address (all that hash and equality read) does not change.
  auto [it, inserted] = packed_.insert(pack(block));
  if (!inserted) {
    old = it->unpack();
    const_cast<PackedBlock&>(*it) = pack(block);
  }
  return old;
}

std::optional<Block> AllocationTable::erase(uint64_t address) {
  if (address <= kMaxPackedAddress) {
    auto it = packed_.find(address);
    if (it != packed_.end()) {
      Block b = it->unpack();
      packed_.erase(it);
      return b;
    }
  }
  if (!wide_.empty()) {
    auto it = wide_.find(address);
    if (it != wide_.end()) {
      Block b = it->second;
      wide_.erase(it);
      return b;
    }
  }
  return std::nullopt;
}

std::optional<Block> AllocationTable::find(uint64_t address) const {
  if (address <= kMaxPackedAddress) {
    auto it = packed_.find(address);
    if (it != packed_.end()) return it->unpack();
  }
  if (!wide_.empty()) {
    auto it = wide_.find(address);
    if (it != wide_.end()) return it->second;
  }
  return std::nullopt;
}

void AllocationTable::clear() {
  packed_.clear();
  wide_.clear();
}

size_t AllocationTable::memory_usage() const {
  // absl's raw_hash_set allocates capacity slots plus capacity + 16 control bytes (one
  // sentinel, a group's worth of cloned bytes).
  auto table_bytes = [](size_t capacity, size_t slot) {
    return capacity ? capacity * (slot + 1) + 16 : 0;
  };
  return table_bytes(packed_.capacity(), sizeof(PackedBlock)) +
         table_bytes(wide_.capacity(), sizeof(std::pair<const uint64_t, Block>));
}

}  // namespace ptmem::track
