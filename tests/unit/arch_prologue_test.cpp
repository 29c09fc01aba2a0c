// relocate_prologue(): exact bytes for hand-made prologues, refusals, and the relocated
// copies of the real libc and libstdc++ entries ptmem hooks, executed in this process
// (the copy runs the displaced instructions and jumps back into the untouched original).
#include <doctest/doctest.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <variant>
#include <vector>

#include "ptmem/arch/prologue.hpp"

using namespace ptmem::arch;

namespace {

Prologue ok(const std::variant<Prologue, std::string>& r) {
  if (auto* why = std::get_if<std::string>(&r)) FAIL("refused: " << *why);
  return std::get<Prologue>(r);
}

std::string refused(const std::variant<Prologue, std::string>& r) {
  if (auto* why = std::get_if<std::string>(&r)) return *why;
  return "";
}

// An executable page within rel32 reach of |near| (where the real functions live).
struct NearPage {
  uint8_t* page = nullptr;
  explicit NearPage(uint64_t near) {
    for (uint64_t d = 16u << 20; d < (1ull << 30) && !page; d += 16u << 20) {
      void* hint = reinterpret_cast<void*>((near - d) & ~0xfffull);
      void* p = mmap(hint, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p != MAP_FAILED) page = static_cast<uint8_t*>(p);
    }
    REQUIRE(page);
  }
  ~NearPage() { munmap(page, 4096); }
};

// Relocates |fn| (its bytes read from this process) into |page| at |offset|.
template <typename F>
F relocated(F fn, NearPage& page, size_t offset) {
  const auto entry = reinterpret_cast<uint64_t>(reinterpret_cast<void*>(fn));
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(entry), 256);
  const uint64_t slot = reinterpret_cast<uint64_t>(page.page + offset);
  const Prologue p = ok(relocate_prologue(entry, bytes, slot));
  REQUIRE(p.code.size() <= 128);
  std::memcpy(page.page + offset, p.code.data(), p.code.size());
  return reinterpret_cast<F>(page.page + offset);
}

}  // namespace

TEST_CASE("prologue: straight-line code is copied and jumps back after the displaced bytes") {
  // push r12; push rbp; push rbx; mov rbx, rdi; sub rsp, 0x10
  const std::vector<uint8_t> f{0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb, 0x48, 0x83, 0xec, 0x10, 0xc3};
  const uint64_t entry = 0x400000, slot = 0x500000;
  const Prologue p = ok(relocate_prologue(entry, f, slot));
  CHECK(p.patch == entry);
  CHECK(p.length == 7);  // three pushes (4 bytes) and the mov (3): the first >= 5
  const std::vector<uint8_t> want{0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb, 0xe9};
  REQUIRE(p.code.size() == want.size() + 4);
  CHECK(std::equal(want.begin(), want.end(), p.code.begin()));
  int32_t rel;
  std::memcpy(&rel, p.code.data() + 8, 4);
  CHECK(slot + 12 + rel == entry + 7);
  CHECK(p.to_copy(entry + 2) == slot + 2);
  CHECK(p.to_copy(entry + 3) == slot + 3);
  CHECK(p.to_copy(entry + 1) == 0);  // inside push r12
  CHECK(p.to_original(slot + 7) == entry + 7);
  CHECK(p.in_patch(entry + 4));
  CHECK_FALSE(p.in_patch(entry));
}

