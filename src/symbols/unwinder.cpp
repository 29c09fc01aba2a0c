#include "ptmem/symbols/unwinder.hpp"

#include <absl/container/flat_hash_map.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdwfl.h>
#include <unistd.h>

#include "ptmem/symbols/elf_image.hpp"
#include "vdso.hpp"

namespace ptmem::symbols {
namespace {

// DWARF register numbers on x86-64.
constexpr unsigned kDwarfRbp = 6;
constexpr unsigned kDwarfRsp = 7;

// libdwfl picks its architecture backend (register count, return-address column, the
// frame-pointer fallback) from an Elf given to dwfl_attach_state.  Attaching with a module's
// Elf would tie the backend's lifetime to that module, which a later re-report may remove,
// so the unwinder owns this bare x86-64 ELF header instead.
struct ArchElf {
  Elf64_Ehdr ehdr{};
  Elf* elf = nullptr;
  ArchElf() {
    elf_version(EV_CURRENT);
    std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
    ehdr.e_ident[EI_CLASS] = ELFCLASS64;
    ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
    ehdr.e_ident[EI_VERSION] = EV_CURRENT;
    ehdr.e_type = ET_DYN;
    ehdr.e_machine = EM_X86_64;
    ehdr.e_version = EV_CURRENT;
    ehdr.e_ehsize = sizeof(Elf64_Ehdr);
    elf = elf_memory(reinterpret_cast<char*>(&ehdr), sizeof ehdr);
  }
  ~ArchElf() {
    if (elf) elf_end(elf);
  }
};

// The unwinder only reads files it was given through the module map, so no debuginfo
// search beyond the standard one (build-id under /usr/lib/debug, .gnu_debuglink).
char* debuginfo_path = nullptr;
const Dwfl_Callbacks kOfflineCallbacks = {
    .find_elf = nullptr,  // modules are reported with dwfl_report_elf
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

bool read_word(std::span<const uint8_t> stack, uint64_t stack_addr, uint64_t addr, uint64_t* out) {
  if (addr < stack_addr || addr - stack_addr > stack.size() || stack.size() - (addr - stack_addr) < 8)
    return false;
  std::memcpy(out, stack.data() + (addr - stack_addr), 8);
  return true;
}

constexpr unsigned kDwarfRip = 16;  // the return-address column
constexpr unsigned kNumRegs = 17;

// What libdw's CFI says about one register in the caller's frame, reduced to the forms
// x86-64 compilers emit.  Anything else sends the whole unwind to libdwfl.
struct RegRule {
  enum Kind : uint8_t {
    Unset,      // libdwfl would leave it unknown (undefined, register rule, libdw error)
    Undefined,  // DW_CFA_undefined: for the return address, the end of the stack
    Same,       // same value as in this frame
    AtCfa,      // saved at CFA + offset
    ValCfa,     // is CFA + offset
  };
  Kind kind = Unset;
  int32_t offset = 0;  // compilers' save slots and frame sizes; larger makes the rule unusable
};

// The unwind step for one pc, extracted once from libdw (dwarf_cfi_addrframe) so later
// unwinds through the same pc are a hash lookup and a few loads instead of a CFI program
// run with its allocations.  Semantics follow libdwfl's handle_cfi exactly; the test
// compares both paths.
struct UnwindRule {
  bool usable = false;  // false: not expressible here (expressions, no CFI), use libdwfl
  bool signal_frame = false;
  bool cfa_known = false;
  uint8_t cfa_reg = 0;
  int32_t cfa_offset = 0;
  RegRule regs[kNumRegs];
};

UnwindRule extract_rule(Dwarf_Frame* frame) {
  UnwindRule rule;
  Dwarf_Addr start, end;
  bool signal = false;
  if (dwarf_frame_info(frame, &start, &end, &signal) != static_cast<int>(kDwarfRip)) return rule;
  rule.signal_frame = signal;
  Dwarf_Op* ops = nullptr;
  size_t nops = 0;
  if (dwarf_frame_cfa(frame, &ops, &nops) != 0) return rule;
  if (nops == 1 && ops[0].atom == DW_OP_bregx && ops[0].number < kNumRegs) {
    rule.cfa_known = true;
    rule.cfa_reg = static_cast<uint8_t>(ops[0].number);
    auto offset = static_cast<int64_t>(ops[0].number2);
    if (offset != static_cast<int32_t>(offset)) return rule;
    rule.cfa_offset = static_cast<int32_t>(offset);
  } else if (nops != 0) {
    return rule;  // DW_CFA_def_cfa_expression (PLT stubs, realigned stacks, signal frames)
  }
  for (unsigned regno = 0; regno < kNumRegs; ++regno) {
    RegRule& r = rule.regs[regno];
    Dwarf_Op mem[3], *rops = nullptr;
    size_t n = 0;
    if (dwarf_frame_register(frame, static_cast<int>(regno), mem, &rops, &n) != 0) continue;
    if (n == 0) {
      r.kind = rops == mem ? RegRule::Undefined : rops == nullptr ? RegRule::Same : RegRule::Unset;
      continue;
    }
    if (n == 1 && rops[0].atom == DW_OP_regx) continue;  // libdwfl cannot evaluate it: Unset
    if (rops[0].atom != DW_OP_call_frame_cfa) return rule;
    size_t i = 1;
    if (i < n && rops[i].atom == DW_OP_plus_uconst) {
      auto offset = static_cast<int64_t>(rops[i++].number);  // negative offsets arrive wrapped
      if (offset != static_cast<int32_t>(offset)) return rule;
      r.offset = static_cast<int32_t>(offset);
    }
    bool value = i < n && rops[i].atom == DW_OP_stack_value;
    if (value) ++i;
    if (i != n) return rule;
    r.kind = value ? RegRule::ValCfa : RegRule::AtCfa;
  }
  rule.usable = true;
  return rule;
}

}  // namespace

struct Unwinder::Impl {
  const ModuleMap& modules;
  ArchElf arch;
  Dwfl* dwfl = nullptr;
  bool attached = false;
  pid_t tid = 1;

