// StepPlanner decisions: known encodings, and the real entry instructions of every
// function ptmem hooks in this system's glibc and ld.so.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <capstone/capstone.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ptmem/arch/step_over.hpp"

using ptmem::arch::build_displaced;
using ptmem::arch::StepPlan;
using ptmem::arch::StepPlanner;
using Kind = StepPlan::Kind;

namespace {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Emulate: return "Emulate";
    case Kind::Displaced: return "Displaced";
    case Kind::Unsupported: return "Unsupported";
  }
  return "?";
}

struct Known {
  std::vector<uint8_t> bytes;
  Kind kind;
  unsigned length;
  const char* text;
};

/// An ELF file's defined function symbols and the code bytes at their start, read with
/// libelf and checked against the file's PT_LOAD segments.
class ElfCode {
 public:
  explicit ElfCode(const std::string& path) {
    elf_version(EV_CURRENT);
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return;
    elf_ = elf_begin(fd_, ELF_C_READ_MMAP, nullptr);
    if (!elf_ || elf_kind(elf_) != ELF_K_ELF) return;
    size_t raw_size = 0;
    raw_ = reinterpret_cast<const uint8_t*>(elf_rawfile(elf_, &raw_size));
    size_ = raw_size;
    read_symbols();
  }
  ~ElfCode() {
    if (elf_) elf_end(elf_);
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return raw_ != nullptr && !symbols_.empty(); }
  /// name (without version) -> st_value, first definition wins; only STT_FUNC/IFUNC.
  const std::map<std::string, uint64_t>& symbols() const { return symbols_; }

  /// Up to 16 bytes at virtual address |vaddr|, from the PT_LOAD segment holding it.
  std::vector<uint8_t> code_at(uint64_t vaddr) const {
    size_t phnum = 0;
    if (elf_getphdrnum(elf_, &phnum) != 0) return {};
    for (size_t i = 0; i < phnum; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf_, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
      if (vaddr < ph.p_vaddr || vaddr >= ph.p_vaddr + ph.p_filesz) continue;
      const uint64_t off = ph.p_offset + (vaddr - ph.p_vaddr);
      const uint64_t seg_end = ph.p_offset + ph.p_filesz;
      if (off >= size_ || seg_end > size_) return {};
      const uint64_t n = std::min<uint64_t>(16, seg_end - off);
      return std::vector<uint8_t>(raw_ + off, raw_ + off + n);
    }
    return {};
  }

 private:
  void read_symbols() {
    for (Elf_Scn* scn = elf_nextscn(elf_, nullptr); scn; scn = elf_nextscn(elf_, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB) ||
          sh.sh_entsize == 0)
        continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      const size_t count = sh.sh_size / sh.sh_entsize;
      for (size_t i = 0; i < count; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
        const int type = GELF_ST_TYPE(sym.st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
            sym.st_value == 0)
          continue;
        const char* name = elf_strptr(elf_, sh.sh_link, sym.st_name);
        if (name && *name) symbols_.emplace(name, sym.st_value);
      }
    }
  }

  int fd_ = -1;
  Elf* elf_ = nullptr;
  const uint8_t* raw_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, uint64_t> symbols_;
};

}  // namespace

