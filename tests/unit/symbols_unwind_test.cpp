// Unwinder and Symbolizer on a real stopped process (tests/fixtures/symbols/unwind_target,
// -O2 -fomit-frame-pointer -g), and on this test process for dlopen/dlclose.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <sys/auxv.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "../support/process.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/symbols/elf_image.hpp"
#include "ptmem/symbols/module_map.hpp"
#include "ptmem/symbols/symbolizer.hpp"
#include "ptmem/symbols/unwinder.hpp"

using ptmem::symbols::ModuleMap;
using ptmem::symbols::SourceFrame;
using ptmem::symbols::Symbolizer;
using ptmem::symbols::Unwinder;
using namespace std::chrono_literals;

namespace {

// Line of each "@frame NAME" (or "@line NAME") marker in a fixture source.
std::map<std::string, int> markers(const std::string& path, const std::string& tag) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  std::map<std::string, int> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    auto pos = line.find(tag + " ");
    if (pos == std::string::npos) continue;
    std::string name = line.substr(pos + tag.size() + 1);
    name = name.substr(0, name.find_first_of(" */"));
    out[name] = n;
  }
  return out;
}

std::string basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Reads the stopped target's memory through /proc/PID/mem: the "fallback" a tracer has.
class ProcMem : public ptmem::arch::MemoryAccess {
 public:
  explicit ProcMem(pid_t pid) : fd_(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY)) {}
  ~ProcMem() override {
    if (fd_ >= 0) ::close(fd_);
  }
  bool read(uint64_t addr, void* buf, size_t len) override {
    ++reads;
    return ::pread(fd_, buf, len, static_cast<off_t>(addr)) == static_cast<ssize_t>(len);
  }
  bool write(uint64_t, const void*, size_t) override { return false; }
  int reads = 0;

 private:
  int fd_;
};

// The fixture, seized and stopped in its raise(SIGSTOP), with its registers and the top of
// its stack copied the way the tracer copies them.  Killed by pid when the test ends.
struct StoppedTarget {
  ptmem::test::Child child;
  pid_t pid = 0;
  ptmem::arch::Registers regs;
  std::vector<uint8_t> stack;

  static ptmem::test::Child::Options options() {
    ptmem::test::Child::Options o;
    o.argv = {ptmem::test::build_path("fixtures/symbols/unwind_target")};
    o.pipe_stdin = true;
    return o;
  }

  StoppedTarget() : child(options()) {
    pid = child.pid();
    auto ready = child.wait_for_line("ready", 10s);
    REQUIRE_MESSAGE(ready, "fixture did not start: " << ptmem::test::build_path("fixtures/symbols/unwind_target"));
    REQUIRE(::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0);
    child.write_stdin("g");
    // Wait for the signal-delivery stop of its SIGSTOP (bounded: a broken fixture must
    // fail the test, not hang it).
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    pid_t got = 0;
    while ((got = ::waitpid(pid, &status, WNOHANG | __WALL)) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    REQUIRE(got == pid);
    REQUIRE(WIFSTOPPED(status));
    REQUIRE(WSTOPSIG(status) == SIGSTOP);
    REQUIRE(::ptrace(PTRACE_GETREGS, pid, nullptr, &regs.raw) == 0);
    stack.resize(16 * 1024);
    iovec local{stack.data(), stack.size()}, remote{reinterpret_cast<void*>(regs.sp()), stack.size()};
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    REQUIRE(n > 0);
    stack.resize(static_cast<size_t>(n));
  }
};

ModuleMap modules_of(pid_t pid) {
  auto maps = ptmem::proc::read_maps(pid);
  REQUIRE(maps);
  ModuleMap map(pid);
  REQUIRE(map.update(*maps));
  return map;
}

std::vector<SourceFrame> symbolize_all(Symbolizer& symbolizer, const uint64_t* pcs, size_t n, uint64_t gen) {
  std::vector<SourceFrame> out;
  for (size_t i = 0; i < n; ++i)
    for (const auto& f : symbolizer.symbolize(pcs[i], gen, i > 0)) out.push_back(f);
  return out;
}

}  // namespace

