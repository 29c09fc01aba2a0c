// The engine reads setjmp's saved stack pointer in the target; here the same decoding is
// checked against this process's own glibc.
#include <doctest/doctest.h>

#include <asm/prctl.h>
#include <csetjmp>
#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>

#include "ptmem/arch/glibc_abi.hpp"

using namespace ptmem::arch;

namespace {

uint64_t thread_pointer() {
  uint64_t fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  return fs;
}

__attribute__((noinline)) uint64_t saved_sp(jmp_buf& buf, uint64_t* here) {
  int local = 0;
  *here = reinterpret_cast<uint64_t>(&local);
  if (setjmp(buf) != 0) return 0;
  uint64_t words[8];
  static_assert(sizeof(buf[0].__jmpbuf) == sizeof words);
  std::memcpy(words, buf[0].__jmpbuf, sizeof words);
  uint64_t guard = 0;
  std::memcpy(&guard, reinterpret_cast<const void*>(thread_pointer() + glibc::kPointerGuardOffset), 8);
  return glibc::demangle_pointer(words[glibc::kJmpBufSp], guard);
}

}  // namespace

TEST_CASE("glibc ABI: setjmp's saved stack pointer demangles to this frame's stack") {
  jmp_buf buf;
  uint64_t local_address = 0;
  uint64_t sp = saved_sp(buf, &local_address);
  // The saved rsp is setjmp's caller's stack pointer: within a few hundred bytes of a
  // local of that frame.
  CHECK(sp != 0);
  CHECK(sp % 8 == 0);
  CHECK(sp <= local_address + 256);
  CHECK(sp + 256 >= local_address);
}

TEST_CASE("glibc ABI: demangle_pointer undoes PTR_MANGLE") {
  const uint64_t guard = 0x1234'5678'9abc'def0, value = 0x7ffd'1234'5678;
  uint64_t x = value ^ guard;
  uint64_t mangled = (x << 0x11) | (x >> (64 - 0x11));
  CHECK(glibc::demangle_pointer(mangled, guard) == value);
}