TEST_CASE("arch: known encodings plan to the expected kind, length and text") {
  // Addresses matter for RIP-relative text and branch targets: all planned at 0x401000.
  const std::vector<Known> cases = {
      // glibc 2.36 entries
      {{0x41, 0x54}, Kind::Emulate, 2, "push r12"},
      {{0x41, 0x55}, Kind::Emulate, 2, "push r13"},
      {{0x41, 0x57}, Kind::Emulate, 2, "push r15"},
      {{0x55}, Kind::Emulate, 1, "push rbp"},
      {{0x48, 0x85, 0xff}, Kind::Emulate, 3, "test rdi, rdi"},
      {{0xba, 0x01, 0x00, 0x00, 0x00}, Kind::Emulate, 5, "mov edx, 1"},
      {{0xb8, 0x29, 0x00, 0x00, 0x00}, Kind::Emulate, 5, "mov eax, 0x29"},
      {{0x31, 0xf6}, Kind::Emulate, 2, "xor esi, esi"},
      {{0x49, 0x89, 0xca}, Kind::Emulate, 3, "mov r10, rcx"},
      {{0x41, 0x89, 0xd2}, Kind::Emulate, 3, "mov r10d, edx"},
      {{0x80, 0x3d, 0xf1, 0x2b, 0x0e, 0x00, 0x00}, Kind::Emulate, 7,
       "cmp byte ptr [rip + 0xe2bf1], 0"},
      {{0x48, 0x83, 0xec, 0x78}, Kind::Emulate, 4, "sub rsp, 0x78"},
      {{0x48, 0x89, 0xf0}, Kind::Emulate, 3, "mov rax, rsi"},
      {{0xc3}, Kind::Emulate, 1, "ret"},  // _dl_debug_state
      {{0x80, 0x3f, 0x00}, Kind::Displaced, 3, "cmp byte ptr [rdi], 0"},  // opendir
      // other emulated forms
      {{0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, Kind::Emulate, 10,
       "movabs rax, 0x1122334455667788"},
      {{0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff}, Kind::Emulate, 7, "mov rax, -1"},
      {{0x48, 0x81, 0x3d, 0x10, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12}, Kind::Emulate, 11,
       "cmp qword ptr [rip + 0x10], 0x12345678"},
      {{0x48, 0x39, 0xc8}, Kind::Emulate, 3, "cmp rax, rcx"},
      {{0x48, 0x8d, 0x05, 0x10, 0x00, 0x00, 0x00}, Kind::Emulate, 7, "lea rax, [rip + 0x10]"},
      {{0x90}, Kind::Emulate, 1, "nop"},
      {{0xf3, 0x0f, 0x1e, 0xfa}, Kind::Emulate, 4, "endbr64"},
      {{0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00}, Kind::Emulate, 10,
       "nop word ptr cs:[rax + rax]"},
      {{0xe8, 0x10, 0x00, 0x00, 0x00}, Kind::Emulate, 5, "call 0x401015"},
      {{0xeb, 0xfe}, Kind::Emulate, 2, "jmp 0x401000"},
      {{0xe9, 0x00, 0x01, 0x00, 0x00}, Kind::Emulate, 5, "jmp 0x401105"},
      {{0xff, 0x25, 0x10, 0x00, 0x00, 0x00}, Kind::Emulate, 6, "jmp qword ptr [rip + 0x10]"},
      {{0x74, 0x10}, Kind::Emulate, 2, "je 0x401012"},
      {{0xe3, 0x10}, Kind::Emulate, 2, "jrcxz 0x401012"},
      // displaced
      {{0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00}, Kind::Displaced, 7,
       "mov rax, qword ptr [rip + 0x10]"},
      {{0x48, 0x01, 0x05, 0x10, 0x00, 0x00, 0x00}, Kind::Displaced, 7,
       "add qword ptr [rip + 0x10], rax"},
      {{0x48, 0xff, 0xc0}, Kind::Displaced, 3, "inc rax"},
      {{0x48, 0x0f, 0xaf, 0xc1}, Kind::Displaced, 4, "imul rax, rcx"},
      {{0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00}, Kind::Displaced, 9,
       "mov rax, qword ptr fs:[0x28]"},
      {{0xc5, 0xfd, 0x6f, 0x05, 0x10, 0x00, 0x00, 0x00}, Kind::Displaced, 8,
       "vmovdqa ymm0, ymmword ptr [rip + 0x10]"},
      {{0xf0, 0x48, 0x0f, 0xb1, 0x0d, 0x10, 0x00, 0x00, 0x00}, Kind::Displaced, 9,
       "lock cmpxchg qword ptr [rip + 0x10], rcx"},
      // neither
      {{0x0f, 0x05}, Kind::Unsupported, 2, "syscall"},
      {{0xcc}, Kind::Unsupported, 1, "int3"},
      {{0x0f, 0x0b}, Kind::Unsupported, 2, "ud2"},
      {{0xff, 0x20}, Kind::Emulate, 2, "jmp qword ptr [rax]"},
      {{0x64, 0xff, 0x20}, Kind::Unsupported, 3, "jmp qword ptr fs:[rax]"},
      {{0x06}, Kind::Unsupported, 0, "(bad)"},  // push es: invalid in 64-bit mode
  };
  StepPlanner planner;
  for (const Known& k : cases) {
    const StepPlan p = planner.plan(0x401000, k.bytes);
    CAPTURE(k.text);
    CHECK(p.text == k.text);
    CHECK(kind_name(p.kind) == std::string(kind_name(k.kind)));
    CHECK(p.length == k.length);
    CHECK(p.address == 0x401000);
    if (p.kind == Kind::Displaced) CHECK(p.displaceable);
  }
}

TEST_CASE("arch: truncated and empty input is Unsupported, not a crash") {
  StepPlanner planner;
  const uint8_t movabs[] = {0x48, 0xb8, 0x88, 0x77, 0x66};  // 10-byte insn cut at 5
  CHECK(planner.plan(0x1000, movabs).kind == Kind::Unsupported);
  CHECK(planner.plan(0x1000, std::span<const uint8_t>()).kind == Kind::Unsupported);
  // Only the first instruction matters; trailing bytes are ignored.
  const uint8_t two[] = {0x55, 0x48, 0x89, 0xe5};
  const StepPlan p = planner.plan(0x1000, two);
  CHECK(p.kind == Kind::Emulate);
  CHECK(p.length == 1);
}

TEST_CASE("arch: displaced code layout, near and far jump back, RIP-relative range") {
  StepPlanner planner;
  const uint64_t at = 0x7f0000001000;
  // mov rax, [rip + 0x10]: target = at + 7 + 0x10
  const uint8_t load[] = {0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00};
  const StepPlan p = planner.plan(at, load);
  REQUIRE(p.kind == Kind::Displaced);

  const uint64_t slot = at + 0x100000;
  auto near = build_displaced(p, slot);
  REQUIRE(near);
  // disp32 = (at + 0x17) - (slot + 7) = -0xffff0; jmp rel32 = (at + 7) - (slot + 12).
  const std::vector<uint8_t> want_near = {0x48, 0x8b, 0x05, 0x10, 0x00, 0xf0, 0xff,
                                          0xe9, 0xfb, 0xff, 0xef, 0xff};
  CHECK(*near == want_near);

  // 3 GiB away: the data is out of rel32 reach -> nullopt.
  CHECK_FALSE(build_displaced(p, at + (3ull << 30)));

  // A non-RIP-relative instruction far away: absolute jump back.
  const uint8_t inc[] = {0x48, 0xff, 0xc0};
  const StepPlan q = planner.plan(at, inc);
  REQUIRE(q.kind == Kind::Displaced);
  auto far = build_displaced(q, at + (3ull << 30));
  REQUIRE(far);
  const std::vector<uint8_t> want_far = {0x48, 0xff, 0xc0, 0xff, 0x25, 0x00, 0x00, 0x00, 0x00,
                                         0x03, 0x10, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00};
  CHECK(*far == want_far);

  // The largest instruction (15 bytes) plus the far jump still fits the slot.
  const uint8_t longest[] = {0x64, 0x66, 0x67, 0x2e, 0x48, 0xc7, 0x84, 0x80,
                             0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  const StepPlan l = planner.plan(at, longest);
  if (l.displaceable) {
    auto code = build_displaced(l, at + (3ull << 30));
    REQUIRE(code);
    CHECK(code->size() <= ptmem::arch::kMaxDisplacedSize);
  }

  // Emulated branches are never displaceable; call/ret/syscall neither.
  for (std::vector<uint8_t> b : {std::vector<uint8_t>{0xe8, 0, 0, 0, 0}, {0xc3}, {0x74, 0x00},
                                 {0x0f, 0x05}, {0xe2, 0xfe}, {0xff, 0xd0}}) {
    const StepPlan s = planner.plan(at, b);
    CAPTURE(s.text);
    CHECK_FALSE(s.displaceable);
    CHECK_FALSE(build_displaced(s, at + 0x1000));
  }
}

namespace {

const char* const kHookedLibc[] = {
    "malloc",         "calloc",          "realloc",        "reallocarray",
    "free",           "posix_memalign",  "aligned_alloc",  "memalign",
    "valloc",         "pvalloc",         "open",           "open64",
    "openat",         "openat64",        "creat",          "creat64",
    "__open_nocancel", "__open64_nocancel", "fopen",        "fopen64",
    "fdopen",         "freopen",         "freopen64",      "fclose",
    "opendir",        "fdopendir",       "closedir",       "socket",
    "socketpair",     "accept",          "accept4",        "pipe",
    "pipe2",          "dup",             "dup2",           "dup3",
    "fcntl",          "fcntl64",         "eventfd",        "timerfd_create",
    "signalfd",       "epoll_create",    "epoll_create1",  "inotify_init",
    "inotify_init1",  "memfd_create",    "close",          "__close_nocancel",
    "close_range",    "recvmsg",
};

}  // namespace

TEST_CASE("arch: every hooked glibc/ld.so entry can be stepped over without stopping") {
  StepPlanner planner;
  std::map<std::string, unsigned> kinds;
  auto check = [&](ElfCode& elf, const char* name) {
    auto it = elf.symbols().find(name);
    if (it == elf.symbols().end()) return false;
    const std::vector<uint8_t> code = elf.code_at(it->second);
    REQUIRE(code.size() == 16);
    const StepPlan p = planner.plan(it->second, code);
    CAPTURE(name);
    CAPTURE(p.text);
    CHECK(p.kind != Kind::Unsupported);
    ++kinds[kind_name(p.kind)];
    return true;
  };
  ElfCode libc("/lib/x86_64-linux-gnu/libc.so.6");
  REQUIRE(libc.ok());
  unsigned found = 0;
  for (const char* name : kHookedLibc) found += check(libc, name);
  // glibc 2.36 defines all of them.
  CHECK(found == std::size(kHookedLibc));

  ElfCode ldso("/lib64/ld-linux-x86-64.so.2");
  REQUIRE(ldso.ok());
  CHECK(check(ldso, "_dl_debug_state"));
  CHECK(kinds["Unsupported"] == 0);
}

TEST_CASE("arch: planning every function of libc, libm, libstdc++ and ld.so keeps invariants") {
  csh cs;
  REQUIRE(cs_open(CS_ARCH_X86, CS_MODE_64, &cs) == CS_ERR_OK);
  StepPlanner planner;
  for (const char* path : {"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6",
                           "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
                           "/lib64/ld-linux-x86-64.so.2"}) {
    ElfCode elf(path);
    REQUIRE(elf.ok());
    std::map<Kind, unsigned> kinds;
    std::map<std::string, unsigned> unsupported;
    for (const auto& [name, addr] : elf.symbols()) {
      const std::vector<uint8_t> code = elf.code_at(addr);
      if (code.empty()) continue;
      const StepPlan p = planner.plan(addr, code);
      CAPTURE(name);
      CAPTURE(p.text);
      ++kinds[p.kind];
      if (p.kind == Kind::Unsupported) {
        ++unsupported[p.text.substr(0, p.text.find(' '))];
        continue;
      }
      REQUIRE(p.length >= 1);
      REQUIRE(p.length <= 15);
      if (!p.displaceable) continue;
      // Relocated to a slot 1 MiB away, the code must decode to the same instruction of the
      // same length, followed by a jmp back to the next original instruction.
      const uint64_t slot = addr + 0x100000;
      auto out = build_displaced(p, slot);
      REQUIRE(out);
      REQUIRE(out->size() <= ptmem::arch::kMaxDisplacedSize);
      cs_insn* orig = nullptr;
      REQUIRE(cs_disasm(cs, code.data(), code.size(), addr, 1, &orig) == 1);
      const unsigned orig_id = orig->id;
      cs_free(orig, 1);
      cs_insn* insn = nullptr;
      const size_t n = cs_disasm(cs, out->data(), out->size(), slot, 0, &insn);
      REQUIRE(n == 2);
      CHECK(insn[0].size == p.length);
      CHECK(insn[0].id == orig_id);
      CHECK(std::string(insn[1].mnemonic) == "jmp");
      CHECK(insn[1].size == 5);
      // Capstone prints the resolved branch target.
      char want[32];
      std::snprintf(want, sizeof want, "0x%llx",
                    static_cast<unsigned long long>(addr + p.length));
      CHECK(std::string(insn[1].op_str) == want);
      cs_free(insn, n);
    }
    std::string tops;
    for (const auto& [m, c] : unsupported) tops += m + "=" + std::to_string(c) + " ";
    const std::string summary =
        std::string(path) + ": " + std::to_string(elf.symbols().size()) +
        " functions, Emulate " + std::to_string(kinds[Kind::Emulate]) + ", Displaced " +
        std::to_string(kinds[Kind::Displaced]) + ", Unsupported " +
        std::to_string(kinds[Kind::Unsupported]) + " (" + tops + ")";
    INFO(summary);
    // Debian bookworm: libc 2098/496/0, libm 595/551/0, libstdc++ 4467/0/0 (all endbr64),
    // ld.so 18/5/0.  No first instruction of any function needs a stop-the-world step.
    CHECK(kinds[Kind::Unsupported] == 0);
    CHECK(kinds[Kind::Emulate] + kinds[Kind::Displaced] > 20);
  }
  cs_close(&cs);
}