  struct Reported {
    Dwfl_Module* mod = nullptr;
    std::string name;
    Dwarf_Addr low = 0, high = 0;
  };
  absl::flat_hash_map<uint32_t, Reported> reported;  // module id -> its libdwfl module

  // The unwind in progress.  libdwfl's process state is attached once per Dwfl, so its
  // callbacks read the current snapshot from here rather than from per-call arguments.
  const arch::Registers* regs = nullptr;
  std::span<const uint8_t> stack;
  uint64_t stack_addr = 0;
  arch::MemoryAccess* fallback = nullptr;
  uint64_t* out = nullptr;
  size_t max_frames = 0, count = 0;
  uint64_t last_fp = 0, last_sp = 0, prev_pc = 0;
  bool last_fp_known = false;

  // pc used for the CFI lookup -> its rule; cleared when modules change.
  bool use_rules = true;
  absl::flat_hash_map<uint64_t, UnwindRule> rules;

  explicit Impl(const ModuleMap& m) : modules(m) {
    dwfl = dwfl_begin(&kOfflineCallbacks);
    if (m.pid() > 0) tid = m.pid();
  }
  ~Impl() {
    if (dwfl) dwfl_end(dwfl);  // before |arch| goes: the backend was opened on its Elf
  }

  void report();
  bool read_module_memory(uint64_t addr, uint64_t* result);
  bool read(uint64_t addr, uint64_t* result) {
    return read_word(stack, stack_addr, addr, result) || (fallback && fallback->read(addr, result, 8)) ||
           read_module_memory(addr, result);
  }
  const UnwindRule& rule_for(uint64_t pc);
  bool unwind_with_rules();

  static pid_t next_thread(Dwfl*, void* arg, void** thread_arg);
  static bool get_thread(Dwfl*, pid_t, void* arg, void** thread_arg);
  static bool memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg);
  static bool set_initial_registers(Dwfl_Thread* thread, void* thread_arg);
  static int frame(Dwfl_Frame* state, void* arg);
};

// One thread: whatever registers unwind() was given.
pid_t Unwinder::Impl::next_thread(Dwfl*, void* arg, void** thread_arg) {
  if (*thread_arg != nullptr) return 0;
  *thread_arg = arg;
  return static_cast<Impl*>(arg)->tid;
}

bool Unwinder::Impl::get_thread(Dwfl*, pid_t, void* arg, void** thread_arg) {
  *thread_arg = arg;
  return true;
}

bool Unwinder::Impl::set_initial_registers(Dwfl_Thread* thread, void* thread_arg) {
  auto* self = static_cast<Impl*>(thread_arg);
  auto regs = self->regs->dwarf();
  static_assert(sizeof(Dwarf_Word) == sizeof(uint64_t));
  return dwfl_thread_state_registers(thread, 0, regs.size(), reinterpret_cast<Dwarf_Word*>(regs.data()));
}

bool Unwinder::Impl::memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  uint64_t v;
  if (!static_cast<Impl*>(arg)->read(addr, &v)) return false;
  *result = v;
  return true;
}

