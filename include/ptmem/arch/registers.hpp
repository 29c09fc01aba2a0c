// x86-64 registers of a stopped thread, with the SysV ABI accessors the tracer needs.
#pragma once
#include <array>
#include <cstdint>
#include <sys/user.h>

namespace ptmem::arch {

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

  /// The 17 DWARF registers in DWARF order (rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp,
  /// r8..r15, rip), as libdwfl's set_initial_registers wants them.
  std::array<uint64_t, 17> dwarf() const {
    return {raw.rax, raw.rdx, raw.rcx, raw.rbx, raw.rsi, raw.rdi, raw.rbp, raw.rsp,
            raw.r8,  raw.r9,  raw.r10, raw.r11, raw.r12, raw.r13, raw.r14, raw.r15, raw.rip};
  }
};

}  // namespace ptmem::arch
