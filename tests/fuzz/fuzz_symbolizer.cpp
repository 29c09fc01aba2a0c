// A hostile ELF (symbols, .debug_info, .debug_line, .eh_frame, .debug_frame) as a loaded
// module: Symbolizer (libdw line and function lookup), Unwinder::compact_rule (the CFI
// rules published to the agent) and Unwinder::unwind over a stack taken from the input.
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <vector>

#include "fuzz_common.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/symbols/elf_image.hpp"
#include "ptmem/symbols/module_map.hpp"
#include "ptmem/symbols/symbolizer.hpp"
#include "ptmem/symbols/unwinder.hpp"

namespace {

// Link-time addresses worth asking about: the entry point and the first function
// symbols (read with libelf's own checks; at most 16 looked at).
std::vector<uint64_t> interesting_addresses(const std::string& path) {
  std::vector<uint64_t> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  if (Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
    GElf_Ehdr eh;
    if (gelf_getehdr(elf, &eh)) out.push_back(eh.e_entry);
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn && out.size() < 16; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || sh.sh_entsize == 0)
        continue;
      Elf_Data* d = elf_getdata(scn, nullptr);
      if (!d) continue;
      size_t n = d->d_size / sh.sh_entsize;
      for (size_t i = 1; i < n && i < 64 && out.size() < 16; ++i) {
        GElf_Sym sym;
        if (gelf_getsym(d, static_cast<int>(i), &sym) && GELF_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_value)
          out.push_back(sym.st_value + sym.st_size / 2);
      }
    }
    elf_end(elf);
  }
  ::close(fd);
  return out;
}

}  // namespace

// libdw 0.188's dwarf_getscopes leaks its scope array when its second pass (abstract
// origins) fails on malformed DWARF: it neither returns nor frees it, so ptmem cannot.
// ptmem calls it once per (module, pc) it caches: at most one array per report frame.
// The suppression needs full malloc stacks: libdw has no frame pointers, and the fast
// unwinder stops inside it before reaching dwarf_getscopes.
extern "C" const char* __lsan_default_suppressions() { return "leak:dwarf_getscopes\n"; }
extern "C" const char* __asan_default_options() { return "fast_unwind_on_malloc=0"; }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::unsetenv("DEBUGINFOD_URLS");  // never go to the network for a fuzzed build-id
  elf_version(EV_CURRENT);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ptmem::fuzz::MemFile file(data, size);
  uint64_t first_load = 0;
  if (auto image = ptmem::symbols::ElfImage::open(file.path())) first_load = image->first_load_vaddr();

  // One r-xp mapping of the file at offset 0, as /proc/PID/maps would show it.
  constexpr uint64_t kBase = 0x7f0000000000;
  ptmem::proc::Mapping m;
  m.start = kBase;
  m.end = kBase + 0x100000;
  m.read = m.exec = true;
  m.inode = 1;
  m.path = file.path();
  ptmem::symbols::ModuleMap modules;  // pid 0: the path is opened as it is
  modules.update({m});
  const uint64_t bias = kBase - first_load;

  std::vector<uint64_t> pcs;
  for (uint64_t a : interesting_addresses(file.path())) pcs.push_back(a + bias);
  pcs.push_back(kBase + (size > 64 ? data[size - 1] * 16u : 0));

  ptmem::symbols::Symbolizer symbolizer(modules);
  for (uint64_t pc : pcs)
    for (bool ret : {false, true}) (void)symbolizer.symbolize(pc, modules.generation(), ret);

  ptmem::symbols::Unwinder unwinder(modules);
  // The input's first bytes stand for the stack: saved registers and return addresses.
  std::vector<uint8_t> stack(data, data + std::min<size_t>(size, 512));
  for (uint64_t pc : pcs) {
    (void)unwinder.compact_rule(pc, false);
    (void)unwinder.compact_rule(pc, true);
    ptmem::arch::Registers regs;
    regs.raw.rip = pc;
    regs.raw.rsp = 0x7ffd00000000;
    regs.raw.rbp = regs.raw.rsp + 64;
    uint64_t out[32];
    size_t n = unwinder.unwind(regs, stack, nullptr, 32, out);
    PTMEM_FUZZ_CHECK(n >= 1 && n <= 32);
  }
  return 0;
}