TEST_CASE("Unwinder + Symbolizer: -O2 code without frame pointers, with an inlined frame") {
  StoppedTarget target;
  ModuleMap map = modules_of(target.pid);
  Unwinder unwinder(map);
  uint64_t pcs[64];
  size_t n = unwinder.unwind(target.regs, target.stack, nullptr, 64, pcs);
  REQUIRE(n >= 8);
  CHECK(pcs[0] == target.regs.ip());

  Symbolizer symbolizer(map);
  auto cold = std::chrono::steady_clock::now();
  auto frames = symbolize_all(symbolizer, pcs, n, map.generation());
  double cold_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - cold).count();
  MESSAGE("symbolizing " << n << " pcs, first time (opens libc and its debug file): " << cold_ms << " ms");
  std::string trace;
  for (const auto& f : frames)
    trace += fmt::format("  {:#x} {} {}:{}{} [{}]\n", f.address, f.function, basename(f.file), f.line,
                         f.inlined ? " (inlined)" : "", basename(f.module));
  INFO("stack:\n" << trace);

  auto lines = markers(ptmem::test::build_path("fixtures/symbols/unwind_target.cpp"), "@frame");
  REQUIRE(lines.size() == 7);

  // The top frames are libc's raise; then exactly our chain.
  size_t k = 0;
  while (k < frames.size() && frames[k].function != "fx::stop_here") ++k;
  REQUIRE(k < frames.size());
  REQUIRE(k >= 1);
  for (size_t i = 0; i < k; ++i) CHECK(basename(frames[i].module) == "libc.so.6");

  struct Expect {
    std::string function, marker;
    bool inlined;
  } expected[] = {
      {"fx::stop_here", "stop_here", true}, {"fx::f5(int)", "f5", false}, {"fx::f4(int)", "f4", false},
      {"fx::f3(int)", "f3", false},         {"fx::f2(int)", "f2", false}, {"fx::f1(int)", "f1", false},
      {"main", "main", false},
  };
  REQUIRE(frames.size() >= k + std::size(expected) + 1);
  for (size_t i = 0; i < std::size(expected); ++i) {
    const SourceFrame& f = frames[k + i];
    CAPTURE(i);
    CHECK(f.function == expected[i].function);
    CHECK(f.line == lines[expected[i].marker]);
    CHECK(basename(f.file) == "unwind_target.cpp");
    CHECK(f.inlined == expected[i].inlined);
    CHECK(basename(f.module) == "unwind_target");
    CHECK(f.module_offset == f.address - map.find(f.address)->base);
  }
  // The inlined frame and the function it was inlined into share one pc.
  CHECK(frames[k].address == frames[k + 1].address);
  // main was called by libc's start code.
  CHECK(basename(frames[k + std::size(expected)].module) == "libc.so.6");

  // Cached: the same pc and generation give the very same frames.
  CHECK(&symbolizer.symbolize(pcs[1], map.generation(), true) == &symbolizer.symbolize(pcs[1], map.generation(), true));

  // The cached-rule fast path and plain libdwfl give the same stack; report both speeds.
  auto time_unwinds = [&](uint64_t* pcs_out, size_t* frames_out) {
    constexpr int kRounds = 2000;
    auto start = std::chrono::steady_clock::now();
    size_t total = 0;
    for (int i = 0; i < kRounds; ++i) total += unwinder.unwind(target.regs, target.stack, nullptr, 64, pcs_out);
    *frames_out = total / kRounds;
    CHECK(total % kRounds == 0);
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / kRounds;
  };
  uint64_t fast[64], slow[64];
  size_t fast_n = 0, slow_n = 0;
  double fast_us = time_unwinds(fast, &fast_n);
  unwinder.set_rule_cache(false);
  double slow_us = time_unwinds(slow, &slow_n);
  unwinder.set_rule_cache(true);
  CHECK(fast_n == n);
  REQUIRE(slow_n == n);
  CHECK(std::equal(fast, fast + n, pcs));
  CHECK(std::equal(slow, slow + n, pcs));
  MESSAGE(n << "-frame unwind: " << fast_us << " us with cached rules, " << slow_us << " us through libdwfl");
}

