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

class Reachability {
 public:
  /// Scans |roots| (writable mappings; the parts inside live blocks are skipped) and
  /// |root_values| (register contents), then follows pointers through the blocks.
  static Reachability scan(const AllocationTable& blocks, std::span<const MemoryRange> roots,
                           std::span<const uint64_t> root_values, TargetMemory& memory);

  /// The kind of the live block at |address|; DefinitelyLost for an unknown address.
  LeakKind kind_of(uint64_t address) const;
  uint64_t root_bytes_scanned() const { return root_bytes_; }

 private:
  // Sorted block starts and their kinds: 9 bytes per block once the scan is done (it
  // needs about 21 while it runs), next to the allocation table's ~33.
  std::vector<uint64_t> starts_;
  std::vector<LeakKind> kinds_;
  uint64_t root_bytes_ = 0;
};

}  // namespace ptmem::track