TEST_CASE("prologue: an endbr64 stays, a RIP-relative operand and a jcc rel8 are re-aimed") {
  // endbr64; cmp byte [rip+0x100], 0; je +0x10; mov eax, 3; ret
  std::vector<uint8_t> f{0xf3, 0x0f, 0x1e, 0xfa, 0x80, 0x3d, 0x00, 0x01, 0x00, 0x00, 0x00,
                         0x74, 0x10, 0xb8, 0x03, 0x00, 0x00, 0x00, 0xc3};
  f.resize(64, 0x90);
  const uint64_t entry = 0x400000, slot = 0x400000 + (1u << 20);
  const Prologue p = ok(relocate_prologue(entry, f, slot));
  CHECK(p.patch == entry + 4);
  CHECK(p.length == 7);  // the cmp alone is 7 bytes
  REQUIRE(p.code.size() == 7 + 5);
  int32_t disp;
  std::memcpy(&disp, p.code.data() + 2, 4);
  CHECK(slot + 7 + disp == entry + 11 + 0x100);  // the same byte as the original reads

  // Now make the jcc part of the displaced bytes: a 4-byte cmp.  cmp byte [rdi], 0 ; je
  std::vector<uint8_t> g{0x80, 0x3f, 0x00, 0x74, 0x10, 0x90, 0x90, 0xc3};
  g.resize(64, 0x90);
  const Prologue q = ok(relocate_prologue(entry, g, slot));
  CHECK(q.length == 5);
  REQUIRE(q.code.size() == 3 + 6 + 5);
  CHECK(q.code[3] == 0x0f);
  CHECK(q.code[4] == 0x84);  // je rel32
  int32_t rel;
  std::memcpy(&rel, q.code.data() + 5, 4);
  CHECK(slot + 9 + rel == entry + 5 + 0x10);
}

TEST_CASE("prologue: a displaced jmp ends the copy; syscall is copied as is") {
  // mov edx, 1; jmp rel32 (+0x100)       (glibc's fopen)
  std::vector<uint8_t> f{0xba, 0x01, 0x00, 0x00, 0x00, 0xe9, 0x00, 0x01, 0x00, 0x00};
  f.resize(32, 0xcc);
  const uint64_t entry = 0x400000, slot = 0x410000;
  const Prologue p = ok(relocate_prologue(entry, f, slot));
  CHECK(p.length == 5);
  CHECK(p.code.size() == 5 + 5);  // the mov, then the jump back to the jmp

  // endbr64; jmp rel32   (libstdc++'s operator delete): the copy is the jmp, re-aimed
  std::vector<uint8_t> g{0xf3, 0x0f, 0x1e, 0xfa, 0xe9, 0x00, 0x01, 0x00, 0x00, 0xcc};
  const Prologue q = ok(relocate_prologue(entry, g, slot));
  CHECK(q.length == 5);
  REQUIRE(q.code.size() == 5);
  int32_t rel;
  std::memcpy(&rel, q.code.data() + 1, 4);
  CHECK(slot + 5 + rel == entry + 9 + 0x100);

  // mov eax, 0x29; syscall; ret              (glibc's socket)
  std::vector<uint8_t> s{0xb8, 0x29, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3};
  const Prologue r = ok(relocate_prologue(entry, s, slot));
  CHECK(r.length == 5);  // the mov is enough
  // xor esi,esi; syscall; cmp rax,-4095; ret
  std::vector<uint8_t> s2{0x31, 0xf6, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0xc3};
  const Prologue r2 = ok(relocate_prologue(entry, s2, slot));
  CHECK(r2.length == 10);
  CHECK(r2.code[2] == 0x0f);
  CHECK(r2.code[3] == 0x05);
}

// sub $8,%rsp; call callee; add $8,%rsp; ret -- the callee returns its return address.
extern "C" uint64_t ptmem_test_caller();
__asm__(".text\n"
        "ptmem_test_caller:\n  sub $8, %rsp\n  call ptmem_test_callee\n  add $8, %rsp\n  ret\n"
        "ptmem_test_callee:\n  mov (%rsp), %rax\n  ret\n");