TEST_CASE("Unwinder: depth cap, short snapshots and the fallback reader") {
  StoppedTarget target;
  ModuleMap map = modules_of(target.pid);
  Unwinder unwinder(map);
  bool rules = true;
  SUBCASE("with cached rules") { rules = true; }
  SUBCASE("through libdwfl") { rules = false; }
  CAPTURE(rules);
  unwinder.set_rule_cache(rules);
  uint64_t full[64];
  size_t n = unwinder.unwind(target.regs, target.stack, nullptr, 64, full);
  REQUIRE(n >= 8);

  uint64_t pcs[64];
  CHECK(unwinder.unwind(target.regs, target.stack, nullptr, 3, pcs) == 3);
  CHECK(std::equal(pcs, pcs + 3, full));
  CHECK(unwinder.unwind(target.regs, target.stack, nullptr, 1, pcs) == 1);
  CHECK(pcs[0] == target.regs.ip());

  // 32 bytes of stack cannot hold libc's frame: without a reader the unwind stops early...
  std::span<const uint8_t> tiny(target.stack.data(), 32);
  size_t short_n = unwinder.unwind(target.regs, tiny, nullptr, 64, pcs);
  CHECK(short_n >= 1);
  CHECK(short_n < n);
  // ...and with one it reads the rest from the process and gets the same stack.
  ProcMem mem(target.pid);
  size_t with_reader = unwinder.unwind(target.regs, tiny, &mem, 64, pcs);
  CHECK(mem.reads > 0);
  REQUIRE(with_reader == n);
  CHECK(std::equal(pcs, pcs + n, full));

  // An empty snapshot: still frame 0.
  CHECK(unwinder.unwind(target.regs, {}, nullptr, 64, pcs) >= 1);
  CHECK(pcs[0] == target.regs.ip());

  // Re-reporting unchanged modules keeps libdwfl's modules and the result.
  unwinder.modules_changed();
  CHECK(unwinder.unwind(target.regs, target.stack, nullptr, 64, pcs) == n);
  CHECK(std::equal(pcs, pcs + n, full));
}

TEST_CASE("Unwinder: created before the modules are known") {
  StoppedTarget target;
  ModuleMap map(target.pid);
  Unwinder unwinder(map);
  uint64_t pcs[64];
  CHECK(unwinder.unwind(target.regs, target.stack, nullptr, 64, pcs) >= 1);
  CHECK(pcs[0] == target.regs.ip());

  REQUIRE(map.update(*ptmem::proc::read_maps(target.pid)));
  unwinder.modules_changed();
  size_t n = unwinder.unwind(target.regs, target.stack, nullptr, 64, pcs);
  Unwinder fresh(map);
  uint64_t expected[64];
  REQUIRE(fresh.unwind(target.regs, target.stack, nullptr, 64, expected) == n);
  CHECK(n >= 8);
  CHECK(std::equal(pcs, pcs + n, expected));
}

