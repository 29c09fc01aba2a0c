#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <elf.h>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include "../support/process.hpp"
#include "ptmem/symbols/elf_image.hpp"

using ptmem::symbols::ElfImage;

namespace {

const std::string kLibc = "/lib/x86_64-linux-gnu/libc.so.6";
const std::string kLdso = "/lib64/ld-linux-x86-64.so.2";

// What binutils says, independently of libelf: the value of |name| in `nm -D` output
// (plain "name", or "name@@VERSION" for the default version), with its type letter.
std::optional<std::pair<uint64_t, char>> nm_dynamic(const std::string& file, const std::string& name) {
  auto r = ptmem::test::run({"/usr/bin/nm", "-D", "--defined-only", file});
  REQUIRE(r.status == 0);
  std::istringstream in(r.out);
  std::string line;
  std::regex re("^([0-9a-f]+) ([A-Za-z]) " + name + "(@@\\S+)?$");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, re)) return std::make_pair(std::stoull(m[1], nullptr, 16), m[2].str()[0]);
  }
  return std::nullopt;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string write_file(const std::string& name, const std::string& bytes) {
  std::string path = ptmem::test::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace

TEST_CASE("ElfImage: libc functions match nm -D") {
  std::string error;
  auto libc = ElfImage::open(kLibc, &error);
  REQUIRE_MESSAGE(libc, error);
  CHECK(libc->is_x86_64());
  CHECK_FALSE(libc->is_32bit());
  CHECK(libc->is_dynamic_object());
  CHECK(libc->first_load_vaddr() == 0);

  // e_entry straight from the file's header bytes.
  std::string bytes = read_bytes(kLibc);
  REQUIRE(bytes.size() > sizeof(Elf64_Ehdr));
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, bytes.data(), sizeof ehdr);
  CHECK(libc->entry() == ehdr.e_entry);

  for (const char* name : {"malloc", "free", "calloc", "realloc", "posix_memalign", "open", "pipe2"}) {
    CAPTURE(name);
    auto expected = nm_dynamic(kLibc, name);
    REQUIRE(expected);
    CHECK((expected->second == 'T' || expected->second == 'W'));
    bool ifunc = true;
    auto got = libc->function(name, &ifunc);
    REQUIRE(got);
    CHECK(*got == expected->first);
    CHECK_FALSE(ifunc);
  }
}

TEST_CASE("ElfImage: IFUNC resolvers and versioned duplicates") {
  auto libc = ElfImage::open(kLibc);
  REQUIRE(libc);
  // memcpy has two versions in libc; the default one (memcpy@@GLIBC_2.14) is an IFUNC.
  auto expected = nm_dynamic(kLibc, "memcpy");
  REQUIRE(expected);
  CHECK(expected->second == 'i');
  bool ifunc = false;
  auto got = libc->function("memcpy", &ifunc);
  REQUIRE(got);
  CHECK(*got == expected->first);
  CHECK(ifunc);
  CHECK_FALSE(libc->function("no_such_function_in_libc"));
}

TEST_CASE("ElfImage: objects are symbols, not functions") {
  auto ldso = ElfImage::open(kLdso);
  REQUIRE(ldso);
  auto expected = nm_dynamic(kLdso, "_r_debug");
  REQUIRE(expected);
  auto got = ldso->symbol("_r_debug");
  REQUIRE(got);
  CHECK(*got == expected->first);
  CHECK_FALSE(ldso->function("_r_debug"));
}

TEST_CASE("ElfImage: opening libc and 50 lookups is cheap") {
  static const char* names[] = {"malloc", "free", "calloc", "realloc", "reallocarray", "memalign",
                                "aligned_alloc", "posix_memalign", "valloc", "pvalloc", "open", "open64",
                                "openat", "openat64", "creat", "close", "dup", "dup2", "dup3", "pipe",
                                "pipe2", "socket", "accept", "accept4", "socketpair", "fopen", "fopen64",
                                "fclose", "fdopen", "freopen", "opendir", "closedir", "fdopendir",
                                "epoll_create", "epoll_create1", "eventfd", "timerfd_create",
                                "signalfd", "inotify_init", "inotify_init1", "memfd_create", "mmap",
                                "munmap", "dlopen", "dlclose", "strdup", "strndup", "getline",
                                "tmpfile", "mkstemp"};
  auto start = std::chrono::steady_clock::now();
  auto libc = ElfImage::open(kLibc);
  REQUIRE(libc);
  int found = 0;
  for (const char* n : names) found += libc->function(n).has_value();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("open libc + 50 lookups: " << ms << " ms");
  CHECK(found == 50);
  CHECK(ms < 50.0);  // a few ms expected; generous for a loaded machine
}

