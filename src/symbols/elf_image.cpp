#include "ptmem/symbols/elf_image.hpp"

#include <absl/container/flat_hash_map.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ptmem::symbols {
namespace {

void init_libelf() {
  // elf_version must precede any other libelf call; a function-local static makes it
  // happen exactly once and thread-safely.
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  (void)ok;
}

// One symbol table flattened into a hash index.  Built on first lookup: opening an image
// to read its header (bias, class) must stay cheap, and the .symtab of a large C++
// binary can hold hundreds of thousands of names.
struct SymbolIndex {
  struct Entry {
    uint64_t value = 0;
    uint64_t size = 0;
    uint8_t type = STT_NOTYPE;
    uint8_t rank = 0;  // lower is better, see rank_of()
  };
  bool built = false;
  // Keys point into the image's string table, which lives as long as the Elf handle.
  absl::flat_hash_map<std::string_view, Entry> by_name;
};

// Several definitions of one name: versioned duplicates in .dynsym (memcpy@@GLIBC_2.14
// and the hidden memcpy@GLIBC_2.2.5) or a local and a global of the same name in
// .symtab.  The one a new link would bind to wins: global/weak before local, default
// version before hidden version, global before weak.
uint8_t rank_of(uint8_t bind, bool hidden_version) {
  uint8_t rank = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 4;
  if (hidden_version) rank += 2;
  return rank;
}

}  // namespace

struct ElfImage::Impl {
  int fd = -1;
  Elf* elf = nullptr;
  GElf_Ehdr ehdr{};
  uint64_t first_load_vaddr = 0;
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* symtab = nullptr;
  Elf_Scn* versym = nullptr;  // parallel to .dynsym
  mutable SymbolIndex dyn_index, sym_index;

  ~Impl() {
    if (elf) elf_end(elf);
    if (fd >= 0) ::close(fd);
  }

  void build(SymbolIndex& index, Elf_Scn* scn, bool with_versions) const;
  const SymbolIndex::Entry* lookup(std::string_view name, bool functions_only) const;
};

void ElfImage::Impl::build(SymbolIndex& index, Elf_Scn* scn, bool with_versions) const {
  index.built = true;
  if (scn == nullptr) return;
  GElf_Shdr shdr;
  if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_entsize == 0) return;
  // elf_getdata checks the section lies inside the file; gelf_getsym checks each index
  // against the data size, elf_strptr checks the name offset and its terminator.
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (data == nullptr) return;
  Elf_Data* versions = nullptr;
  if (with_versions && versym) versions = elf_getdata(versym, nullptr);
  // gelf_getsym reads entries of the file class's real size whatever sh_entsize says; a
  // hostile sh_entsize of 1 would only inflate the reservation (24 times the symbols).
  const size_t sym_size = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
  size_t count = data->d_size / std::max<size_t>(shdr.sh_entsize, sym_size ? sym_size : 1);
  index.by_name.reserve(count);
  for (size_t i = 1; i < count; ++i) {
    GElf_Sym sym;
    if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) break;
    if (sym.st_shndx == SHN_UNDEF || sym.st_name == 0) continue;
    const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
    if (name == nullptr || *name == '\0') continue;
    bool hidden = false;
    if (versions) {
      GElf_Versym v;
      if (gelf_getversym(versions, static_cast<int>(i), &v) != nullptr)
        hidden = (v & 0x8000) != 0;
    }
    SymbolIndex::Entry entry{sym.st_value, sym.st_size, static_cast<uint8_t>(GELF_ST_TYPE(sym.st_info)),
                             rank_of(static_cast<uint8_t>(GELF_ST_BIND(sym.st_info)), hidden)};
    auto [it, inserted] = index.by_name.try_emplace(std::string_view(name), entry);
    if (!inserted && entry.rank < it->second.rank) it->second = entry;
  }
}

const SymbolIndex::Entry* ElfImage::Impl::lookup(std::string_view name, bool functions_only) const {
  auto accept = [&](const SymbolIndex::Entry& e) {
    if (!functions_only) return true;
    bool global_or_weak = e.rank < 4;
    return global_or_weak && (e.type == STT_FUNC || e.type == STT_GNU_IFUNC);
  };
  if (!dyn_index.built) build(dyn_index, dynsym, true);
  if (auto it = dyn_index.by_name.find(name); it != dyn_index.by_name.end() && accept(it->second))
    return &it->second;
  if (!sym_index.built) build(sym_index, symtab, false);
  if (auto it = sym_index.by_name.find(name); it != sym_index.by_name.end() && accept(it->second))
    return &it->second;
  return nullptr;
}