const UnwindRule& Unwinder::Impl::rule_for(uint64_t pc) {
  auto [it, inserted] = rules.try_emplace(pc);
  if (!inserted) return it->second;
  if (rules.size() > 32768) {  // a JIT or a huge program: start over rather than grow
    rules.clear();
    it = rules.try_emplace(pc).first;
  }
  // Same order as libdwfl: .eh_frame, then .debug_frame.
  Dwfl_Module* mod = dwfl_addrmodule(dwfl, pc);
  if (!mod) return it->second;
  Dwarf_Addr bias = 0;
  Dwarf_Frame* frame = nullptr;
  Dwarf_CFI* cfi = dwfl_module_eh_cfi(mod, &bias);
  if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0) {
    frame = nullptr;
    cfi = dwfl_module_dwarf_cfi(mod, &bias);
    if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0) frame = nullptr;
  }
  if (frame) {
    it->second = extract_rule(frame);
    std::free(frame);
  }
  return it->second;
}

// The fast path.  Returns false when a frame needs what only libdwfl does (CFI
// expressions, no CFI at all: its frame-pointer guess), and the caller starts over there.
bool Unwinder::Impl::unwind_with_rules() {
  uint64_t vals[kNumRegs];
  auto initial = regs->dwarf();
  std::copy(initial.begin(), initial.end(), vals);
  uint32_t known = (1u << kNumRegs) - 1;
  uint64_t pc = vals[kDwarfRip];
  bool adjust = false;  // the initial frame and frames after a signal frame use the exact pc
  count = 0;
  out[count++] = pc;
  if (pc == 0) return true;
  while (count < max_frames) {
    const UnwindRule& rule = rule_for(adjust ? pc - 1 : pc);
    if (!rule.usable) return false;
    uint64_t cfa = 0;
    bool cfa_ok = rule.cfa_known && (known >> rule.cfa_reg & 1);
    if (cfa_ok) cfa = vals[rule.cfa_reg] + static_cast<uint64_t>(static_cast<int64_t>(rule.cfa_offset));
    uint64_t next[kNumRegs];
    uint32_t next_known = 0;
    for (unsigned r = 0; r < kNumRegs; ++r) {
      const RegRule& rr = rule.regs[r];
      switch (rr.kind) {
        case RegRule::Same:
          if (known >> r & 1) {
            next[r] = vals[r];
            next_known |= 1u << r;
          }
          break;
        case RegRule::AtCfa:
          if (cfa_ok && read(cfa + static_cast<uint64_t>(static_cast<int64_t>(rr.offset)), &next[r]))
            next_known |= 1u << r;
          break;
        case RegRule::ValCfa:
          if (cfa_ok) {
            next[r] = cfa + static_cast<uint64_t>(static_cast<int64_t>(rr.offset));
            next_known |= 1u << r;
          }
          break;
        default:
          break;
      }
    }
    // Undefined or unreadable return address, or 0: the outermost frame.
    if (!(next_known >> kDwarfRip & 1) || next[kDwarfRip] == 0) return true;
    uint64_t next_pc = next[kDwarfRip];
    bool sp_known = next_known >> kDwarfRsp & 1;
    if (sp_known && next[kDwarfRsp] == vals[kDwarfRsp] && (known >> kDwarfRsp & 1) && next_pc == pc)
      return true;  // no progress: would repeat until max_frames
    out[count++] = next_pc;
    std::copy(next, next + kNumRegs, vals);
    known = next_known;
    pc = next_pc;
    adjust = !rule.signal_frame;
  }
  return true;
}

