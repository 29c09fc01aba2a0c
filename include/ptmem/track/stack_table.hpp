// Call stacks interned once: every traced allocation and fd carries a 32-bit StackId instead
// of its program counters.  Storage is one flat pc vector plus offsets, so a stack costs its
// pcs, one offset, its module generation and a hash-set slot; no per-stack heap block.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ptmem/track/events.hpp"

namespace ptmem::track {

class StackTable {
 public:
  struct Stack {
    std::span<const uint64_t> pcs;   ///< pcs[0] = the hooked function's entry, then return addresses
    uint64_t module_generation = 0;  ///< ModuleMap generation the pcs were captured at
  };

  StackTable();
  ~StackTable();
  StackTable(StackTable&&) noexcept;
  StackTable& operator=(StackTable&&) noexcept;
  StackTable(const StackTable&) = delete;
  StackTable& operator=(const StackTable&) = delete;

  /// The id of (|pcs|, |module_generation|): the same id for the same pcs and generation,
  /// a new one (1, 2, 3...) otherwise.  An empty |pcs| is kNoStack.  Returns kNoStack too if
  /// the table is full (2^32-1 stacks or 2^32-1 pcs in all), which no real target reaches.
  StackId intern(std::span<const uint64_t> pcs, uint64_t module_generation);

  /// The stack of |id|; empty pcs for kNoStack or an id this table never returned.
  Stack get(StackId id) const;

  size_t size() const;          ///< number of distinct stacks
  size_t memory_usage() const;  ///< bytes held (vectors' capacity and the hash set's slots)

 private:
  // The dedup set's hash and equality functors read the pcs through a pointer to the flat
  // storage; keeping both on the heap (one Impl) makes StackTable movable without
  // re-pointing them.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ptmem::track
