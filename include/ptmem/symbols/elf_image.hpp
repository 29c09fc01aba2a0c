// One ELF file on disk, read through libelf with every offset bounds-checked: the target's
// binaries are untrusted input.  Used to find the functions to put breakpoints on.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ptmem::symbols {

class ElfImage {
 public:
  /// Opens |path| read-only.  nullptr and |error| ("not an ELF file", "cannot open ...").
  static std::unique_ptr<ElfImage> open(const std::string& path, std::string* error = nullptr);
  ~ElfImage();
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;

  bool is_x86_64() const;     ///< ELFCLASS64 and EM_X86_64
  bool is_32bit() const;      ///< ELFCLASS32 (for the "32-bit target" error)
  bool is_dynamic_object() const;  ///< ET_DYN (PIE or shared library) vs ET_EXEC
  uint64_t entry() const;     ///< e_entry (unrelocated)

  /// Link-time address (st_value) of a defined function symbol: STT_FUNC or STT_GNU_IFUNC,
  /// global or weak, section != SHN_UNDEF; .dynsym first, then .symtab.  |is_ifunc| tells
  /// whether it is an IFUNC resolver rather than the function itself; |size| gets st_size
  /// (0 when the symbol does not say).
  std::optional<uint64_t> function(std::string_view name, bool* is_ifunc = nullptr,
                                   uint64_t* size = nullptr) const;
  /// Any defined symbol (objects included, e.g. "_r_debug"), same lookup order.
  std::optional<uint64_t> symbol(std::string_view name) const;
  /// Lowest PT_LOAD p_vaddr rounded down to the page: load bias = (address of the mapping
  /// at file offset 0) - first_load_vaddr().
  uint64_t first_load_vaddr() const;

 private:
  ElfImage() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ptmem::symbols
