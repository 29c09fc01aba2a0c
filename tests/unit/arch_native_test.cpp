// emulate() and build_displaced() against the real CPU.  A forked child stops itself
// under PTRACE_TRACEME; both processes share a layout of pages mapped before the fork
// (code, data, stack, displaced slots near and far), so addresses are identical.  For every
// instruction form and many register/memory/flag inputs the child single-steps the
// instruction natively, and the result must equal what the emulator computes from the same
// inputs, or what the displaced copy produces when run to the int3 at its jump target.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ptmem/arch/step_over.hpp"

using namespace ptmem::arch;
using Kind = StepPlan::Kind;

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kRF = 1ull << 16;

/// Pages at fixed distances inside one 3 GiB reservation: the near slot is within rel32
/// reach of the code, the far slot 2.5 GiB away is not (absolute jump back), and far_data
/// (1 GiB from the code, 1.5 GiB from the far slot) is reachable RIP-relative from all
/// three code locations.  |data| right after the code is not reachable from the far slot.
struct Layout {
  static constexpr size_t kReserve = 3 * kGiB;
  static constexpr size_t kStackSize = 2 * kPage;
  uint64_t base = 0, code = 0, data = 0, stack = 0, near_slot = 0, far_data = 0, far_slot = 0;
  bool ok = false;

  Layout() {
    void* r = mmap(nullptr, kReserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (r == MAP_FAILED) return;
    base = reinterpret_cast<uint64_t>(r);
    code = base;
    data = base + kPage;
    stack = base + 2 * kPage;
    near_slot = base + 0x100000;
    far_data = base + kGiB;
    far_slot = base + 2 * kGiB + kGiB / 2;
    const int rwx = PROT_READ | PROT_WRITE | PROT_EXEC, rw = PROT_READ | PROT_WRITE;
    ok = map(code, kPage, rwx) && map(data, kPage, rw) && map(stack, kStackSize, rw) &&
         map(near_slot, kPage, rwx) && map(far_data, kPage, rw) && map(far_slot, kPage, rwx);
  }
  ~Layout() {
    if (base) munmap(reinterpret_cast<void*>(base), kReserve);
  }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;

 private:
  static bool map(uint64_t at, size_t len, int prot) {
    return mmap(reinterpret_cast<void*>(at), len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                -1, 0) == reinterpret_cast<void*>(at);
  }
};

/// A forked child stopped under PTRACE_TRACEME; SIGKILLed and reaped by pid on destruction,
/// whatever the test's outcome.
class Tracee {
 public:
  Tracee() {
    pid_ = fork();
    if (pid_ == 0) {
      ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
      raise(SIGSTOP);
      _exit(0);  // never reached while traced: the tracer moves rip elsewhere
    }
    if (pid_ < 0) return;
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_ || !WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP)
      return;
    ok_ = ptrace(PTRACE_GETREGS, pid_, nullptr, &initial_) == 0;
  }
  ~Tracee() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;

  bool ok() const { return ok_; }
  /// Registers at the first stop: valid segment selectors and fs_base to start from.
  const user_regs_struct& initial() const { return initial_; }

  bool write(uint64_t addr, const void* buf, size_t len) {
    iovec local{const_cast<void*>(buf), len}, remote{reinterpret_cast<void*>(addr), len};
    return process_vm_writev(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
  }
  bool read(uint64_t addr, void* buf, size_t len) {
    iovec local{buf, len}, remote{reinterpret_cast<void*>(addr), len};
    return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
  }

  /// Loads |regs|, resumes with |request| (PTRACE_SINGLESTEP or PTRACE_CONT) suppressing
  /// any pending signal, waits for the next stop and reads the registers back.  Returns the
  /// stop signal, or -1 if the child is gone or a ptrace call failed.
  int resume(int request, user_regs_struct& regs) {
    if (ptrace(PTRACE_SETREGS, pid_, nullptr, &regs) != 0) return -1;
    if (ptrace(static_cast<__ptrace_request>(request), pid_, nullptr, nullptr) != 0) return -1;
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_ || !WIFSTOPPED(status)) {
      pid_ = -1;  // reaped (or lost): nothing left to kill
      return -1;
    }
    if (ptrace(PTRACE_GETREGS, pid_, nullptr, &regs) != 0) return -1;
    return WSTOPSIG(status);
  }

