// Pieces of glibc's x86-64 ABI the engine reads in the target: where setjmp keeps the
// stack pointer, and how glibc mangles the pointers it saves (PTR_MANGLE).
#pragma once
#include <cstdint>

namespace ptmem::arch::glibc {

/// jmp_buf (__jmp_buf) words: rbx, rbp, r12, r13, r14, r15, rsp, pc; rbp, rsp and pc mangled.
inline constexpr int kJmpBufSp = 6;
/// tcbhead_t.pointer_guard, at this offset from the thread pointer (fs base).
inline constexpr uint64_t kPointerGuardOffset = 0x30;

/// PTR_DEMANGLE: rotate right by 17 bits, then xor with the thread's pointer guard.
constexpr uint64_t demangle_pointer(uint64_t mangled, uint64_t guard) {
  return ((mangled >> 0x11) | (mangled << (64 - 0x11))) ^ guard;
}

}  // namespace ptmem::arch::glibc
