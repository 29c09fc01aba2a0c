// Relocating a function's first instructions so its entry can be overwritten by a jump to
// the agent (the inject engine's hooks).  The displaced instructions run from a copy that
// ends with a jump back to the first instruction not displaced.
//
// A function is refused (the engine falls back to a breakpoint for it, or to the
// breakpoint engine) when its prologue cannot be moved faithfully: an instruction that
// depends on where it runs in a way we cannot fix up (a call, a ret, an indirect or rcx
// branch), or a branch anywhere in the function that lands inside the displaced bytes.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace ptmem::arch {

struct Prologue {
  uint64_t entry = 0;   ///< the function's first byte
  uint64_t patch = 0;   ///< where the jump goes: entry, or entry + 4 after an endbr64
  uint8_t length = 0;   ///< displaced bytes at |patch| (>= kHookJumpSize)
  uint64_t slot = 0;    ///< where |code| was built to run
  std::vector<uint8_t> code;  ///< relocated instructions, then the jump back
  /// Instruction boundaries: offset in the original at |patch|, offset in |code|.
  struct Boundary {
    uint8_t original;
    uint16_t copy;
  };
  std::vector<Boundary> boundaries;  ///< one per displaced instruction, plus the end

  /// A thread stopped at |pc| in the displaced original bytes, moved to the same point
  /// of the copy (and back).  0 when |pc| is not an instruction boundary of that range.
  uint64_t to_copy(uint64_t pc) const;
  uint64_t to_original(uint64_t pc) const;
  bool in_copy(uint64_t pc) const { return pc >= slot && pc < slot + code.size(); }
  bool in_patch(uint64_t pc) const { return pc > patch && pc < patch + length; }
};

/// The jump written at Prologue::patch: jmp rel32.
inline constexpr uint8_t kHookJumpSize = 5;
/// Longest code relocate_prologue() makes.
inline constexpr size_t kMaxPrologueCode = 96;

/// |function| = the function's bytes from its entry (its symbol size, or as much as is
/// known: the branch scan covers what is given).  |slot| = where the copy will live; it
/// and every target of a relocated RIP-relative operand or branch must be within +-2 GiB.
/// Returns the prologue, or why the function cannot be hooked.
std::variant<Prologue, std::string> relocate_prologue(uint64_t entry, std::span<const uint8_t> function,
                                                      uint64_t slot);

/// The jmp rel32 from |from| to |to|, or empty if out of range.
std::vector<uint8_t> jump_rel32(uint64_t from, uint64_t to);

}  // namespace ptmem::arch