 private:
  pid_t pid_ = -1;
  bool ok_ = false;
  user_regs_struct initial_{};
};

/// Registers plus the contents of every data page an instruction may touch.
struct State {
  user_regs_struct regs{};
  std::vector<uint8_t> data, stack, far_data;
};

/// The emulator's view of the child's memory: the same pages, held locally.
class MirrorMemory final : public MemoryAccess {
 public:
  MirrorMemory(const Layout& l, State& s)
      : regions_{{l.data, &s.data}, {l.stack, &s.stack}, {l.far_data, &s.far_data}} {}
  bool read(uint64_t addr, void* buf, size_t len) override {
    std::vector<uint8_t>* r = find(addr, len);
    if (!r) return false;
    std::memcpy(buf, r->data() + (addr - base_of(r)), len);
    return true;
  }
  bool write(uint64_t addr, const void* buf, size_t len) override {
    std::vector<uint8_t>* r = find(addr, len);
    if (!r) return false;
    std::memcpy(r->data() + (addr - base_of(r)), buf, len);
    return true;
  }

 private:
  struct Region {
    uint64_t addr;
    std::vector<uint8_t>* bytes;
  };
  std::vector<uint8_t>* find(uint64_t addr, size_t len) {
    for (Region& r : regions_)
      if (addr >= r.addr && len <= r.bytes->size() && addr - r.addr <= r.bytes->size() - len)
        return r.bytes;
    return nullptr;
  }
  uint64_t base_of(const std::vector<uint8_t>* v) const {
    for (const Region& r : regions_)
      if (r.bytes == v) return r.addr;
    return 0;
  }
  Region regions_[3];
};

bool load(Tracee& t, const Layout& l, const State& s) {
  return t.write(l.data, s.data.data(), s.data.size()) &&
         t.write(l.stack, s.stack.data(), s.stack.size()) &&
         t.write(l.far_data, s.far_data.data(), s.far_data.size());
}

bool capture(Tracee& t, const Layout& l, State& s) {
  s.data.resize(kPage);
  s.stack.resize(Layout::kStackSize);
  s.far_data.resize(kPage);
  return t.read(l.data, s.data.data(), s.data.size()) &&
         t.read(l.stack, s.stack.data(), s.stack.size()) &&
         t.read(l.far_data, s.far_data.data(), s.far_data.size());
}

unsigned long long user_regs_struct::*const kGprs[] = {
    &user_regs_struct::rax, &user_regs_struct::rcx, &user_regs_struct::rdx,
    &user_regs_struct::rbx, &user_regs_struct::rsp, &user_regs_struct::rbp,
    &user_regs_struct::rsi, &user_regs_struct::rdi, &user_regs_struct::r8,
    &user_regs_struct::r9,  &user_regs_struct::r10, &user_regs_struct::r11,
    &user_regs_struct::r12, &user_regs_struct::r13, &user_regs_struct::r14,
    &user_regs_struct::r15, &user_regs_struct::rip};
const char* const kGprNames[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8",
                                 "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip"};

/// Values that exercise carries, sign changes and overflow at every operand width.
uint64_t interesting(std::mt19937_64& rng) {
  static constexpr uint64_t kEdges[] = {
      0, 1, ~0ull, 0x0f, 0x10, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
      0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0x7fffffffffffffff, 0x8000000000000000,
      0xffffffff80000000, 0x00000000ffffff80};
  switch (rng() % 3) {
    case 0: return kEdges[rng() % std::size(kEdges)];
    case 1: return rng() & 0xff;  // small values make ZF/PF/AF cases likely
    default: return rng();
  }
}

struct Form;
using Fix = std::function<void(const Form&, const Layout&, State&, std::mt19937_64&)>;

struct Form {
  std::vector<uint8_t> bytes;
  int disp_at = -1;       ///< offset of a RIP-relative disp32 to aim at |target| + |offset|
  bool far = true;        ///< RIP-relative target: far_data (else data, next to the code)
  uint64_t offset = 0x40;
  Fix fix;                ///< adjusts inputs the instruction needs to be meaningful

  /// The encoded instruction for code placed at |l.code|.
  std::vector<uint8_t> encode(const Layout& l) const {
    std::vector<uint8_t> b = bytes;
    if (disp_at >= 0) {
      const uint64_t target = (far ? l.far_data : l.data) + offset;
      const int32_t disp = static_cast<int32_t>(target - (l.code + b.size()));
      std::memcpy(b.data() + disp_at, &disp, 4);
    }
    return b;
  }
  uint64_t target(const Layout& l) const { return (far ? l.far_data : l.data) + offset; }
};

