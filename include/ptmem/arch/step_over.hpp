// How to get a thread past one of our int3 breakpoints without lifting it, so other threads
// running through the same code keep trapping.  Decided once per breakpoint from the
// original instruction bytes (Capstone), applied at every hit:
//   Emulate   - the tracer performs the instruction on the saved registers (push, mov,
//               xor, test, cmp with a RIP-relative memory operand, sub/add on rsp, nop,
//               endbr64, call rel32, jmp rel...).  Zero extra stops, nothing to restore.
//   Displaced - the instruction, relocated for a scratch slot within +-2 GiB (RIP-relative
//               displacement adjusted), is followed by a jump back to the next original
//               instruction; the thread resumes at the slot.  Zero extra stops.
//   Unsupported - neither applies; the engine must stop the world and step in place.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ptmem/arch/registers.hpp"

namespace ptmem::arch {

/// Memory of the stopped target as the emulator sees it (original bytes, not our int3s).
class MemoryAccess {
 public:
  virtual ~MemoryAccess() = default;
  virtual bool read(uint64_t addr, void* buf, size_t len) = 0;
  virtual bool write(uint64_t addr, const void* buf, size_t len) = 0;
};

struct StepPlan {
  enum class Kind : uint8_t { Emulate, Displaced, Unsupported };
  Kind kind = Kind::Unsupported;
  uint64_t address = 0;       ///< where the original instruction lives
  uint8_t length = 0;         ///< its length in bytes
  std::string text;           ///< "push r12", for logs and tests
  /// build_displaced() can relocate this instruction.  True for every Displaced plan and
  /// also for Emulate plans whose instruction is position-independent enough, so the
  /// engine has a zero-stop fallback when emulate() reports a failed memory access.
  bool displaceable = false;
  // Implementation detail of the emulator/relocator (opaque to the engine).
  struct Detail;
  std::shared_ptr<const Detail> detail;
};

/// Capstone-backed planner.  Not thread-safe (one Capstone handle); cheap to reuse.
class StepPlanner {
 public:
  StepPlanner();
  ~StepPlanner();
  StepPlanner(const StepPlanner&) = delete;
  StepPlanner& operator=(const StepPlanner&) = delete;

  /// |code| = original bytes at |address| (at least the instruction; pass 16 if you can).
  /// Prefers Emulate, then Displaced, else Unsupported (never fails outright).
  StepPlan plan(uint64_t address, std::span<const uint8_t> code);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Performs an Emulate plan: updates |regs| (rip included) and writes memory (a push)
/// through |mem|.  Returns false if a memory access failed (regs then unchanged).
/// Reads go through |mem| too: the stack (pop, ret), RIP-relative operands (cmp, jmp/call
/// through the GOT) - |mem| must show original bytes there, not our int3s.
/// Allocation-free; at most one read and one write through |mem| per call.
bool emulate(const StepPlan& plan, Registers& regs, MemoryAccess& mem);

/// RFLAGS status bits (rflags::kCF...) the planned instruction architecturally defines;
/// emulate() computes these exactly as the CPU does.  Bits the SDM calls undefined (AF
/// after and/or/xor/test) are not included; emulate() clears that one, as current Intel
/// and AMD parts do.  Other RFLAGS bits are left as they were.  0 for instructions that
/// leave every flag alone (push, mov, lea, branches...).
uint64_t defined_flags(const StepPlan& plan);

/// Code for a Displaced (or displaceable) plan placed at |slot|: the relocated instruction
/// followed by a jump back to plan.address + plan.length (jmp rel32, or jmp *0(%rip) with
/// an absolute address when the slot is farther than 2 GiB from it).  nullopt if the
/// relocation is out of range for this slot (RIP-relative target farther than 2 GiB).
/// At most kMaxDisplacedSize bytes.  A thread that faults or takes a signal inside the
/// copy reports an rip in the slot: map it back to plan.address for the user.
inline constexpr size_t kMaxDisplacedSize = 32;
std::optional<std::vector<uint8_t>> build_displaced(const StepPlan& plan, uint64_t slot);

}  // namespace ptmem::arch
