#include "ptmem/symbols/symbolizer.hpp"

#include <absl/container/flat_hash_map.h>
#include <cstdlib>
#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <tuple>

#include "vdso.hpp"

namespace ptmem::symbols {
namespace {

char* debuginfo_path = nullptr;
const Dwfl_Callbacks kOfflineCallbacks = {
    .find_elf = nullptr,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

constexpr uint32_t kNoModule = UINT32_MAX;

bool is_function_scope(int tag) {
  return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_entry_point;
}

bool is_cplusplus(Dwarf_Die* die) {
  Dwarf_Die cu;
  if (!dwarf_diecu(die, &cu, nullptr, nullptr)) return false;
  switch (dwarf_srclang(&cu)) {
    case DW_LANG_C_plus_plus:
    case DW_LANG_C_plus_plus_03:
    case DW_LANG_C_plus_plus_11:
    case DW_LANG_C_plus_plus_14:
      return true;
    default:
      return false;
  }
}

// "ns::Class::" for a C++ function without a linkage name (internal linkage: static
// functions, functions in an anonymous namespace), from the parents of its declaration.
std::string cxx_scope_prefix(Dwarf_Die* die) {
  Dwarf_Die decl = *die, next;
  Dwarf_Attribute attr;
  for (int hop = 0; hop < 4; ++hop) {  // inlined instance -> abstract origin -> declaration
    if ((dwarf_attr(&decl, DW_AT_abstract_origin, &attr) || dwarf_attr(&decl, DW_AT_specification, &attr)) &&
        dwarf_formref_die(&attr, &next))
      decl = next;
    else
      break;
  }
  Dwarf_Die* parents = nullptr;
  int n = dwarf_getscopes_die(&decl, &parents);
  std::string prefix;
  for (int i = n - 1; i >= 1; --i) {
    int tag = dwarf_tag(&parents[i]);
    if (tag != DW_TAG_namespace && tag != DW_TAG_class_type && tag != DW_TAG_structure_type &&
        tag != DW_TAG_union_type)
      continue;
    const char* name = dwarf_diename(&parents[i]);
    prefix += name ? name : "(anonymous namespace)";
    prefix += "::";
  }
  std::free(parents);
  return prefix;
}

// Linkage name first: it carries namespaces, classes and parameter types once demangled.
std::string die_function_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
  if (!name) name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
  if (name) return demangle(name);
  name = dwarf_diename(die);
  if (!name) return std::string();
  return is_cplusplus(die) ? cxx_scope_prefix(die) + name : std::string(name);
}

// The call site of an inlined instance: DW_AT_call_file indexes its unit's file table.
void call_site(Dwarf_Die* inlined, SourceFrame& frame) {
  Dwarf_Attribute attr;
  Dwarf_Word value;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &value) == 0)
    frame.line = static_cast<int>(value);
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_column, &attr), &value) == 0)
    frame.column = static_cast<int>(value);
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &value) == 0) {
    Dwarf_Die cu;
    Dwarf_Files* files = nullptr;
    size_t nfiles = 0;
    if (dwarf_diecu(inlined, &cu, nullptr, nullptr) && dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 &&
        value < nfiles) {
      const char* file = dwarf_filesrc(files, value, nullptr, nullptr);
      if (file) frame.file = file;
    }
  }
}

}  // namespace

std::string demangle(const std::string& name) {
  // Itanium C++ and legacy Rust both start with _Z; anything else is left alone.
  if (name.size() < 3 || name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* out = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (status != 0 || !out) {
    std::free(out);
    return name;
  }
  std::string result(out);
  std::free(out);
  return result;
}

struct Symbolizer::Impl {
  const ModuleMap& modules;

  // One offline Dwfl per file, the file reported at its link-time addresses (bias 0): a
  // library loaded at several addresses over time (dlopen, dlclose, dlopen) is parsed once,
  // and modules that are gone never overlap the ones that replaced them.
  struct File {
    Dwfl* dwfl = nullptr;
    Dwfl_Module* mod = nullptr;
    uint64_t first_load_vaddr = 0;
    ~File() {
      if (dwfl) dwfl_end(dwfl);
    }
  };
  absl::flat_hash_map<std::string, std::unique_ptr<File>> files;  // by the path opened
  absl::flat_hash_map<uint32_t, File*> by_module;                  // null: cannot be opened

  using PcKey = std::tuple<uint64_t, uint64_t, bool>;        // pc, generation, return address
  using ModuleKey = std::tuple<uint32_t, uint64_t, bool>;    // module id, pc, return address
  absl::flat_hash_map<ModuleKey, std::unique_ptr<std::vector<SourceFrame>>> frames;
  absl::flat_hash_map<PcKey, const std::vector<SourceFrame>*> by_pc;

  explicit Impl(const ModuleMap& m) : modules(m) {}

  File* file_for(const Module& m);
  File* open_file(const std::string& path);
  void describe(const Module& m, uint64_t pc, uint64_t lookup, std::vector<SourceFrame>& out);
};

Symbolizer::Impl::File* Symbolizer::Impl::open_file(const std::string& path) {
  auto [it, inserted] = files.try_emplace(path);
  if (!inserted) return it->second.get();
  auto file = std::make_unique<File>();
  file->dwfl = dwfl_begin(&kOfflineCallbacks);
  if (!file->dwfl) return nullptr;
  dwfl_report_begin(file->dwfl);
  file->mod = dwfl_report_elf(file->dwfl, path.c_str(), path.c_str(), -1, 0, true);
  dwfl_report_end(file->dwfl, nullptr, nullptr);
  if (!file->mod) return nullptr;  // the entry stays null: not retried
  Dwarf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(file->mod, &bias);
  size_t phnum = 0;
  if (!elf || elf_getphdrnum(elf, &phnum) != 0) return nullptr;
  bool have_load = false;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
    if (!have_load || ph.p_vaddr < file->first_load_vaddr) file->first_load_vaddr = ph.p_vaddr;
    have_load = true;
  }
  // Same rounding as ElfImage::first_load_vaddr, so Module::base lines up.
  file->first_load_vaddr &= ~uint64_t{0xfff};
  it->second = std::move(file);
  return it->second.get();
}

