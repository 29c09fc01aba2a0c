#include "ptmem/symbols/unwinder.hpp"

#include <absl/container/flat_hash_map.h>
#include <cstring>
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

  explicit Impl(const ModuleMap& m) : modules(m) {
    dwfl = dwfl_begin(&kOfflineCallbacks);
    if (m.pid() > 0) tid = m.pid();
  }
  ~Impl() {
    if (dwfl) dwfl_end(dwfl);  // before |arch| goes: the backend was opened on its Elf
  }

  void report();
  bool read_module_memory(uint64_t addr, uint64_t* result);

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
  auto* self = static_cast<Impl*>(arg);
  uint64_t v;
  if (read_word(self->stack, self->stack_addr, addr, &v) ||
      (self->fallback && self->fallback->read(addr, &v, sizeof v)) || self->read_module_memory(addr, &v)) {
    *result = v;
    return true;
  }
  return false;
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
    std::unique_ptr<ElfImage> image = ElfImage::open(file);
    if (!image && file != m.path && !is_vdso(m)) image = ElfImage::open(file = m.path);
    if (!image || !image->is_x86_64()) continue;
    Reported r;
    r.name = m.path;
    // add_p_vaddr with base = bias: libdwfl places the module by its PT_LOADs.
    r.mod = dwfl_report_elf(dwfl, r.name.c_str(), file.c_str(), -1, load_bias(m, *image), true);
    if (!r.mod) continue;
    dwfl_module_info(r.mod, nullptr, &r.low, &r.high, nullptr, nullptr, nullptr, nullptr);
    still.emplace(m.id, std::move(r));
  }
  dwfl_report_end(dwfl, nullptr, nullptr);
  reported = std::move(still);
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
