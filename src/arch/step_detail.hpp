// What the planner precomputes for one breakpoint so that emulate() is a switch over a few
// plain fields (no decoding, no allocation per hit) and build_displaced() is a copy + patch.
// Internal to src/arch: the engine only sees StepPlan.
#pragma once
#include <array>
#include <cstdint>

#include "ptmem/arch/step_over.hpp"

namespace ptmem::arch {

/// A general-purpose register as an instruction names it: which of the 16 GPRs, how many
/// bytes, and at which bit it starts (8 for ah/ch/dh/bh, else 0).
struct GprRef {
  uint8_t gpr = 0;    ///< 0..15 in encoding order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15
  uint8_t width = 8;  ///< 1, 2, 4 or 8 bytes
  uint8_t shift = 0;  ///< 0, or 8 for the legacy high-byte registers
};

struct StepPlan::Detail {
  enum class Op : uint8_t { Nop, Push, Pop, Mov, Lea, Alu, Jmp, Call, Jcc, Ret };
  enum class Alu : uint8_t { Add, Sub, Cmp, And, Or, Xor, Test };
  /// Branch conditions; Rcxz/Ecxz test the count register, Loop* also decrement rcx.
  enum class Cond : uint8_t {
    O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G, Rcxz, Ecxz, Loop, LoopE, LoopNE
  };

  struct Operand {
    enum class Kind : uint8_t {
      None,
      Reg,     ///< reg
      Imm,     ///< value (already masked to width; sign-extended where the CPU does)
      RipMem,  ///< memory at the absolute address |value| (RIP-relative, resolved at plan)
      AddrMem, ///< base + index*scale + disp, computed from registers at each hit
    };
    Kind kind = Kind::None;
    uint8_t width = 8;  ///< operand size in bytes
    GprRef reg;         ///< Reg
    uint64_t value = 0; ///< Imm / RipMem
    bool has_base = false, has_index = false;
    GprRef base, index; ///< AddrMem (64-bit registers)
    uint8_t scale = 1;
    int64_t disp = 0;
  };

  // --- emulation ---
  bool emulable = false;
  Op op = Op::Nop;
  Alu alu = Alu::Add;
  Cond cond = Cond::E;
  Operand dst, src;       ///< meaning depends on op (src = pushed value / branch target)
  uint64_t next = 0;      ///< address + length
  uint16_t ret_pop = 0;   ///< extra bytes `ret imm16` releases

  // --- displaced stepping ---
  bool relocatable = false;
  uint8_t length = 0;
  std::array<uint8_t, 16> bytes{};
  uint8_t disp_pos = 0;        ///< offset of the RIP-relative disp32 in bytes, 0 if none
  uint64_t riprel_target = 0;  ///< absolute address the RIP-relative operand designates
};

}  // namespace ptmem::arch