State random_state(const Form& f, const Layout& l, const user_regs_struct& initial,
                   std::mt19937_64& rng) {
  State s;
  s.regs = initial;
  for (size_t i = 0; i < 16; ++i) s.regs.*kGprs[i] = interesting(rng);
  if (rng() % 3 == 0) {  // equal operands: cmp/sub give ZF, xor/sub give 0
    const uint64_t v = s.regs.*kGprs[rng() % 16];
    for (int k = 0; k < 4; ++k) s.regs.*kGprs[rng() % 16] = v;
  }
  s.regs.rsp = l.stack + kPage + (rng() % 64) * 8;
  s.regs.rip = l.code;
  s.regs.eflags = 0x202 | (rng() & (rflags::kStatus));
  s.regs.orig_rax = ~0ull;  // no syscall restart games on resume
  auto fill = [&](std::vector<uint8_t>& v, size_t n) {
    v.resize(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
  };
  fill(s.data, kPage);
  fill(s.stack, Layout::kStackSize);
  fill(s.far_data, kPage);
  // The RIP-relative operand gets an interesting value too.
  const uint64_t v = interesting(rng);
  std::vector<uint8_t>& page = f.far ? s.far_data : s.data;
  std::memcpy(page.data() + f.offset, &v, std::min<size_t>(8, page.size() - f.offset));
  if (f.fix) f.fix(f, l, s, rng);
  return s;
}

// Fixers: branch targets and popped words must be canonical, mapped addresses.
void rax_is_code(const Form&, const Layout& l, State& s, std::mt19937_64&) {
  s.regs.rax = l.code + 0x80;
}
void stack_top_is_code(const Form&, const Layout& l, State& s, std::mt19937_64& rng) {
  const uint64_t ret = l.code + 0x80 + (rng() % 16);
  std::memcpy(s.stack.data() + (s.regs.rsp - l.stack), &ret, 8);
}
void operand_is_code(const Form& f, const Layout& l, State& s, std::mt19937_64&) {
  const uint64_t to = l.code + 0xc0;
  std::memcpy((f.far ? s.far_data : s.data).data() + f.offset, &to, 8);
}
void small_rcx(const Form&, const Layout&, State& s, std::mt19937_64& rng) {
  static constexpr uint64_t kCounts[] = {0, 1, 2, 0x100000000, 0xffffffff00000000};
  s.regs.rcx = kCounts[rng() % std::size(kCounts)];
}
void rdi_is_far_data(const Form&, const Layout& l, State& s, std::mt19937_64& rng) {
  s.regs.rdi = l.far_data + (rng() % 256);
}
void lea_bases(const Form&, const Layout&, State& s, std::mt19937_64& rng) {
  if (rng() % 2) s.regs.rsi = rng() % 1000;  // and sometimes large: lea wraps mod 2^64
}

Form riprel(std::vector<uint8_t> bytes, int disp_at, Fix fix = nullptr, uint64_t offset = 0x40) {
  return Form{std::move(bytes), disp_at, true, offset, std::move(fix)};
}
Form plain(std::vector<uint8_t> bytes, Fix fix = nullptr) {
  return Form{std::move(bytes), -1, true, 0x40, std::move(fix)};
}

/// Every form the emulator claims, in the encodings glibc and compilers use.
std::vector<Form> emulated_forms() {
  std::vector<Form> f = {
      // push / pop
      plain({0x41, 0x54}), plain({0x41, 0x55}), plain({0x41, 0x57}), plain({0x55}),
      plain({0x53}), plain({0x54}), plain({0x41, 0x50}), plain({0x6a, 0x80}),
      plain({0x68, 0x78, 0x56, 0x34, 0x92}), plain({0x5b}), plain({0x41, 0x5c}), plain({0x5c}),
      // mov reg, reg at every width (32-bit zero-extends, 8/16-bit merge)
      plain({0x49, 0x89, 0xca}), plain({0x41, 0x89, 0xd2}), plain({0x48, 0x89, 0xf0}),
      plain({0x4c, 0x89, 0xc8}), plain({0x89, 0xc8}), plain({0x66, 0x89, 0xc8}),
      plain({0x88, 0xe0}), plain({0x88, 0xc4}), plain({0x40, 0x88, 0xfe}),
      plain({0x45, 0x88, 0xc1}), plain({0x48, 0x89, 0xe5}),
      // mov imm, reg
      plain({0xba, 0x01, 0x00, 0x00, 0x00}), plain({0xb8, 0x29, 0x00, 0x00, 0x00}),
      plain({0x41, 0xba, 0xff, 0xff, 0xff, 0xff}), plain({0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff}),
      plain({0x49, 0xc7, 0xc3, 0x00, 0x00, 0x00, 0x80}),
      plain({0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}),
      plain({0x49, 0xbf, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80}),
      plain({0xb0, 0xff}), plain({0xb4, 0x12}), plain({0x66, 0xb8, 0xff, 0xff}),
      plain({0x41, 0xb0, 0x80}), plain({0xc6, 0xc1, 0x7f}),
      // xor / and / or
      plain({0x31, 0xf6}), plain({0x31, 0xc0}), plain({0x48, 0x31, 0xca}),
      plain({0x45, 0x31, 0xc0}), plain({0x30, 0xd8}), plain({0x66, 0x31, 0xd1}),
      plain({0x48, 0x83, 0xe4, 0xf0}), plain({0x09, 0xc8}), plain({0x48, 0x21, 0xd0}),
      plain({0x80, 0xf1, 0x80}), plain({0x48, 0x81, 0xf2, 0x00, 0x00, 0x00, 0x80}),
      // test
      plain({0x48, 0x85, 0xff}), plain({0x85, 0xf7}), plain({0xa8, 0x01}),
      plain({0x48, 0xa9, 0xff, 0xff, 0xff, 0x7f}), plain({0x84, 0xd2}), plain({0x84, 0xe4}),
      plain({0xf7, 0xc6, 0x00, 0x00, 0x00, 0x80}), plain({0x66, 0x85, 0xc9}),
      // cmp / add / sub
      plain({0x48, 0x39, 0xc8}), plain({0x39, 0xfe}), plain({0x38, 0xd8}),
      plain({0x48, 0x83, 0xfa, 0x05}), plain({0x3d, 0x00, 0x00, 0x00, 0x80}),
      plain({0x66, 0x83, 0xf8, 0xff}), plain({0x3c, 0x80}), plain({0x4d, 0x39, 0xc8}),
      plain({0x48, 0x83, 0xec, 0x78}), plain({0x48, 0x83, 0xec, 0x58}),
      plain({0x48, 0x81, 0xc4, 0x80, 0x00, 0x00, 0x00}), plain({0x48, 0x01, 0xc8}),
      plain({0x29, 0xd0}), plain({0x04, 0x7f}), plain({0x2c, 0x80}), plain({0x66, 0x01, 0xd8}),
      plain({0x49, 0x29, 0xf9}), plain({0x80, 0xc4, 0x01}),
      // cmp/test with RIP-relative memory (glibc's __libc_single_threaded checks)
      riprel({0x80, 0x3d, 0, 0, 0, 0, 0x00}, 2), riprel({0x80, 0x3d, 0, 0, 0, 0, 0x80}, 2),
      riprel({0x81, 0x3d, 0, 0, 0, 0, 0x78, 0x56, 0x34, 0x12}, 2),
      riprel({0x83, 0x3d, 0, 0, 0, 0, 0x00}, 2), riprel({0x48, 0x83, 0x3d, 0, 0, 0, 0, 0x00}, 3),
      riprel({0x48, 0x81, 0x3d, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x80}, 3),
      riprel({0x48, 0x3b, 0x05, 0, 0, 0, 0}, 3), riprel({0x39, 0x0d, 0, 0, 0, 0}, 2),
      riprel({0xf6, 0x05, 0, 0, 0, 0, 0x01}, 2), riprel({0x66, 0x83, 0x3d, 0, 0, 0, 0, 0x01}, 3),
      riprel({0x80, 0x3d, 0, 0, 0, 0, 0x00}, 2, nullptr, 0xfff),  // last byte of the page
      // lea
      riprel({0x48, 0x8d, 0x05, 0, 0, 0, 0}, 3), riprel({0x4c, 0x8d, 0x3d, 0, 0, 0, 0}, 3),
      riprel({0x8d, 0x05, 0, 0, 0, 0}, 2), plain({0x48, 0x8d, 0x44, 0xb7, 0x08}, lea_bases),
      plain({0x8d, 0x0c, 0x18}), plain({0x48, 0x8d, 0x64, 0x24, 0xf8}),
      plain({0x4a, 0x8d, 0x84, 0x00, 0x00, 0x00, 0x00, 0x80}),
      // nops
      plain({0x90}), plain({0xf3, 0x0f, 0x1e, 0xfa}),
      plain({0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00}),
      plain({0x0f, 0x1f, 0x40, 0x00}), plain({0x66, 0x90}),
      // calls, jumps, returns (targets inside the code page)
      plain({0xe8, 0x40, 0x00, 0x00, 0x00}), plain({0xff, 0xd0}, rax_is_code),
      riprel({0xff, 0x15, 0, 0, 0, 0}, 2, operand_is_code),
      plain({0xeb, 0x10}), plain({0xeb, 0xfe}), plain({0xe9, 0x00, 0x01, 0x00, 0x00}),
      plain({0xff, 0xe0}, rax_is_code), riprel({0xff, 0x25, 0, 0, 0, 0}, 2, operand_is_code),
      plain({0xf2, 0xe9, 0x10, 0x00, 0x00, 0x00}),
      plain({0xc3}, stack_top_is_code), plain({0xf3, 0xc3}, stack_top_is_code),
      plain({0xc2, 0x10, 0x00}, stack_top_is_code),
      plain({0x0f, 0x84, 0x30, 0x00, 0x00, 0x00}), plain({0x0f, 0x8f, 0x30, 0x00, 0x00, 0x00}),
      plain({0xe3, 0x20}, small_rcx), plain({0x67, 0xe3, 0x20}, small_rcx),
      plain({0xe2, 0x20}, small_rcx), plain({0xe1, 0x20}, small_rcx),
      plain({0xe0, 0x20}, small_rcx),
  };
  for (uint8_t cc = 0; cc < 16; ++cc) f.push_back(plain({static_cast<uint8_t>(0x70 + cc), 0x20}));
  return f;
}

/// Forms only displaced stepping handles (plus emulated ones above, when displaceable).
std::vector<Form> displaced_forms() {
  return {
      riprel({0x48, 0x8b, 0x05, 0, 0, 0, 0}, 3),        // mov rax, [rip+d]
      riprel({0x8b, 0x05, 0, 0, 0, 0}, 2),              // mov eax, [rip+d]
      riprel({0x4c, 0x8b, 0x3d, 0, 0, 0, 0}, 3),        // mov r15, [rip+d]
      riprel({0x0f, 0xb6, 0x0d, 0, 0, 0, 0}, 3),        // movzx ecx, byte [rip+d]
      riprel({0x48, 0x01, 0x05, 0, 0, 0, 0}, 3),        // add [rip+d], rax
      riprel({0x69, 0x05, 0, 0, 0, 0, 0x45, 0x23, 0x01, 0x00}, 2),  // imul eax,[rip+d],imm32
      riprel({0xc6, 0x05, 0, 0, 0, 0, 0x5a}, 2),        // mov byte [rip+d], 0x5a
      riprel({0x48, 0x87, 0x05, 0, 0, 0, 0}, 3),        // xchg [rip+d], rax
      riprel({0xf0, 0x48, 0x0f, 0xb1, 0x0d, 0, 0, 0, 0}, 5),  // lock cmpxchg [rip+d], rcx
      plain({0x80, 0x3f, 0x00}, rdi_is_far_data),        // cmp byte [rdi], 0 (opendir)
      plain({0x48, 0xff, 0xc0}),                         // inc rax
      plain({0x48, 0x0f, 0xaf, 0xc1}),                   // imul rax, rcx
      plain({0x48, 0xf7, 0xd8}),                         // neg rax
      plain({0x48, 0x0f, 0xb6, 0xc3}),                   // movzx rax, bl
      plain({0x48, 0x63, 0xc7}),                         // movsxd rax, edi
      plain({0x48, 0x0f, 0x44, 0xc1}),                   // cmove rax, rcx
  };
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
  return b;
}

/// CHECKs that |got| (emulated or displaced) equals |want| (the CPU), registers and the
/// three data pages; |flags| = RFLAGS bits compared.
void compare(const State& want, const State& got, uint64_t flags) {
  for (size_t i = 0; i < std::size(kGprs); ++i) {
    CAPTURE(kGprNames[i]);
    CHECK(hex(got.regs.*kGprs[i]) == hex(want.regs.*kGprs[i]));
  }
  CHECK(hex(got.regs.eflags & flags) == hex(want.regs.eflags & flags));
  CHECK(got.data == want.data);
  CHECK(got.stack == want.stack);
  CHECK(got.far_data == want.far_data);
}

constexpr int kRunsPerForm = 24;

}  // namespace