TEST_CASE("Unwinder: frame-pointer walk and its sanity checks") {
  // A module covering [0x400000, 0x500000) for the return addresses.
  ModuleMap map;
  REQUIRE(map.update(ptmem::proc::parse_maps("00400000-00500000 r-xp 00000000 08:01 9 /usr/bin/fp\n")));
  constexpr uint64_t kStack = 0x7ffc00001000;
  std::vector<uint64_t> words(64, 0);
  auto at = [&](uint64_t addr) -> uint64_t& { return words[(addr - kStack) / 8]; };
  auto bytes = [&] { return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(words.data()), words.size() * 8); };
  // fp0 -> fp1 -> fp2 -> 0, each with its return address above it.
  const uint64_t fp0 = kStack + 0x20, fp1 = kStack + 0x60, fp2 = kStack + 0xa0;
  at(fp0) = fp1;
  at(fp0 + 8) = 0x401000;
  at(fp1) = fp2;
  at(fp1 + 8) = 0x402000;
  at(fp2) = 0;
  at(fp2 + 8) = 0x403000;
  uint64_t out[8] = {0xaaaa};

  SUBCASE("a good chain, ended by a null frame pointer") {
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, kStack, &map, 1, 8, out) == 4);
    CHECK(out[0] == 0xaaaa);
    CHECK(out[1] == 0x401000);
    CHECK(out[2] == 0x402000);
    CHECK(out[3] == 0x403000);
  }
  SUBCASE("capped by max_frames") {
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, kStack, &map, 1, 3, out) == 3);
    CHECK(out[2] == 0x402000);
  }
  SUBCASE("a frame pointer going down stops the walk") {
    at(fp1) = fp0;
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, kStack, &map, 0, 8, out) == 2);
  }
  SUBCASE("misaligned frame pointer") {
    at(fp0) = fp1 + 4;
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, kStack, &map, 0, 8, out) == 1);
  }
  SUBCASE("frame pointer outside the snapshot") {
    at(fp1) = kStack + words.size() * 8 - 8;  // its return address would be past the end
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, kStack, &map, 0, 8, out) == 2);
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, kStack - 16, kStack - 16, &map, 0, 8, out) == 0);
  }
  SUBCASE("below the last frame's stack pointer") {
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, fp0 + 8, &map, 0, 8, out) == 0);
  }
  SUBCASE("return address outside every module") {
    at(fp1 + 8) = 0x600000;
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, kStack, &map, 0, 8, out) == 1);
    CHECK(Unwinder::walk_frame_pointers(bytes(), kStack, fp0, kStack, nullptr, 0, 8, out) == 3);
  }
}

TEST_CASE("Symbolizer: a dlclosed module symbolizes through its old generation") {
  std::string lib = ptmem::test::build_path("fixtures/symbols/libsymfix.so");
  auto line = markers(ptmem::test::build_path("fixtures/symbols/symfix_lib.c"), "@line")["symfix_answer"];
  REQUIRE(line > 0);

  ModuleMap map(::getpid());
  REQUIRE(map.update(*ptmem::proc::read_maps(::getpid())));
  const uint64_t g_before = map.generation();

  void* handle = ::dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  REQUIRE_MESSAGE(handle, ::dlerror());
  auto pc = reinterpret_cast<uint64_t>(::dlsym(handle, "symfix_answer"));
  REQUIRE(pc != 0);
  std::vector<uint32_t> added, removed;
  REQUIRE(map.update(*ptmem::proc::read_maps(::getpid()), &added, &removed));
  const uint64_t g_loaded = map.generation();
  const ptmem::symbols::Module* mod = map.find(pc);
  REQUIRE(mod);
  CHECK(basename(mod->path) == "libsymfix.so");
  CHECK(std::find(added.begin(), added.end(), mod->id) != added.end());
  const uint32_t id = mod->id;

  REQUIRE(::dlclose(handle) == 0);
  added.clear();
  REQUIRE(map.update(*ptmem::proc::read_maps(::getpid()), &added, &removed));
  const uint64_t g_unloaded = map.generation();
  CHECK(std::find(removed.begin(), removed.end(), id) != removed.end());
  CHECK_FALSE(map.get(id)->loaded());
  CHECK(map.find(pc) == nullptr);

  Symbolizer symbolizer(map);
  const auto& frames = symbolizer.symbolize(pc, g_loaded, false);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].address == pc);
  CHECK(frames[0].function == "symfix_answer");
  CHECK(basename(frames[0].file) == "symfix_lib.c");
  CHECK(frames[0].line == line);
  CHECK(basename(frames[0].module) == "libsymfix.so");
  CHECK(frames[0].module_offset == pc - map.get(id)->base);
  CHECK_FALSE(frames[0].inlined);

  // Before it was loaded and after it went, nothing is there.
  for (uint64_t gen : {g_before, g_unloaded}) {
    CAPTURE(gen);
    const auto& none = symbolizer.symbolize(pc, gen, false);
    REQUIRE(none.size() == 1);
    CHECK(none[0].address == pc);
    CHECK(none[0].module.empty());
    CHECK(none[0].function.empty());
    CHECK(none[0].line == 0);
  }
}