std::unique_ptr<ElfImage> ElfImage::open(const std::string& path, std::string* error) {
  init_libelf();
  auto fail = [&](std::string why) -> std::unique_ptr<ElfImage> {
    if (error) *error = std::move(why);
    return nullptr;
  };
  auto impl = std::make_unique<Impl>();
  impl->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (impl->fd < 0) return fail("cannot open " + path + ": " + std::strerror(errno));
  // READ_MMAP: the file is mapped privately, nothing is written back.  libelf checks the
  // header, program and section header tables against the file size here.
  impl->elf = elf_begin(impl->fd, ELF_C_READ_MMAP, nullptr);
  if (impl->elf == nullptr || elf_kind(impl->elf) != ELF_K_ELF)
    return fail(path + ": not an ELF file");
  if (gelf_getehdr(impl->elf, &impl->ehdr) == nullptr)
    return fail(path + ": bad ELF header: " + elf_errmsg(-1));
  // libelf quietly treats header tables that run past the end of the file as empty; a
  // truncated file is an error here, not an image without symbols.
  struct stat st;
  if (::fstat(impl->fd, &st) != 0) return fail("cannot stat " + path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  auto table_fits = [size](uint64_t offset, uint64_t entsize, uint64_t count) {
    return count == 0 || (entsize != 0 && offset <= size && (size - offset) / entsize >= count);
  };
  const GElf_Ehdr& eh = impl->ehdr;
  if (!table_fits(eh.e_phoff, eh.e_phentsize, eh.e_phnum)) return fail(path + ": truncated program headers");
  // e_shnum 0 with a table means extended numbering: at least entry 0 must be there.
  if (eh.e_shoff != 0 && !table_fits(eh.e_shoff, eh.e_shentsize, eh.e_shnum ? eh.e_shnum : 1))
    return fail(path + ": truncated section headers");

  size_t phnum = 0;
  if (elf_getphdrnum(impl->elf, &phnum) != 0) return fail(path + ": bad program headers");
  bool have_load = false;
  uint64_t lowest = 0;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(impl->elf, static_cast<int>(i), &ph) == nullptr)
      return fail(path + ": truncated program headers");
    if (ph.p_type != PT_LOAD) continue;
    if (!have_load || ph.p_vaddr < lowest) lowest = ph.p_vaddr;
    have_load = true;
  }
  impl->first_load_vaddr = lowest & ~uint64_t{0xfff};

  size_t shnum = 0;
  if (elf_getshdrnum(impl->elf, &shnum) != 0) return fail(path + ": bad section headers");
  for (Elf_Scn* scn = elf_nextscn(impl->elf, nullptr); scn; scn = elf_nextscn(impl->elf, scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr) return fail(path + ": truncated section headers");
    if (sh.sh_type == SHT_DYNSYM && !impl->dynsym) impl->dynsym = scn;
    else if (sh.sh_type == SHT_SYMTAB && !impl->symtab) impl->symtab = scn;
    else if (sh.sh_type == SHT_GNU_versym && !impl->versym) impl->versym = scn;
  }
  std::unique_ptr<ElfImage> image(new ElfImage());
  image->impl_ = std::move(impl);
  return image;
}

ElfImage::~ElfImage() = default;

bool ElfImage::is_x86_64() const {
  return impl_->ehdr.e_ident[EI_CLASS] == ELFCLASS64 && impl_->ehdr.e_machine == EM_X86_64;
}
bool ElfImage::is_32bit() const { return impl_->ehdr.e_ident[EI_CLASS] == ELFCLASS32; }
bool ElfImage::is_dynamic_object() const { return impl_->ehdr.e_type == ET_DYN; }
uint64_t ElfImage::entry() const { return impl_->ehdr.e_entry; }
uint64_t ElfImage::first_load_vaddr() const { return impl_->first_load_vaddr; }

std::optional<uint64_t> ElfImage::function(std::string_view name, bool* is_ifunc, uint64_t* size) const {
  const auto* e = impl_->lookup(name, true);
  if (!e) return std::nullopt;
  if (is_ifunc) *is_ifunc = e->type == STT_GNU_IFUNC;
  if (size) *size = e->size;
  return e->value;
}

std::optional<uint64_t> ElfImage::symbol(std::string_view name) const {
  const auto* e = impl_->lookup(name, false);
  if (!e) return std::nullopt;
  return e->value;
}

}  // namespace ptmem::symbols