TEST_CASE("arch: emulate() matches the CPU, single-stepped in a child") {
  Layout layout;
  REQUIRE(layout.ok);
  Tracee child;
  REQUIRE(child.ok());
  StepPlanner planner;
  // int3s everywhere else in the code page: a branch lands on one, never on stray code
  // (single-step stops before it executes anyway).
  std::vector<uint8_t> fill(kPage, 0xcc);
  REQUIRE(child.write(layout.code, fill.data(), fill.size()));

  unsigned form_no = 0, runs = 0;
  for (const Form& form : emulated_forms()) {
    const std::vector<uint8_t> bytes = form.encode(layout);
    const StepPlan plan = planner.plan(layout.code, bytes);
    CAPTURE(plan.text);
    REQUIRE(plan.kind == Kind::Emulate);
    REQUIRE(plan.length == bytes.size());
    REQUIRE(child.write(layout.code, bytes.data(), bytes.size()));
    // Compare every RFLAGS bit except the single-step machinery (TF, RF) and status bits
    // the SDM leaves undefined for this instruction.
    const uint64_t defined = defined_flags(plan);
    const uint64_t undefined = defined ? rflags::kStatus & ~defined : 0;
    const uint64_t flag_mask = ~(rflags::kTF | kRF | undefined);

    std::mt19937_64 rng(0x5eed0000 + form_no++);
    for (int run = 0; run < kRunsPerForm; ++run, ++runs) {
      CAPTURE(run);
      const State input = random_state(form, layout, child.initial(), rng);
      REQUIRE(load(child, layout, input));
      State cpu = input;
      REQUIRE(child.resume(PTRACE_SINGLESTEP, cpu.regs) == SIGTRAP);
      REQUIRE(capture(child, layout, cpu));

      State emu = input;
      MirrorMemory mem(layout, emu);
      Registers regs{emu.regs};
      REQUIRE(emulate(plan, regs, mem));
      emu.regs = regs.raw;
      compare(cpu, emu, flag_mask);
    }
    // The instruction's own bytes back to int3 so the next form starts clean.
    REQUIRE(child.write(layout.code, fill.data(), bytes.size()));
  }
  CHECK(runs == emulated_forms().size() * kRunsPerForm);
}