TEST_CASE("Symbolizer: without debug information, from the symbol table") {
  void* handle = ::dlopen(ptmem::test::build_path("fixtures/symbols/libsymfix_nodebug.so").c_str(), RTLD_NOW);
  REQUIRE_MESSAGE(handle, ::dlerror());
  auto entry = reinterpret_cast<uint64_t>(::dlsym(handle, "symfix_answer"));
  ModuleMap map(::getpid());
  REQUIRE(map.update(*ptmem::proc::read_maps(::getpid())));
  const ptmem::symbols::Module* mod = map.find(entry);
  REQUIRE(mod);
  Symbolizer symbolizer(map);
  // A return address just past the function's first instruction still names it.
  const auto& frames = symbolizer.symbolize(entry + 1, map.generation(), true);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].function == "symfix_answer");
  CHECK(frames[0].file.empty());
  CHECK(frames[0].line == 0);
  CHECK(frames[0].address == entry + 1);
  CHECK(frames[0].module == mod->path);
  CHECK(frames[0].module_offset == entry + 1 - mod->base);
  // The ELF header is in no function: module and offset only.
  const auto& header = symbolizer.symbolize(mod->base + 16, map.generation(), false);
  REQUIRE(header.size() == 1);
  CHECK(header[0].function.empty());
  CHECK(header[0].module == mod->path);
  CHECK(header[0].module_offset == 16);
  ::dlclose(handle);
}

TEST_CASE("Symbolizer: the vdso, which has no file") {
  ModuleMap map(::getpid());
  REQUIRE(map.update(*ptmem::proc::read_maps(::getpid())));
  const ptmem::symbols::Module* vdso = nullptr;
  for (const auto& m : map.all())
    if (m.path == "[vdso]") vdso = &m;
  REQUIRE(vdso);
  CHECK(vdso->base == getauxval(AT_SYSINFO_EHDR));
  // Where clock_gettime is, from a copy of the image read independently.
  std::string copy = ptmem::test::temp_dir() + "/vdso.so";
  std::ofstream(copy, std::ios::binary)
      .write(reinterpret_cast<const char*>(vdso->start), static_cast<std::streamsize>(vdso->end - vdso->start));
  auto image = ptmem::symbols::ElfImage::open(copy);
  REQUIRE(image);
  auto value = image->function("__vdso_clock_gettime");
  REQUIRE(value);
  uint64_t pc = ptmem::symbols::load_bias(*vdso, *image) + *value + 1;
  Symbolizer symbolizer(map);
  const auto& frames = symbolizer.symbolize(pc, map.generation(), false);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].function.find("clock_gettime") != std::string::npos);
  CHECK(frames[0].module == "[vdso]");
  CHECK(frames[0].module_offset == pc - vdso->base);
}

TEST_CASE("Symbolizer: libc, and demangling") {
  // This process's libc: a pc inside malloc symbolizes to malloc (from libc6-dbg's DWARF
  // when installed, else from .dynsym), and module + offset are right either way.
  ModuleMap map(::getpid());
  REQUIRE(map.update(*ptmem::proc::read_maps(::getpid())));
  void* (*self_malloc)(size_t) = &::malloc;
  auto pc = reinterpret_cast<uint64_t>(self_malloc) + 4;
  const ptmem::symbols::Module* libc = map.find(pc);
  REQUIRE(libc);
  Symbolizer symbolizer(map);
  const auto& frames = symbolizer.symbolize(pc, map.generation(), false);
  REQUIRE(!frames.empty());
  CHECK(frames.back().function.find("malloc") != std::string::npos);
  CHECK(frames.back().module == libc->path);
  CHECK(frames.back().module_offset == pc - libc->base);

  CHECK(ptmem::symbols::demangle("_ZN2fx2f1Ei") == "fx::f1(int)");
  CHECK(ptmem::symbols::demangle("_ZNSt6vectorIiSaIiEE9push_backERKi") ==
        "std::vector<int, std::allocator<int> >::push_back(int const&)");
  CHECK(ptmem::symbols::demangle("malloc") == "malloc");
  CHECK(ptmem::symbols::demangle("_Znotmangled") == "_Znotmangled");
  CHECK(ptmem::symbols::demangle("") == "");
}