// Read-only segments of a module are the same in memory as in its file (relocations go to
// writable segments), so CFI expressions that dereference code or rodata still work
// without touching the target.
bool Unwinder::Impl::read_module_memory(uint64_t addr, uint64_t* result) {
  Dwfl_Module* mod = dwfl_addrmodule(dwfl, addr);
  if (!mod) return false;
  Dwarf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(mod, &bias);
  if (!elf) return false;
  size_t file_size = 0;
  const char* file = elf_rawfile(elf, &file_size);
  size_t phnum = 0;
  if (!file || elf_getphdrnum(elf, &phnum) != 0) return false;
  uint64_t vaddr = addr - bias;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD || (ph.p_flags & PF_W))
      continue;
    if (vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_filesz || ph.p_filesz - (vaddr - ph.p_vaddr) < 8)
      continue;
    uint64_t off = ph.p_offset + (vaddr - ph.p_vaddr);
    if (off > file_size || file_size - off < 8) return false;
    std::memcpy(result, file + off, 8);
    return true;
  }
  return false;
}

int Unwinder::Impl::frame(Dwfl_Frame* state, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  Dwarf_Addr pc;
  if (!dwfl_frame_pc(state, &pc, nullptr) || pc == 0) return DWARF_CB_ABORT;
  Dwarf_Word sp = 0, fp = 0;
  bool sp_known = dwfl_frame_reg(state, kDwarfRsp, &sp) == 0;
  // A frame identical to the previous one would repeat until max_frames.
  if (self->count > 0 && sp_known && sp == self->last_sp && pc == self->prev_pc) return DWARF_CB_ABORT;
  self->out[self->count++] = pc;
  self->prev_pc = pc;
  if (sp_known) self->last_sp = sp;
  self->last_fp_known = dwfl_frame_reg(state, kDwarfRbp, &fp) == 0;
  self->last_fp = fp;
  return self->count >= self->max_frames ? DWARF_CB_ABORT : DWARF_CB_OK;
}

void Unwinder::Impl::report() {
  if (!dwfl) return;
  dwfl_report_begin(dwfl);
  absl::flat_hash_map<uint32_t, Reported> still;
  for (const auto& m : modules.all()) {
    if (!m.loaded() || !m.executable_mapped) continue;
    if (auto it = reported.find(m.id); it != reported.end()) {
      // Same name and range: libdwfl keeps the module with its Elf and CFI caches.
      Reported r = it->second;
      r.mod = dwfl_report_module(dwfl, r.name.c_str(), r.low, r.high);
      if (r.mod) still.emplace(m.id, std::move(r));
      continue;
    }
    std::string file = m.open_path;
    if (is_vdso(m)) {
      uint64_t size = 0;
      file = detail::vdso_file(&size);
      if (file.empty() || size != m.end - m.start) continue;
    }
    // Never m.path itself: in ptmem's mount namespace it may be another file (module_map.hpp).
    std::unique_ptr<ElfImage> image = file.empty() ? nullptr : ElfImage::open(file);
    if (!image || !image->is_x86_64()) continue;
    Reported r;
    // Unique per load: libdwfl would take a reloaded library at the same place for the old
    // module, and refuse it if the path it is opened by differs.
    r.name = m.path + " #" + std::to_string(m.id);
    // add_p_vaddr with base = bias: libdwfl places the module by its PT_LOADs.
    r.mod = dwfl_report_elf(dwfl, r.name.c_str(), file.c_str(), -1, load_bias(m, *image), true);
    if (!r.mod) continue;
    dwfl_module_info(r.mod, nullptr, &r.low, &r.high, nullptr, nullptr, nullptr, nullptr);
    still.emplace(m.id, std::move(r));
  }
  dwfl_report_end(dwfl, nullptr, nullptr);
  reported = std::move(still);
  rules.clear();  // code at a cached pc may now belong to another module
  static const Dwfl_Thread_Callbacks callbacks = {
      .next_thread = next_thread,
      .get_thread = get_thread,
      .memory_read = memory_read,
      .set_initial_registers = set_initial_registers,
      .detach = nullptr,
      .thread_detach = nullptr,
  };
  if (!attached && arch.elf) attached = dwfl_attach_state(dwfl, arch.elf, tid, &callbacks, this);
}