TEST_CASE("arch: emulate() leaves registers alone when memory access fails") {
  Layout layout;
  REQUIRE(layout.ok);
  StepPlanner planner;
  State s;
  s.data.assign(kPage, 0);
  s.stack.assign(Layout::kStackSize, 0);
  s.far_data.assign(kPage, 0);
  MirrorMemory mem(layout, s);
  s.regs.rsp = layout.code + 8;  // push/call write into the code page: not mirrored, fails
  s.regs.rip = layout.code;
  s.regs.r12 = 42;
  s.regs.eflags = 0x246;
  for (std::vector<uint8_t> b :
       {std::vector<uint8_t>{0x41, 0x54}, {0xe8, 0, 0, 0, 0}, {0x80, 0x3d, 0, 0, 0, 0x10, 0}}) {
    // the last one: cmp byte [rip + 0x10000000] -> unmapped in the mirror
    const StepPlan plan = planner.plan(layout.code, b);
    CAPTURE(plan.text);
    REQUIRE(plan.kind == Kind::Emulate);
    Registers regs{s.regs};
    CHECK_FALSE(emulate(plan, regs, mem));
    CHECK(std::memcmp(&regs.raw, &s.regs, sizeof s.regs) == 0);
  }
  // Non-Emulate plans are refused.
  const uint8_t load_insn[] = {0x48, 0x8b, 0x05, 0x10, 0, 0, 0};
  const StepPlan displaced = planner.plan(layout.code, load_insn);
  REQUIRE(displaced.kind == Kind::Displaced);
  Registers regs{s.regs};
  CHECK_FALSE(emulate(displaced, regs, mem));
  CHECK(regs.raw.rip == layout.code);
}

