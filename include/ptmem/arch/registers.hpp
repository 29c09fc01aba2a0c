// x86-64 registers of a stopped thread, with the SysV ABI accessors the tracer needs.
#pragma once
#include <array>
#include <cstdint>
#include <sys/user.h>

namespace ptmem::arch {

/// RFLAGS bits (Intel SDM vol. 1, 3.4.3).  The six status flags are what arithmetic sets.
namespace rflags {
inline constexpr uint64_t kCF = 1u << 0;
inline constexpr uint64_t kPF = 1u << 2;
inline constexpr uint64_t kAF = 1u << 4;
inline constexpr uint64_t kZF = 1u << 6;
inline constexpr uint64_t kSF = 1u << 7;
inline constexpr uint64_t kTF = 1u << 8;
inline constexpr uint64_t kDF = 1u << 10;
inline constexpr uint64_t kOF = 1u << 11;
inline constexpr uint64_t kStatus = kCF | kPF | kAF | kZF | kSF | kOF;
}  // namespace rflags

/// Thin value type over user_regs_struct (what PTRACE_GETREGS fills).
struct Registers {
  user_regs_struct raw{};

  uint64_t ip() const { return raw.rip; }
  void set_ip(uint64_t v) { raw.rip = v; }
  uint64_t sp() const { return raw.rsp; }
  void set_sp(uint64_t v) { raw.rsp = v; }
  /// Integer argument |i| (0-based) of a SysV call at function entry.
  uint64_t arg(int i) const {
    switch (i) {
      case 0: return raw.rdi;
      case 1: return raw.rsi;
      case 2: return raw.rdx;
      case 3: return raw.rcx;
      case 4: return raw.r8;
      default: return raw.r9;
    }
  }
  uint64_t ret() const { return raw.rax; }
  uint64_t flags() const { return raw.eflags; }
  void set_flags(uint64_t v) { raw.eflags = v; }

  /// The 17 DWARF registers in DWARF order (rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp,
  /// r8..r15, rip), as libdwfl's set_initial_registers wants them.
  std::array<uint64_t, 17> dwarf() const {
    return {raw.rax, raw.rdx, raw.rcx, raw.rbx, raw.rsi, raw.rdi, raw.rbp, raw.rsp,
            raw.r8,  raw.r9,  raw.r10, raw.r11, raw.r12, raw.r13, raw.r14, raw.r15, raw.rip};
  }
};

}  // namespace ptmem::arch