Unwinder::Unwinder(const ModuleMap& modules) : impl_(std::make_unique<Impl>(modules)) {
  impl_->report();
}

Unwinder::~Unwinder() = default;

void Unwinder::modules_changed() { impl_->report(); }

void Unwinder::set_rule_cache(bool enabled) { impl_->use_rules = enabled; }

std::optional<CompactRule> Unwinder::compact_rule(uint64_t pc, bool adjusted) {
  Impl& s = *impl_;
  if (!s.attached || pc == 0) return std::nullopt;
  const UnwindRule& rule = s.rule_for(adjusted ? pc - 1 : pc);
  if (!rule.usable || rule.signal_frame) return std::nullopt;
  CompactRule c;
  const RegRule& ra = rule.regs[kDwarfRip];
  if (ra.kind == RegRule::Undefined) {
    c.end = true;
    return c;
  }
  if (!rule.cfa_known || (rule.cfa_reg != kDwarfRsp && rule.cfa_reg != kDwarfRbp)) return std::nullopt;
  const RegRule& sp = rule.regs[kDwarfRsp];
  if (ra.kind != RegRule::AtCfa || sp.kind != RegRule::ValCfa || sp.offset != 0) return std::nullopt;
  c.cfa_reg = rule.cfa_reg;
  c.cfa_offset = rule.cfa_offset;
  c.ra_offset = ra.offset;
  const RegRule& fp = rule.regs[kDwarfRbp];
  switch (fp.kind) {
    case RegRule::Same: c.rbp = CompactRule::RbpSame; break;
    case RegRule::AtCfa: c.rbp = CompactRule::RbpAtCfa; c.rbp_offset = fp.offset; break;
    case RegRule::ValCfa: return std::nullopt;
    default: c.rbp = CompactRule::RbpUnknown; break;
  }
  return c;
}

size_t Unwinder::unwind(const arch::Registers& regs, std::span<const uint8_t> stack,
                        arch::MemoryAccess* fallback, size_t max_frames, uint64_t* out) {
  if (max_frames == 0) return 0;
  Impl& s = *impl_;
  s.regs = &regs;
  s.stack = stack;
  s.stack_addr = regs.sp();
  s.fallback = fallback;
  s.out = out;
  s.max_frames = max_frames;
  s.count = 0;
  s.last_sp = regs.sp();
  s.last_fp = regs.raw.rbp;
  s.last_fp_known = true;
  s.prev_pc = 0;
  if (s.attached && s.use_rules && s.unwind_with_rules()) {
    s.regs = nullptr;
    s.fallback = nullptr;
    s.out = nullptr;
    return std::max<size_t>(s.count, 1);
  }
  s.count = 0;
  int rc = s.attached ? dwfl_getthread_frames(s.dwfl, s.tid, Impl::frame, &s) : -1;
  if (s.count == 0) out[s.count++] = regs.ip();
  // rc -1: libdwfl hit an error (no CFI and no usable rbp, memory it could not read).
  // 0 is the outermost frame (undefined return address), DWARF_CB_ABORT our own stop.
  if (rc == -1 && s.count < max_frames && s.last_fp_known)
    s.count = walk_frame_pointers(stack, regs.sp(), s.last_fp, s.last_sp, &s.modules, s.count,
                                  max_frames, out);
  s.regs = nullptr;
  s.fallback = nullptr;
  s.out = nullptr;
  return s.count;
}

size_t Unwinder::walk_frame_pointers(std::span<const uint8_t> stack, uint64_t stack_addr, uint64_t fp,
                                     uint64_t min_fp, const ModuleMap* modules, size_t count,
                                     size_t max_frames, uint64_t* out) {
  while (count < max_frames) {
    uint64_t next_fp, ret;
    if (fp % 8 != 0 || fp < min_fp) break;
    if (!read_word(stack, stack_addr, fp, &next_fp) || !read_word(stack, stack_addr, fp + 8, &ret)) break;
    if (ret == 0 || (modules && !modules->find(ret))) break;
    out[count++] = ret;
    if (next_fp <= fp) break;
    min_fp = fp + 16;
    fp = next_fp;
  }
  return count;
}

}  // namespace ptmem::symbols
