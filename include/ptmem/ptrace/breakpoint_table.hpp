// Our int3s in one address space: where they are, the byte each replaced, how a thread gets
// past each (arch::StepPlan), and what a hit means.  Reads handed to anyone else (the
// step-over planner, the unwinder's fallback) go through mask() so they never see an int3
// we planted (rr's replace_breakpoints_with_original_values).
#pragma once
#include <absl/container/flat_hash_map.h>
#include <cstdint>
#include <vector>

#include "ptmem/arch/step_over.hpp"

namespace ptmem::ptrace {

class RemoteMemory;

struct Breakpoint {
  enum class Kind : uint8_t {
    Function,    ///< entry of a traced function (track::traced_functions()[function])
    DebugState,  ///< the dynamic linker's r_brk: library list changed
    Entry,       ///< one-shot at a static program's entry: hooks go in from a normal stop
    Unwind,      ///< entry of the unwinder (C++ throw, thread cancellation): see session.cpp
    LongJump,    ///< entry of glibc's longjmp family: frames below its target are gone
  };
  uint64_t address = 0;
  Kind kind = Kind::Function;
  uint8_t original = 0;           ///< the byte our 0xCC replaced
  int function = -1;              ///< row in track::traced_functions()
  arch::StepPlan plan;
  uint64_t displaced_slot = 0;    ///< for Displaced plans: where the relocated copy lives
  uint8_t displaced_length = 0;   ///< length of the relocated instruction in the slot
  /// The function starts with a jmp: its body is a tail call (jemalloc's operator delete
  /// is `jmp free`), so the traced function it may reach is the same call, not a new one.
  bool tail_jump = false;
};

class BreakpointTable {
 public:
  /// Writes 0xCC at bp.address, saving the original byte (which must already be in
  /// bp.original: the caller read it while planning).  False if the write failed.
  bool insert(RemoteMemory& mem, Breakpoint bp);
  /// Restores the original byte and forgets the breakpoint.
  bool remove(RemoteMemory& mem, uint64_t address);
  /// Restores every original byte (detach); returns false if any write failed.
  bool remove_all(RemoteMemory& mem);
  /// Forgets breakpoints in [start, end) without writing: that memory is gone (unmapped).
  void forget_range(uint64_t start, uint64_t end);
  /// Forgets all without writing (exec replaced the address space).
  void forget_all() { table_.clear(); }
  /// Restores original bytes in another address space with the same layout (a forked child).
  bool restore_in(RemoteMemory& child_mem) const;

  const Breakpoint* find(uint64_t address) const {
    auto it = table_.find(address);
    return it == table_.end() ? nullptr : &it->second;
  }
  bool contains(uint64_t address) const { return table_.contains(address); }
  size_t size() const { return table_.size(); }
  /// Replaces our int3s inside [addr, addr+len) of |buf| with the original bytes.
  void mask(uint64_t addr, uint8_t* buf, size_t len) const;
  std::vector<const Breakpoint*> all() const;

 private:
  absl::flat_hash_map<uint64_t, Breakpoint> table_;
};

}  // namespace ptmem::ptrace
