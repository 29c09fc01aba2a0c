// ElfImage on a hostile ELF: what tests/fuzz found, or review of its harness found.
#include <doctest/doctest.h>

#include <cstring>
#include <elf.h>
#include <fstream>
#include <malloc.h>
#include <string>

#include "../support/process.hpp"
#include "ptmem/symbols/elf_image.hpp"

using ptmem::symbols::ElfImage;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("elf image, hostile: a symbol table's sh_entsize of 1 does not inflate its index") {
  // libc with its .gnu_debuglink section turned into a 2 MB .symtab of null symbols whose
  // sh_entsize says 1.  The index was reserved for d_size / sh_entsize = 2M entries
  // (170 MB of hash table) where only d_size / 24 = 87381 symbols can be.
  std::string elf = read_bytes("/lib/x86_64-linux-gnu/libc.so.6");
  REQUIRE(elf.size() > sizeof(Elf64_Ehdr));
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof eh);
  REQUIRE(eh.e_shentsize == sizeof(Elf64_Shdr));
  REQUIRE(eh.e_shoff + uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) <= elf.size());
  auto shdr = [&](size_t i) { return reinterpret_cast<Elf64_Shdr*>(elf.data() + eh.e_shoff) + i; };
  const Elf64_Shdr* names = shdr(eh.e_shstrndx);
  Elf64_Shdr* victim = nullptr;
  uint32_t dynstr = 0;
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    const char* name = elf.data() + names->sh_offset + shdr(i)->sh_name;
    if (std::strcmp(name, ".gnu_debuglink") == 0) victim = shdr(i);
    if (std::strcmp(name, ".dynstr") == 0) dynstr = static_cast<uint32_t>(i);
  }
  REQUIRE(victim != nullptr);
  REQUIRE(dynstr != 0);
  constexpr uint64_t kTable = 87381 * sizeof(Elf64_Sym);  // libelf wants whole entries
  victim->sh_type = SHT_SYMTAB;
  victim->sh_offset = (elf.size() + 7) & ~uint64_t{7};
  victim->sh_size = kTable;
  victim->sh_entsize = 1;
  victim->sh_link = dynstr;
  victim->sh_addralign = 8;
  elf.resize(victim->sh_offset + kTable, '\0');

  std::string path = ptmem::test::temp_dir() + "/libc_symtab_entsize1.so";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(elf.data(), static_cast<std::streamsize>(elf.size()));
    REQUIRE(out.good());
  }
  std::string error;
  auto image = ElfImage::open(path, &error);
  REQUIRE_MESSAGE(image, error);
  const size_t mapped_before = mallinfo2().hblkhd;
  CHECK(image->function("malloc").has_value());            // .dynsym still works
  CHECK_FALSE(image->function("no_such_function_anywhere"));  // builds the .symtab index
  const size_t grown = mallinfo2().hblkhd - mapped_before;
  CAPTURE(grown);
  CHECK(grown < (16u << 20));  // 87381 entries: about 5 MB of table, not 170 MB
}