TEST_CASE("ElfImage: 32-bit images are recognised") {
  Elf32_Ehdr ehdr{};
  std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
  ehdr.e_ident[EI_CLASS] = ELFCLASS32;
  ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr.e_ident[EI_VERSION] = EV_CURRENT;
  ehdr.e_type = ET_EXEC;
  ehdr.e_machine = EM_386;
  ehdr.e_version = EV_CURRENT;
  ehdr.e_entry = 0x8048000;
  ehdr.e_ehsize = sizeof ehdr;
  std::string path = write_file("elf32", std::string(reinterpret_cast<char*>(&ehdr), sizeof ehdr));
  std::string error;
  auto image = ElfImage::open(path, &error);
  REQUIRE_MESSAGE(image, error);
  CHECK(image->is_32bit());
  CHECK_FALSE(image->is_x86_64());
  CHECK_FALSE(image->is_dynamic_object());
  CHECK(image->entry() == 0x8048000);
  CHECK_FALSE(image->function("main"));
}

TEST_CASE("ElfImage: malformed files are errors, not crashes") {
  std::string error;
  CHECK_FALSE(ElfImage::open("/nonexistent/ptmem/lib.so", &error));
  CHECK(error.find("cannot open") != std::string::npos);

  std::string libc = read_bytes(kLibc);
  REQUIRE(libc.size() > 100000);
  struct Case {
    const char* name;
    std::string bytes;
  } cases[] = {
      {"empty", ""},
      {"text", "hello, world\n"},
      {"magic-only", std::string("\x7f" "ELF", 4)},
      {"header-only", libc.substr(0, sizeof(Elf64_Ehdr))},
      {"first-page", libc.substr(0, 4096)},
      {"half", libc.substr(0, libc.size() / 2)},
      {"all-but-last-byte", libc.substr(0, libc.size() - 1)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    error.clear();
    CHECK_FALSE(ElfImage::open(write_file(std::string("bad-") + c.name, c.bytes), &error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("ElfImage: corrupt symbol tables give no symbols") {
  std::string libc = read_bytes(kLibc);
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, libc.data(), sizeof ehdr);
  REQUIRE(ehdr.e_shoff + uint64_t{ehdr.e_shnum} * sizeof(Elf64_Shdr) <= libc.size());
  auto shdr_at = [&](size_t i) { return ehdr.e_shoff + i * sizeof(Elf64_Shdr); };
  std::optional<size_t> dynsym;
  for (size_t i = 0; i < ehdr.e_shnum; ++i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, libc.data() + shdr_at(i), sizeof sh);
    if (sh.sh_type == SHT_DYNSYM) dynsym = i;
  }
  REQUIRE(dynsym);

  SUBCASE(".dynsym beyond the end of the file") {
    Elf64_Shdr sh;
    std::memcpy(&sh, libc.data() + shdr_at(*dynsym), sizeof sh);
    sh.sh_offset = libc.size() - 16;
    std::memcpy(libc.data() + shdr_at(*dynsym), &sh, sizeof sh);
  }
  SUBCASE("string table link out of range") {
    Elf64_Shdr sh;
    std::memcpy(&sh, libc.data() + shdr_at(*dynsym), sizeof sh);
    sh.sh_link = 0xffff;
    std::memcpy(libc.data() + shdr_at(*dynsym), &sh, sizeof sh);
  }
  SUBCASE("names pointing past the string table") {
    Elf64_Shdr sh;
    std::memcpy(&sh, libc.data() + shdr_at(*dynsym), sizeof sh);
    for (uint64_t off = sh.sh_offset; off + sizeof(Elf64_Sym) <= sh.sh_offset + sh.sh_size; off += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      std::memcpy(&sym, libc.data() + off, sizeof sym);
      sym.st_name = 0x7fffffff;
      std::memcpy(libc.data() + off, &sym, sizeof sym);
    }
  }
  std::string error;
  auto image = ElfImage::open(write_file("corrupt-libc", libc), &error);
  // Opening may or may not notice; lookups must simply find nothing.
  if (image) {
    CHECK_FALSE(image->function("malloc"));
    CHECK_FALSE(image->symbol("malloc"));
  } else {
    CHECK_FALSE(error.empty());
  }
}
