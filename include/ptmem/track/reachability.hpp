// Which never-freed blocks are still reachable, memcheck's and LeakSanitizer's question,
// answered from the target's memory at the end of the trace (its exit stop, or detach,
// while every thread is stopped).  Tracking stays apart from this analysis: the scan reads
// memory through a small interface and the live blocks from the AllocationTable.
//
// Roots: every word of the target's writable memory outside live blocks (globals, stacks,
// TLS, allocator metadata) and the threads' registers, as memcheck treats "all accessible
// non-heap memory".  A block is
//   still_reachable  if a chain of pointers to block starts leads to it from a root,
//   possibly_lost    if it is reached only through a pointer into its middle somewhere,
//   indirectly_lost  if only other unreached blocks point to it (a leaked list's nodes),
//   definitely_lost  if nothing points to it at all.
// The scan is conservative: any word that looks like a pointer counts, stale data in freed
// chunks included, so a block may be called reachable that is not; never the reverse.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <span>
#include <string_view>
#include <vector>

#include "ptmem/track/allocation_table.hpp"

namespace ptmem::track {

enum class LeakKind : uint8_t { DefinitelyLost, IndirectlyLost, PossiblyLost, StillReachable };
inline constexpr int kLeakKinds = 4;

/// "definitely_lost", "indirectly_lost", "possibly_lost", "still_reachable".
std::string_view to_string(LeakKind kind);

/// The stopped target's memory, as the scan reads it.
class TargetMemory {
 public:
  virtual ~TargetMemory() = default;
  /// Reads what is mapped of [addr, addr+len) from the start; returns the bytes read.
  virtual size_t read(uint64_t addr, void* buf, size_t len) = 0;
};

struct MemoryRange {
  uint64_t start = 0, end = 0;  ///< [start, end)
};

/// The live blocks sorted by address, as the scan looks pointers up in them: about 9 bytes
/// per block (5 once the sizes are dropped), against 16 for plain start and end arrays.
///  - Starts are stored as 32-bit offsets from the base of their segment: a run of blocks
///    whose starts are at most 16 granules apart and span less than 4 GiB.
///  - A granule index per segment (granules of 2^shift bytes, shift chosen so there are at
///    most about n/4 granules) gives, for each granule, the last block starting before it:
///    a lookup is one index read and a binary search among the few starts in one granule,
///    instead of a binary search over every start (24 cache misses at 10M blocks).
///  - Sizes are 32-bit; larger ones sit in a sorted side list.
/// find() answers exactly what a binary search of sorted starts would: the block with the
/// greatest start <= value, if value lies before its end (a zero-size block spans 1 byte).
class BlockIndex {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};

  BlockIndex() = default;
  /// Indexes every live block of |table|.  Throws std::length_error past 2^32 - 2 blocks.
  explicit BlockIndex(const AllocationTable& table);

  size_t size() const { return n_; }
  uint64_t start(size_t i) const { return segments_[segment_of(i)].base + offsets_[i]; }
  /// One past the block's last byte (start + 1 for a zero-size block); needs sizes.
  uint64_t end(size_t i) const { return start(i) + span(i); }
  uint64_t span(size_t i) const;
  /// The index of the block |value| points into, or kNone.
  uint32_t find(uint64_t value) const;
  /// The index of the block starting at |address|, or kNone.
  uint32_t find_start(uint64_t address) const;
  /// Frees the sizes once the scan is done: end(), span() and find() are no longer usable.
  void drop_sizes();
  /// Bytes held now (offsets, sizes, segments, granule index).
  size_t memory_usage() const;
  unsigned granule_shift() const { return shift_; }
  size_t segment_count() const { return segments_.size(); }

 private:
  struct Segment {
    uint64_t base = 0;     ///< granule-aligned, at or below its first start
    uint32_t first = 0;    ///< index of its first block
    uint32_t last = 0;     ///< index of its last block
    uint64_t granule_at = 0;  ///< its first entry in granules_
    uint64_t granules = 0;    ///< entries: one per granule up to its last start's
  };
  size_t segment_of(size_t i) const;        ///< the segment holding block i
  size_t segment_at(uint64_t value) const;  ///< the last segment whose base <= value
  /// Greatest block index whose start <= value, or kNone.
  uint32_t candidate(uint64_t value) const;

  size_t n_ = 0;
  unsigned shift_ = 12;
  uint64_t low_ = 0, high_ = 0;  ///< lowest start, highest end
  struct Free {
    void operator()(uint32_t* p) const;
  };
  // malloc'd, not a vector: built as 64-bit starts, sorted, then narrowed in place and
  // shrunk, so the full-width array and the narrow one are never both held.
  std::unique_ptr<uint32_t[], Free> offsets_;
  std::vector<uint32_t> sizes_;  ///< kNone: see big_sizes_
  std::vector<std::pair<uint32_t, uint64_t>> big_sizes_;  ///< (index, size), sorted
  std::vector<Segment> segments_;
  std::vector<uint64_t> segment_bases_;  ///< segments_[k].base, for the binary search
  std::vector<uint32_t> granules_;
};

/// What the end scan did: the "scan" object of the JSON report.
struct ScanStats {
  uint64_t blocks = 0;          ///< live blocks classified
  uint64_t blocks_scanned = 0;  ///< block contents read (a block reached first through an
                                ///< interior pointer, then a start pointer, is read twice)
  uint64_t block_bytes = 0;     ///< bytes of block contents read
  uint64_t roots_bytes = 0;     ///< bytes of the root ranges outside live blocks
  uint64_t reads = 0;           ///< reads of the target's memory (system calls)
  uint64_t index_bytes = 0;     ///< peak bytes of the scan's own structures
  double seconds = 0;           ///< wall time of the whole scan, index building included
  double cpu_seconds = 0;       ///< ptmem's CPU time in it (user and system: the copies)
  uint64_t bytes() const { return block_bytes + roots_bytes; }
};

class Reachability {
 public:
  /// Scans |roots| (writable mappings; the parts inside live blocks are skipped) and
  /// |root_values| (register contents), then follows pointers through the blocks.
  static Reachability scan(const AllocationTable& blocks, std::span<const MemoryRange> roots,
                           std::span<const uint64_t> root_values, TargetMemory& memory);

  /// The kind of the live block at |address|; DefinitelyLost for an unknown address.
  LeakKind kind_of(uint64_t address) const;
  uint64_t root_bytes_scanned() const { return stats_.roots_bytes; }
  const ScanStats& stats() const { return stats_; }

 private:
  // The blocks' index (sizes dropped) and one kind per block once the scan is done: about
  // 6 bytes per block next to the allocation table's ~33 (about 14 while it runs).
  BlockIndex index_;
  std::vector<uint8_t> kinds_;  // LeakKind values
  ScanStats stats_;
};

}  // namespace ptmem::track