TEST_CASE("arch: displaced copies match the CPU, near (jmp rel32) and far (jmp *0(%rip))") {
  Layout layout;
  REQUIRE(layout.ok);
  Tracee child;
  REQUIRE(child.ok());
  StepPlanner planner;
  std::vector<uint8_t> fill(kPage, 0xcc);
  REQUIRE(child.write(layout.code, fill.data(), fill.size()));
  REQUIRE(child.write(layout.near_slot, fill.data(), fill.size()));
  REQUIRE(child.write(layout.far_slot, fill.data(), fill.size()));

  std::vector<Form> forms = displaced_forms();
  for (const Form& f : emulated_forms()) forms.push_back(f);  // displaceable ones count too

  unsigned form_no = 0, displaced_plans = 0, displaceable = 0, near_runs = 0, far_runs = 0;
  for (const Form& form : forms) {
    const std::vector<uint8_t> bytes = form.encode(layout);
    const StepPlan plan = planner.plan(layout.code, bytes);
    CAPTURE(plan.text);
    REQUIRE(plan.length == bytes.size());
    if (form_no < displaced_forms().size()) {
      CHECK(plan.kind == Kind::Displaced);
      ++displaced_plans;
    }
    ++form_no;
    if (!plan.displaceable) continue;
    ++displaceable;
    // The original followed by the int3 that ends the displaced run at its jump target.
    REQUIRE(child.write(layout.code, bytes.data(), bytes.size()));
    const uint64_t back = layout.code + bytes.size();

    for (const uint64_t slot : {layout.near_slot, layout.far_slot}) {
      const bool far = slot == layout.far_slot;
      CAPTURE(far);
      auto code = build_displaced(plan, slot);
      REQUIRE(code);
      // Short form: insn + e9 rel32.  Far form: insn + ff 25 00000000 + absolute address.
      REQUIRE(code->size() == bytes.size() + (far ? 14 : 5));
      CHECK((*code)[bytes.size()] == (far ? 0xff : 0xe9));
      REQUIRE(code->size() <= kMaxDisplacedSize);
      REQUIRE(child.write(slot, code->data(), code->size()));

      std::mt19937_64 rng(0xd15b0000 + form_no);
      for (int run = 0; run < kRunsPerForm / 2; ++run) {
        CAPTURE(run);
        const State input = random_state(form, layout, child.initial(), rng);
        REQUIRE(load(child, layout, input));
        State cpu = input;
        REQUIRE(child.resume(PTRACE_SINGLESTEP, cpu.regs) == SIGTRAP);
        REQUIRE(capture(child, layout, cpu));

        REQUIRE(load(child, layout, input));
        State moved = input;
        moved.regs.rip = slot;
        REQUIRE(child.resume(PTRACE_CONT, moved.regs) == SIGTRAP);
        // Stopped by the int3 at the jump target: rip is one past it.
        REQUIRE(hex(moved.regs.rip) == hex(back + 1));
        moved.regs.rip = back;
        REQUIRE(capture(child, layout, moved));
        // Same CPU both times: every flag must agree, undefined ones included.
        compare(cpu, moved, ~(rflags::kTF | kRF));
        (far ? far_runs : near_runs)++;
      }
      REQUIRE(child.write(slot, fill.data(), code->size()));
    }
    REQUIRE(child.write(layout.code, fill.data(), bytes.size()));
  }
  CHECK(displaced_plans == displaced_forms().size());
  CHECK(near_runs == displaceable * (kRunsPerForm / 2));
  CHECK(far_runs == near_runs);
  // 16 displaced-only forms + 95 emulated ones: all but the 36 branches/calls/returns.
  CHECK(displaceable == 111);
}

TEST_CASE("arch: RIP-relative operand out of rel32 reach from the slot -> no displaced code") {
  Layout layout;
  REQUIRE(layout.ok);
  StepPlanner planner;
  // mov rax, [rip+d] aimed at |data| (next to the code): 2.5 GiB from the far slot.
  Form f = riprel({0x48, 0x8b, 0x05, 0, 0, 0, 0}, 3);
  f.far = false;
  const std::vector<uint8_t> bytes = f.encode(layout);
  const StepPlan plan = planner.plan(layout.code, bytes);
  REQUIRE(plan.kind == Kind::Displaced);
  CHECK(build_displaced(plan, layout.near_slot));
  CHECK_FALSE(build_displaced(plan, layout.far_slot));
}
