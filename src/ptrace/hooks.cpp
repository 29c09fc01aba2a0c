// Putting the hooks in: find which module provides each traced function (the dynamic
// linker's search order), plan how to step over its first instruction, map scratch pages
// for the return trampoline and displaced instructions, follow library loads through the
// r_debug breakpoint.  Syscalls are injected through the program's entry point, which never
// runs again after start-up (gdb uses it the same way).
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ptmem/symbols/elf_image.hpp"
#include "ptmem/util/eprint.hpp"
#include "session_impl.hpp"

namespace ptmem::ptrace {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kNear = 1ull << 30;  // scratch within 1 GiB: rel32 reaches with room to spare
constexpr uint64_t kLowest = 1ull << 20;
constexpr uint64_t kHighest = 0x7ffffffff000ull;

// r_debug / link_map offsets (glibc elf/link.h, LP64).
constexpr uint64_t kRDebugMap = 8;
constexpr uint64_t kRDebugState = 24;
constexpr uint64_t kLinkMapAddr = 0;
constexpr uint64_t kLinkMapNext = 24;

uint64_t distance(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

// A free, page-aligned range of |size| bytes as close to |near| as possible, away from the
// places that grow (the heap's brk end, below the stack).
std::optional<uint64_t> find_gap(const std::vector<proc::Mapping>& maps, uint64_t near, uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> used;
  for (auto& m : maps) {
    uint64_t start = m.start, end = m.end;
    if (m.path == "[heap]") end += 1ull << 30;           // leave brk room to grow
    if (m.path == "[stack]") start -= 64ull << 20;       // and the stack
    used.emplace_back(start, end);
  }
  std::sort(used.begin(), used.end());
  std::optional<uint64_t> best;
  uint64_t prev_end = kLowest;
  auto consider = [&](uint64_t lo, uint64_t hi) {
    if (hi <= lo || hi - lo < size + 2 * kPage) return;
    lo += kPage;  // keep a guard page from neighbours
    hi -= kPage;
    uint64_t cand = std::clamp(near & ~(kPage - 1), lo, hi - size);
    if (distance(cand, near) >= kNear) return;
    if (!best || distance(cand, near) < distance(*best, near)) best = cand;
  };
  for (auto& [s, e] : used) {
    if (s > prev_end) consider(prev_end, s);
    prev_end = std::max(prev_end, e);
  }
  consider(prev_end, kHighest);
  return best;
}

}  // namespace

std::optional<uint64_t> Session::Impl::inject_syscall(Process& p, Thread& t, long nr,
                                                      std::array<uint64_t, 6> args) {
  if (!p.entry_point || t.group_stopped || !leave_syscall(t)) return std::nullopt;
  arch::Registers saved;
  if (!get_regs(t.tid(), saved)) return std::nullopt;
  static constexpr uint8_t kCode[4] = {0x0f, 0x05, 0xcc, 0xcc};  // syscall; int3
  uint8_t original[sizeof kCode];
  if (!p.mem.read(p.entry_point, original, sizeof original)) return std::nullopt;
  if (!p.mem.write(p.entry_point, kCode, sizeof kCode)) return std::nullopt;
  arch::Registers regs = saved;
  regs.raw.rip = p.entry_point;
  regs.raw.rax = static_cast<uint64_t>(nr);
  regs.raw.orig_rax = static_cast<uint64_t>(-1);  // not in a syscall: no restart logic
  regs.raw.rdi = args[0];
  regs.raw.rsi = args[1];
  regs.raw.rdx = args[2];
  regs.raw.r10 = args[3];
  regs.raw.r8 = args[4];
  regs.raw.r9 = args[5];
  std::optional<uint64_t> result;
  if (set_regs(t.tid(), regs) && ::ptrace(PTRACE_CONT, t.tid(), nullptr, nullptr) == 0) {
    for (;;) {
      int status;
      if (wait_for_thread(t, status) < 0) {
        // The thread is dying (SIGKILL) inside our syscall: nothing to restore in it; its
        // exit is the loop's business.
        p.mem.write(p.entry_point, original, sizeof original);
        return std::nullopt;
      }
      int sig = WSTOPSIG(status);
      if ((status >> 16) == 0 && sig == SIGTRAP) {
        arch::Registers after;
        if (get_regs(t.tid(), after) && after.ip() == p.entry_point + 3) result = after.ret();
        break;
      }
      // A signal arrived meanwhile: keep it for later, finish the syscall first.
      if ((status >> 16) == 0) t.pending_signal = sig;
      ::ptrace(PTRACE_CONT, t.tid(), nullptr, nullptr);
    }
  }
  p.mem.write(p.entry_point, original, sizeof original);
  set_regs(t.tid(), saved);
  return result;
}

std::optional<uint64_t> Session::Impl::scratch_slot(Process& p, Thread& t, uint64_t near, uint64_t size) {
  size = (size + 15) & ~uint64_t{15};
  for (auto& page : p.scratch) {
    if (page.used + size <= page.size && distance(page.address, near) < kNear) {
      uint64_t slot = page.address + page.used;
      page.used += size;
      return slot;
    }
  }
  auto maps = proc::read_maps(p.pid());
  if (!maps) return std::nullopt;
  auto gap = find_gap(*maps, near, kPage);
  if (!gap) return std::nullopt;
  auto res = inject_syscall(p, t, SYS_mmap,
                            {*gap, kPage, PROT_READ | PROT_EXEC,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                             static_cast<uint64_t>(-1), 0});
  if (!res || *res != *gap) {
    if (res && *res < static_cast<uint64_t>(-4095))  // mapped elsewhere: give it back
      inject_syscall(p, t, SYS_munmap, {*res, kPage, 0, 0, 0, 0});
    return std::nullopt;
  }
  p.scratch.push_back({*gap, kPage, size});
  return *gap;
}

void Session::Impl::remove_scratch(Process& p, Thread& t) {
  for (auto& page : p.scratch) inject_syscall(p, t, SYS_munmap, {page.address, page.size, 0, 0, 0, 0});
  p.scratch.clear();
  p.trampoline = 0;
}

namespace {

struct ModuleImage {
  const symbols::Module* module;
  std::unique_ptr<symbols::ElfImage> elf;
  uint64_t bias;
};

// The modules in the order the dynamic linker searches them for a global symbol: the
// link_map chain (executable, preloads, then needed libraries); for a static program, just
// the executable.
std::vector<ModuleImage> search_order(Process& p) {
  std::vector<ModuleImage> all;
  for (auto& m : p.modules.all()) {
    if (!m.loaded() || !m.executable_mapped || m.path.empty() || m.path[0] != '/') continue;
    auto elf = symbols::ElfImage::open(m.open_path);
    if (!elf || !elf->is_x86_64()) continue;
    uint64_t bias = m.base - elf->first_load_vaddr();
    all.push_back({&m, std::move(elf), bias});
  }
  if (!p.r_debug) return all;
  std::vector<ModuleImage> ordered;
  uint64_t map = 0;
  p.mem.read(p.r_debug + kRDebugMap, &map, 8);
  for (int i = 0; map && i < 4096; ++i) {
    uint64_t l_addr = 0, next = 0;
    if (!p.mem.read(map + kLinkMapAddr, &l_addr, 8) || !p.mem.read(map + kLinkMapNext, &next, 8)) break;
    for (auto& mi : all)
      if (mi.elf && mi.bias == l_addr) {
        ordered.push_back(std::move(mi));
        mi.elf.reset();
        break;
      }
    map = next;
  }
  for (auto& mi : all)  // anything the chain did not name (should not happen) goes last
    if (mi.elf) ordered.push_back(std::move(mi));
  return ordered;
}

// Where the dynamic linker binds |name| (the first definer in |order|, ifuncs excepted,
// since their symbol is a resolver, not the function): its address and module.
struct Definition {
  uint64_t address = 0;
  const symbols::Module* module = nullptr;
  uint64_t size = 0;  // st_size, 0 if unknown
};
std::optional<Definition> bound_definition(const std::vector<ModuleImage>& order, std::string_view name) {
  for (auto& mi : order) {
    bool ifunc = false;
    uint64_t size = 0;
    if (auto v = mi.elf->function(name, &ifunc, &size); v && !ifunc) return Definition{mi.bias + *v, mi.module, size};
  }
  return std::nullopt;
}

}  // namespace

bool Session::Impl::setup_image(Process& p, Thread& t, bool at_exec) {
  auto auxv = proc::read_auxv(p.pid());
  auto maps = proc::read_maps(p.pid());
  if (!auxv || !maps) return false;
  p.entry_point = auxv->entry.value_or(0);
  p.modules.update(*maps);
  if (!p.unwinder) p.unwinder = std::make_unique<symbols::Unwinder>(p.modules);
  else p.unwinder->modules_changed();
  p.hooked.assign(track::traced_functions().size(), false);

  uint64_t ld_base = auxv->base.value_or(0);
  const symbols::Module* ld = ld_base ? p.modules.find(ld_base) : nullptr;
  if (ld) {
    auto elf = symbols::ElfImage::open(ld->open_path);
    auto brk = elf ? elf->function("_dl_debug_state") : std::nullopt;
    auto rdebug = elf ? elf->symbol("_r_debug") : std::nullopt;
    if (brk && rdebug) {
      uint64_t bias = ld->base - elf->first_load_vaddr();
      p.r_debug = bias + *rdebug;
      uint8_t code[16] = {};
      size_t n = p.mem.read_partial(bias + *brk, code, sizeof code);
      Breakpoint bp;
      bp.address = bias + *brk;
      bp.kind = Breakpoint::Kind::DebugState;
      bp.original = code[0];
      bp.plan = planner.plan(bp.address, std::span<const uint8_t>(code, n));
      p.breakpoints.insert(p.mem, bp);
    }
  }
  // At exec only the dynamic linker is mapped; the libraries come at its first
  // RT_CONSISTENT notification.  A running program is complete now.  A static program is
  // complete at exec too, but a syscall cannot be injected from the exec stop (the kernel
  // stores execve's result into rax after it), so its hooks go in at a one-shot breakpoint
  // on its entry point.
  if (!at_exec) {
    install_hooks(p, t);
  } else if (!p.r_debug && p.entry_point) {
    uint8_t original = 0;
    if (p.mem.read(p.entry_point, &original, 1)) {
      Breakpoint bp;
      bp.address = p.entry_point;
      bp.kind = Breakpoint::Kind::Entry;
      bp.original = original;
      p.breakpoints.insert(p.mem, bp);
    }
  }
  return true;
}

void Session::Impl::refresh_modules(Process& p, Thread& t) {
  if (p.r_debug) {
    int state = -1;
    if (!p.mem.read(p.r_debug + kRDebugState, &state, sizeof state) || state != r_debug::RT_CONSISTENT)
      return;
  }
  auto maps = proc::read_maps(p.pid());
  if (!maps) return;
  // The agent's records made so far carry stacks of the modules mapped until now: intern
  // them before a dlclose ends those modules' generation, or their frames go unresolved.
  drain_agent(p);
  std::vector<uint32_t> added, removed;
  if (!p.modules.update(*maps, &added, &removed) && p.hooks_installed) return;
  for (uint32_t id : removed) {
    const symbols::Module* m = p.modules.get(id);
    if (!m) continue;
    for (auto* bp : p.breakpoints.all())
      if (bp->address >= m->start && bp->address < m->end && bp->function >= 0)
        p.hooked[static_cast<size_t>(bp->function)] = false;
    p.breakpoints.forget_range(m->start, m->end);  // unmapped: nothing to restore
  }
  if (!removed.empty() && p.agent) p.agent->rules_off();
  if (p.unwinder) p.unwinder->modules_changed();
  install_hooks(p, t);
}

// A body that is only a jump, after an endbr64 when built with CET (operator delete).
bool Session::Impl::starts_with_jump(uint64_t addr, std::span<const uint8_t> code) {
  auto first = planner.plan(addr, code);
  if (first.text.starts_with("endbr64") && first.length < code.size())
    return planner.plan(addr + first.length, code.subspan(first.length)).text.starts_with("jmp ");
  return first.text.starts_with("jmp ");
}

// An int3 at |addr| with its way past planned: a relocated copy when the instruction allows
// one, else emulation, else (logged with -v) stop-the-world.
void Session::Impl::plant(Process& p, Thread& t, uint64_t addr, Breakpoint::Kind kind, int function,
                          std::string_view name) {
  uint8_t code[16] = {};
  size_t n = p.mem.read_partial(addr, code, sizeof code);
  if (n == 0) return;
  p.breakpoints.mask(addr, code, n);
  Breakpoint bp;
  bp.address = addr;
  bp.kind = kind;
  bp.original = code[0];
  bp.function = function;
  bp.plan = planner.plan(addr, std::span<const uint8_t>(code, n));
  bp.tail_jump = starts_with_jump(addr, std::span<const uint8_t>(code, n));
  // A relocated copy costs the target nothing beyond the stop, while emulating a push or
  // a memory compare costs a syscall into its memory at every hit: prefer the copy.
  const auto planned = bp.plan.kind;
  if (planned == arch::StepPlan::Kind::Emulate && bp.plan.displaceable)
    bp.plan.kind = arch::StepPlan::Kind::Displaced;
  if (bp.plan.kind == arch::StepPlan::Kind::Displaced) {
    auto slot = scratch_slot(p, t, addr, arch::kMaxDisplacedSize);
    auto bytes = slot ? arch::build_displaced(bp.plan, *slot) : std::nullopt;
    if (bytes && p.mem.write(*slot, bytes->data(), bytes->size())) {
      bp.displaced_slot = *slot;
      bp.displaced_length = bp.plan.length;
    } else {
      bp.plan.kind = planned == arch::StepPlan::Kind::Emulate ? planned : arch::StepPlan::Kind::Unsupported;
    }
  }
  // For tests of the last resort, which no glibc entry needs: PTMEM_FORCE_STEP_IN_PLACE=1.
  static const bool force_in_place = std::getenv("PTMEM_FORCE_STEP_IN_PLACE") != nullptr;
  if (force_in_place && kind == Breakpoint::Kind::Function) bp.plan.kind = arch::StepPlan::Kind::Unsupported;
  if (bp.plan.kind == arch::StepPlan::Kind::Unsupported && opt.verbose)
    util::eprint("ptmem: {}: '{}' is stepped over with all threads stopped\n", name, bp.plan.text);
  p.breakpoints.insert(p.mem, std::move(bp));
}

void Session::Impl::install_hooks(Process& p, Thread& t) {
  auto functions = track::traced_functions();
  if (p.hooked.size() != functions.size()) p.hooked.assign(functions.size(), false);
  auto order = search_order(p);
  if (order.empty()) return;
  // The module that provides malloc: the trampoline goes near it (any address would do),
  // and allocator_only rows are hooked only there.
  auto malloc_def = bound_definition(order, "malloc");
  const symbols::Module* allocator = malloc_def ? malloc_def->module : nullptr;
  if (!p.trampoline) {
    uint64_t near = allocator ? allocator->start : order.size() > 1 ? order[1].module->start : order[0].module->start;
    auto slot = scratch_slot(p, t, near, 16);
    static constexpr uint8_t kInt3 = 0xCC;
    if (slot && p.mem.write(*slot, &kInt3, 1)) p.trampoline = *slot;
    else if (opt.verbose) util::eprint("ptmem: cannot map a scratch page into {}\n", p.pid());
  }
  // The inject engine patches functions only while no thread runs: at attach, and at a
  // launched program's first library notification.  Later loads get breakpoints.
  inject_agent(p, t);
  const bool patch_now = p.agent && world_stopped(p);
  struct Candidate {
    size_t row;
    Definition def;
    std::vector<uint8_t> code;  // read by the agent's check, empty if it was refused
  };
  std::vector<Candidate> todo;
  for (size_t i = 0; i < functions.size(); ++i) {
    const auto& fn = functions[i];
    if (p.hooked[i]) continue;
    if (fn.family == track::Family::Alloc && !opt.track_alloc) continue;
    if (fn.family == track::Family::Fd && !opt.track_fds) continue;
    auto def = bound_definition(order, fn.name);
    if (!def) continue;
    p.hooked[i] = true;
    if (fn.allocator_only && def->module != allocator) continue;
    if (p.breakpoints.contains(def->address)) continue;  // an alias of a row already hooked
    if (p.agent && p.agent->hooked(def->address)) continue;
    if (std::any_of(todo.begin(), todo.end(), [&](auto& c) { return c.def.address == def->address; })) continue;
    todo.push_back({i, *def, {}});
  }
  // A family is the agent's whole or not at all: calls nest within a family (operator new
  // -> malloc, fopen -> open) and only one engine can tell the outer call from the inner.
  bool family_refused[2] = {false, false};
  if (patch_now)
    for (auto& c : todo) {
      const auto& fn = functions[c.row];
      if (auto why = agent_refusal(p, c.def.address, c.def.size, c.code)) {
        util::eprint("ptmem: inject engine: {} cannot be patched ({}): the {} functions are traced with breakpoints\n",
                   fn.name, *why, fn.family == track::Family::Alloc ? "allocator" : "fd");
        family_refused[static_cast<size_t>(fn.family)] = true;
      }
    }
  for (auto& c : todo) {
    const auto& fn = functions[c.row];
    if (patch_now && !family_refused[static_cast<size_t>(fn.family)] &&
        agent_hook(p, t, static_cast<int>(c.row), c.def.address, c.code))
      continue;
    plant(p, t, c.def.address, Breakpoint::Kind::Function, static_cast<int>(c.row), fn.name);
  }
  if (patch_now) agent_hooks_in(p);
  // The unwinder's entry points, in every module that has its own copy (libgcc_s, or
  // libgcc_eh linked into a static program or a library): a C++ exception or a thread
  // cancellation must never meet our trampoline as a return address.
  // glibc's longjmp family likewise: the calls in frames it jumps over will never return.
  struct EngineHook {
    const char* name;
    Breakpoint::Kind kind;
  };
  static constexpr EngineHook kEngineHooks[] = {
      {"_Unwind_RaiseException", Breakpoint::Kind::Unwind},
      {"_Unwind_ForcedUnwind", Breakpoint::Kind::Unwind},
      {"__libc_siglongjmp", Breakpoint::Kind::LongJump},  // longjmp, siglongjmp, _longjmp
      {"__libc_longjmp", Breakpoint::Kind::LongJump},
      {"longjmp", Breakpoint::Kind::LongJump},
      {"siglongjmp", Breakpoint::Kind::LongJump},
      {"_longjmp", Breakpoint::Kind::LongJump},
      {"__longjmp_chk", Breakpoint::Kind::LongJump},  // _FORTIFY_SOURCE
  };
  if (p.trampoline) {
    for (auto& mi : order)
      for (const auto& hook : kEngineHooks)
        if (auto v = mi.elf->function(hook.name); v && !p.breakpoints.contains(mi.bias + *v))
          plant(p, t, mi.bias + *v, hook.kind, -1, hook.name);
  }
  p.hooks_installed = true;
}

}  // namespace ptmem::ptrace