TEST_CASE("prologue: a displaced call returns to the original code after it") {
  const uint64_t entry = 0x400000, slot = 0x410000;
  std::vector<uint8_t> f{0x48, 0x83, 0xec, 0x08, 0xe8, 0x00, 0x01, 0x00, 0x00, 0x48, 0x83, 0xc4, 0x08, 0xc3};
  const Prologue p = ok(relocate_prologue(entry, f, slot));
  CHECK(p.length == 9);  // the sub and the call
  // sub; push rax; movabs $entry+9, rax; xchg rax,(rsp); jmp target -- nothing after it.
  REQUIRE(p.code.size() == 4 + 1 + 10 + 4 + 5);
  uint64_t ret;
  std::memcpy(&ret, p.code.data() + 7, 8);
  CHECK(ret == entry + 9);
  int32_t rel;
  std::memcpy(&rel, p.code.data() + 20, 4);
  CHECK(slot + p.code.size() + rel == entry + 9 + 0x100);

  // And run: the callee sees the original return address, the caller finishes there.
  const auto fn = reinterpret_cast<uint64_t>(&ptmem_test_caller);
  NearPage page(fn);
  auto* copy = relocated(&ptmem_test_caller, page, 0);
  CHECK(copy() == fn + 9);
  CHECK(ptmem_test_caller() == fn + 9);
}

TEST_CASE("prologue: refusals say why") {
  const uint64_t entry = 0x400000, slot = 0x410000;
  // An indirect call: where it goes is only known when it runs.
  std::vector<uint8_t> call{0xff, 0xd0, 0x90, 0x90, 0x90, 0xc3};
  CHECK(refused(relocate_prologue(entry, call, slot)).find("cannot be relocated") != std::string::npos);
  // ret before 5 bytes: the function is too short to hold the jump.
  std::vector<uint8_t> tiny{0x31, 0xc0, 0xc3};
  CHECK_FALSE(refused(relocate_prologue(entry, tiny, slot)).empty());
  // A loop back to entry+2, which the jump overwrites.
  // xor eax,eax; inc eax; cmp eax,10; jne -7 (to +2); ret
  std::vector<uint8_t> loop{0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8, 0x0a, 0x75, 0xf9, 0xc3};
  CHECK(refused(relocate_prologue(entry, loop, slot)).find("branches into") != std::string::npos);
  // A RIP-relative operand out of reach of a slot 3 GiB away.
  std::vector<uint8_t> far{0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, 0xc3};
  CHECK(refused(relocate_prologue(entry, far, entry + (3ull << 30))).find("reach") != std::string::npos);
  // A jump back out of reach.
  std::vector<uint8_t> plain{0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb, 0xc3};
  CHECK_FALSE(refused(relocate_prologue(entry, plain, entry + (3ull << 30))).empty());
}

TEST_CASE("prologue: the copies of the real allocator and fd entries run correctly") {
  NearPage page(reinterpret_cast<uint64_t>(reinterpret_cast<void*>(&malloc)));
  auto* my_malloc = relocated(&malloc, page, 0);
  auto* my_free = relocated(&free, page, 128);
  auto* my_calloc = relocated(&calloc, page, 256);
  auto* my_realloc = relocated(&realloc, page, 384);
  auto* my_close = relocated(&close, page, 512);
  auto* my_socket = relocated(&socket, page, 640);
  auto* my_pipe = relocated(&pipe, page, 768);
  auto* my_fopen = relocated(&fopen, page, 896);
  auto* my_fclose = relocated(&fclose, page, 1024);

  auto* a = static_cast<char*>(my_malloc(40));
  REQUIRE(a);
  std::memset(a, 'x', 40);
  auto* b = static_cast<char*>(my_calloc(10, 8));
  REQUIRE(b);
  for (int i = 0; i < 80; ++i) CHECK(b[i] == 0);
  a = static_cast<char*>(my_realloc(a, 4000));
  REQUIRE(a);
  CHECK(a[39] == 'x');
  my_free(a);
  my_free(b);
  my_free(nullptr);

  int fds[2];
  REQUIRE(my_pipe(fds) == 0);
  CHECK(my_close(fds[0]) == 0);
  CHECK(fcntl(fds[0], F_GETFD) == -1);
  CHECK(my_close(fds[1]) == 0);
  CHECK(my_close(fds[1]) == -1);
  CHECK(errno == EBADF);
  int s = my_socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  CHECK(close(s) == 0);
  FILE* f = my_fopen("/proc/self/stat", "r");
  REQUIRE(f);
  CHECK(fgetc(f) != EOF);
  CHECK(my_fclose(f) == 0);
}