Symbolizer::Impl::File* Symbolizer::Impl::file_for(const Module& m) {
  auto [it, inserted] = by_module.try_emplace(m.id, nullptr);
  if (!inserted) return it->second;
  File* file = nullptr;
  if (is_vdso(m)) {
    uint64_t size = 0;
    const std::string& path = detail::vdso_file(&size);
    if (!path.empty() && size == m.end - m.start) file = open_file(path);
  } else {
    // No fallback to m.path: the module map pinned the target's own file while it was
    // alive (reports are often written after it exits), and the same path in ptmem's mount
    // namespace may be another file.
    if (!m.open_path.empty()) file = open_file(m.open_path);
  }
  it->second = file;
  return file;
}

void Symbolizer::Impl::describe(const Module& m, uint64_t pc, uint64_t lookup,
                                std::vector<SourceFrame>& out) {
  SourceFrame base;
  base.address = pc;
  base.module = m.path;
  base.module_offset = pc - m.base;
  File* file = file_for(m);
  if (!file) {
    out.push_back(std::move(base));
    return;
  }
  // Run-time address -> the file's link-time address, which is where libdwfl put it.
  Dwarf_Addr addr = lookup - (m.base - file->first_load_vaddr);

  // The line row for the pc itself: the innermost frame's location.
  SourceFrame inner = base;
  if (Dwfl_Line* line = dwfl_module_getsrc(file->mod, addr)) {
    int lineno = 0, column = 0;
    const char* src = dwfl_lineinfo(line, nullptr, &lineno, &column, nullptr, nullptr);
    if (src) inner.file = src;
    inner.line = lineno;
    inner.column = column;
  }

  // Scopes, as eu-stack -i: the innermost function scope at the pc, then its physical DIE
  // parents; each inlined instance tells where in its caller it was inlined.
  Dwarf_Addr cu_bias = 0;
  Dwarf_Die* cudie = dwfl_module_addrdie(file->mod, addr, &cu_bias);
  Dwarf_Die* scopes = nullptr;
  int nscopes = cudie ? dwarf_getscopes(cudie, addr - cu_bias, &scopes) : 0;
  int innermost = -1;
  for (int i = 0; i < nscopes; ++i) {
    if (is_function_scope(dwarf_tag(&scopes[i]))) {
      innermost = i;
      break;
    }
  }
  if (innermost >= 0) {
    Dwarf_Die* chain = nullptr;
    int nchain = dwarf_getscopes_die(&scopes[innermost], &chain);
    if (nchain > 0) {
      // chain[0] is the innermost function scope itself.
      SourceFrame frame = inner;
      frame.function = die_function_name(&chain[0]);
      frame.inlined = dwarf_tag(&chain[0]) == DW_TAG_inlined_subroutine;
      Dwarf_Die* last = &chain[0];
      bool done = !frame.inlined;
      out.push_back(std::move(frame));
      for (int i = 1; i < nchain && !done; ++i) {
        int tag = dwarf_tag(&chain[i]);
        if (!is_function_scope(tag)) continue;
        SourceFrame caller = base;
        caller.function = die_function_name(&chain[i]);
        call_site(last, caller);
        caller.inlined = tag == DW_TAG_inlined_subroutine;
        done = !caller.inlined;
        out.push_back(std::move(caller));
        last = &chain[i];
      }
    }
    std::free(chain);
  }
  std::free(scopes);
  if (!out.empty() && !out.back().function.empty()) return;

  // No DWARF function: the ELF symbol table (.symtab from the debug file if any, else
  // .dynsym), keeping whatever line information there was.
  if (out.empty()) out.push_back(std::move(inner));
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* name = dwfl_module_addrinfo(file->mod, addr, &offset, &sym, nullptr, nullptr, nullptr);
  if (name) out.back().function = demangle(name);
}

Symbolizer::Symbolizer(const ModuleMap& modules) : impl_(std::make_unique<Impl>(modules)) {}
Symbolizer::~Symbolizer() = default;

const std::vector<SourceFrame>& Symbolizer::symbolize(uint64_t pc, uint64_t generation,
                                                      bool is_return_address) {
  Impl& s = *impl_;
  Impl::PcKey pc_key{pc, generation, is_return_address};
  if (auto it = s.by_pc.find(pc_key); it != s.by_pc.end()) return *it->second;

  const Module* m = s.modules.find(pc, generation);
  Impl::ModuleKey key{m ? m->id : kNoModule, pc, is_return_address};
  auto [it, inserted] = s.frames.try_emplace(key);
  if (inserted) {
    it->second = std::make_unique<std::vector<SourceFrame>>();
    // A return address points after the call; pc - 1 is inside the call instruction,
    // on the call's line and in the right (possibly inlined) scope.
    uint64_t lookup = is_return_address && pc > 0 ? pc - 1 : pc;
    if (m) {
      s.describe(*m, pc, lookup, *it->second);
    } else {
      SourceFrame unknown;
      unknown.address = pc;
      it->second->push_back(std::move(unknown));
    }
  }
  s.by_pc.emplace(pc_key, it->second.get());
  return *it->second;
}

}  // namespace ptmem::symbols
