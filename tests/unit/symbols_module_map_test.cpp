#include <doctest/doctest.h>

#include <fmt/format.h>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "../support/process.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/symbols/elf_image.hpp"
#include "ptmem/symbols/module_map.hpp"

using ptmem::proc::parse_maps;
using ptmem::symbols::Module;
using ptmem::symbols::ModuleMap;

namespace {

constexpr uint64_t kForever = std::numeric_limits<uint64_t>::max();

// A PIE, its heap, libc, a locale archive (data, not a module), a deleted library, the
// stack and the vdso.
const char* kBaseMaps =
    "55d4c8a00000-55d4c8a01000 r--p 00000000 08:01 1001                       /usr/bin/app\n"
    "55d4c8a01000-55d4c8a02000 r-xp 00001000 08:01 1001                       /usr/bin/app\n"
    "55d4c8a02000-55d4c8a03000 r--p 00002000 08:01 1001                       /usr/bin/app\n"
    "55d4c8a03000-55d4c8a04000 rw-p 00002000 08:01 1001                       /usr/bin/app\n"
    "55d4c9000000-55d4c9021000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f0000000000-7f0000026000 r--p 00000000 08:01 2002                       /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f0000026000-7f000017c000 r-xp 00026000 08:01 2002                       /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f000017c000-7f00001cf000 r--p 0017c000 08:01 2002                       /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f00001cf000-7f00001d3000 r--p 001cf000 08:01 2002                       /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f00001d3000-7f00001d5000 rw-p 001d3000 08:01 2002                       /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f00001d5000-7f00001e2000 rw-p 00000000 00:00 0 \n"
    "7f0000200000-7f0000400000 r--p 00000000 08:01 3003                       /usr/lib/locale/locale-archive\n"
    "7f0000500000-7f0000501000 r--p 00000000 08:01 4004                       /tmp/libgone.so (deleted)\n"
    "7f0000501000-7f0000502000 r-xp 00001000 08:01 4004                       /tmp/libgone.so (deleted)\n"
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]\n";

const char* kLibfoo =
    "7f0000600000-7f0000601000 r--p 00000000 08:01 5005                       /usr/lib/libfoo.so\n"
    "7f0000601000-7f0000603000 r-xp 00001000 08:01 5005                       /usr/lib/libfoo.so\n"
    "7f0000603000-7f0000604000 rw-p 00003000 08:01 5005                       /usr/lib/libfoo.so\n";

}  // namespace

TEST_CASE("ModuleMap: file mappings grouped into modules") {
  ModuleMap map;  // pid 0: paths are used as they are
  CHECK(map.generation() == 1);
  std::vector<uint32_t> added, removed;
  CHECK(map.update(parse_maps(kBaseMaps), &added, &removed));
  CHECK(map.generation() == 2);
  REQUIRE(map.all().size() == 4);  // app, libc, libgone, vdso; not the locale archive
  CHECK(added == std::vector<uint32_t>{0, 1, 2, 3});
  CHECK(removed.empty());

  const Module& app = map.all()[0];
  CHECK(app.id == 0);
  CHECK(app.path == "/usr/bin/app");
  CHECK(app.open_path == "/usr/bin/app");
  CHECK(app.start == 0x55d4c8a00000);
  CHECK(app.end == 0x55d4c8a04000);
  CHECK(app.base == 0x55d4c8a00000);
  CHECK(app.inode == 1001);
  CHECK(app.dev_major == 8);
  CHECK(app.dev_minor == 1);
  CHECK(app.executable_mapped);
  CHECK(app.loaded_gen == 2);
  CHECK(app.unloaded_gen == kForever);

  const Module& libc = map.all()[1];
  CHECK(libc.path == "/usr/lib/x86_64-linux-gnu/libc.so.6");
  CHECK(libc.start == 0x7f0000000000);
  CHECK(libc.end == 0x7f00001d5000);
  CHECK(libc.base == 0x7f0000000000);

  const Module& gone = map.all()[2];
  CHECK(gone.path == "/tmp/libgone.so (deleted)");
  CHECK(gone.open_path == "/tmp/libgone.so");

  const Module& vdso = map.all()[3];
  CHECK(vdso.path == "[vdso]");
  CHECK(ptmem::symbols::is_vdso(vdso));
  CHECK(vdso.open_path == "");
  CHECK(vdso.start == 0x7ffd00100000);
  CHECK(vdso.end == 0x7ffd00102000);

  CHECK(map.find(0x55d4c8a01234) == &app);
  CHECK(map.find(0x55d4c8a03fff) == &app);
  CHECK(map.find(0x55d4c8a04000) == nullptr);
  CHECK(map.find(0x7f0000100000) == &libc);
  CHECK(map.find(0x7f0000300000) == nullptr);  // locale archive
  CHECK(map.find(0x55d4c9000010) == nullptr);  // heap
  CHECK(map.find(0x7ffd00100800) == &vdso);
  CHECK(map.find(0) == nullptr);
  CHECK(map.get(1) == &libc);
  CHECK(map.get(4) == nullptr);

  // The same maps again: nothing changes, not even the generation.
  added.clear();
  CHECK_FALSE(map.update(parse_maps(kBaseMaps), &added, &removed));
  CHECK(map.generation() == 2);
  CHECK(added.empty());
}

TEST_CASE("ModuleMap: load and unload keep history by generation") {
  ModuleMap map;
  REQUIRE(map.update(parse_maps(kBaseMaps)));
  const uint64_t g_base = map.generation();

  std::vector<uint32_t> added, removed;
  CHECK(map.update(parse_maps(std::string(kBaseMaps) + kLibfoo), &added, &removed));
  const uint64_t g_foo = map.generation();
  CHECK(g_foo == g_base + 1);
  REQUIRE(added.size() == 1);
  const uint32_t foo_id = added[0];
  CHECK(removed.empty());
  CHECK(map.get(foo_id)->loaded_gen == g_foo);
  CHECK(map.find(0x7f0000601500) == map.get(foo_id));

  added.clear();
  CHECK(map.update(parse_maps(kBaseMaps), &added, &removed));
  const uint64_t g_unloaded = map.generation();
  CHECK(g_unloaded == g_foo + 1);
  CHECK(added.empty());
  CHECK(removed == std::vector<uint32_t>{foo_id});
  const Module* foo = map.get(foo_id);
  REQUIRE(foo);
  CHECK_FALSE(foo->loaded());
  CHECK(foo->loaded_gen == g_foo);
  CHECK(foo->unloaded_gen == g_unloaded);
  CHECK(map.all().size() == 5);  // history is kept

  CHECK(map.find(0x7f0000601500) == nullptr);
  CHECK(map.find(0x7f0000601500, g_unloaded) == nullptr);
  CHECK(map.find(0x7f0000601500, g_foo) == foo);
  CHECK(map.find(0x7f0000601500, g_base) == nullptr);
  // Modules loaded throughout are found at every generation.
  CHECK(map.find(0x7f0000100000, g_base) == map.get(1));
  CHECK(map.find(0x7f0000100000, g_foo) == map.get(1));
  CHECK(map.find(0x7f0000100000, g_unloaded) == map.get(1));

  // Loaded again at another address: a new module; the old one still answers for g_foo.
  std::string moved = kLibfoo;
  for (size_t pos; (pos = moved.find("7f00006")) != std::string::npos;) moved.replace(pos, 7, "7f00009");
  removed.clear();
  CHECK(map.update(parse_maps(std::string(kBaseMaps) + moved), &added, &removed));
  const uint64_t g_again = map.generation();
  REQUIRE(added.size() == 1);
  CHECK(added[0] != foo_id);
  CHECK(removed.empty());
  CHECK(map.find(0x7f0000901500) == map.get(added[0]));
  CHECK(map.find(0x7f0000901500, g_again)->base == 0x7f0000900000);
  CHECK(map.find(0x7f0000601500, g_foo) == foo);
  CHECK(map.find(0x7f0000901500, g_foo) == nullptr);

  // exec: everything goes at once.
  map.unload_all();
  CHECK(map.generation() == g_again + 1);
  for (const auto& m : map.all()) CHECK_FALSE(m.loaded());
  CHECK(map.find(0x7f0000100000) == nullptr);
  CHECK(map.find(0x7f0000100000, g_again) == map.get(1));
}

TEST_CASE("ModuleMap: two loads of one file, and a data segment at offset 0") {
  // dlmopen: the same library twice, each load starting with its offset-0 mapping.
  const char* twice =
      "7f0000600000-7f0000601000 r--p 00000000 08:01 5005 /usr/lib/libfoo.so\n"
      "7f0000601000-7f0000603000 r-xp 00001000 08:01 5005 /usr/lib/libfoo.so\n"
      "7f0000603000-7f0000604000 rw-p 00003000 08:01 5005 /usr/lib/libfoo.so\n"
      "7f0000800000-7f0000801000 r--p 00000000 08:01 5005 /usr/lib/libfoo.so\n"
      "7f0000801000-7f0000803000 r-xp 00001000 08:01 5005 /usr/lib/libfoo.so\n"
      "7f0000803000-7f0000804000 rw-p 00003000 08:01 5005 /usr/lib/libfoo.so\n";
  ModuleMap a;
  REQUIRE(a.update(parse_maps(twice)));
  REQUIRE(a.all().size() == 2);
  CHECK(a.all()[0].base == 0x7f0000600000);
  CHECK(a.all()[0].end == 0x7f0000604000);
  CHECK(a.all()[1].base == 0x7f0000800000);
  CHECK(a.all()[1].end == 0x7f0000804000);

  // An old-layout library whose data segment's page-rounded offset is 0.
  const char* small =
      "7f0000600000-7f0000601000 r-xp 00000000 08:01 6006 /usr/lib/libsmall.so\n"
      "7f0000601000-7f0000800000 ---p 00001000 08:01 6006 /usr/lib/libsmall.so\n"
      "7f0000800000-7f0000801000 rw-p 00000000 08:01 6006 /usr/lib/libsmall.so\n";
  ModuleMap b;
  REQUIRE(b.update(parse_maps(small)));
  REQUIRE(b.all().size() == 1);
  CHECK(b.all()[0].base == 0x7f0000600000);
  CHECK(b.all()[0].end == 0x7f0000801000);
}

namespace {

// What a pinned module's open_path ("/proc/self/fd/N") is open on, and the file's content.
std::string pinned(const Module& m) {
  if (!m.open_path.starts_with("/proc/self/fd/")) return "not pinned: '" + m.open_path + "'";
  return std::filesystem::read_symlink(m.open_path).string() + " = " + ptmem::test::read_text_file(m.open_path);
}

}  // namespace

TEST_CASE("ModuleMap: a live target's files are pinned from its root or map_files, never another file") {
  // A fake /proc with /proc/4242/root/usr/lib/libreal.so and two map_files entries.
  std::string root = std::filesystem::canonical(ptmem::test::temp_dir()).string();
  std::filesystem::create_directories(root + "/4242/root/usr/lib");
  std::filesystem::create_directories(root + "/4242/map_files");
  std::string real = root + "/4242/root/usr/lib/libreal.so";
  std::string replaced = root + "/4242/map_files/7f0000700000-7f0000701000";
  std::string gone = root + "/4242/map_files/7f0000900000-7f0000901000";
  std::ofstream(real) << "real";
  std::ofstream(replaced) << "replaced";
  std::ofstream(gone) << "gone";
  // A file of ptmem's own namespace, outside the target's root.
  std::string mine = root + "/libmine.so";
  std::ofstream(mine) << "mine";
  struct stat st, st_mine;
  REQUIRE(::stat(real.c_str(), &st) == 0);
  REQUIRE(::stat(mine.c_str(), &st_mine) == 0);
  std::string dev = fmt::format("{:02x}:{:02x}", major(st_mine.st_dev), minor(st_mine.st_dev));
  std::string maps = fmt::format(
      "7f0000600000-7f0000601000 r-xp 00000000 08:01 {0} /usr/lib/libreal.so\n"
      "7f0000700000-7f0000701000 r-xp 00000000 08:01 {1} /usr/lib/libreal.so\n"  // replaced since
      "7f0000800000-7f0000801000 r-xp 00000000 08:01 77 /usr/lib/libabsent.so\n"
      "7f0000900000-7f0000901000 r-xp 00000000 08:01 78 /usr/lib/libgone.so (deleted)\n"
      "7f0000a00000-7f0000a01000 r-xp 00000000 {2} {3} {4}\n"  // the very inode, by ptmem's path
      "7f0000b00000-7f0000b01000 r-xp 00000000 {2} {5} {4}\n"  // same name, another inode
      "7f0000c00000-7f0000c01000 r-xp 00000000 08:01 {0} /usr/lib/libreal.so\n",  // loaded again
      st.st_ino, st.st_ino + 1, dev, st_mine.st_ino, mine, st_mine.st_ino + 1);
  ModuleMap map(4242, root);
  REQUIRE(map.update(parse_maps(maps)));
  REQUIRE(map.all().size() == 7);
  CHECK(pinned(map.all()[0]) == real + " = real");
  CHECK(pinned(map.all()[1]) == replaced + " = replaced");
  CHECK(map.all()[2].open_path == "");  // nothing to open: unsymbolized, never /usr/lib/libabsent.so
  CHECK(pinned(map.all()[3]) == gone + " = gone");
  CHECK(pinned(map.all()[4]) == mine + " = mine");
  CHECK(map.all()[5].open_path == "");
  CHECK(map.all()[6].open_path == map.all()[0].open_path);  // one descriptor per file
  CHECK(map.pid() == 4242);

  // The pins outlive the files' names, and the map's copies share them.
  std::filesystem::remove_all(root + "/4242");
  auto copy = std::make_unique<ModuleMap>(map);
  map = ModuleMap();
  CHECK(ptmem::test::read_text_file(copy->all()[0].open_path) == "real");
  CHECK(ptmem::test::read_text_file(copy->all()[3].open_path) == "gone");
}

TEST_CASE("ModuleMap: load bias of a real module") {
  auto maps = ptmem::proc::read_maps(::getpid());
  REQUIRE(maps);
  ModuleMap map(::getpid());
  REQUIRE(map.update(*maps));
  const Module* libc = nullptr;
  for (const auto& m : map.all())
    if (m.path.ends_with("/libc.so.6")) libc = &m;
  REQUIRE(libc);
  auto image = ptmem::symbols::ElfImage::open(libc->open_path);
  REQUIRE(image);
  uint64_t bias = ptmem::symbols::load_bias(*libc, *image);
  // malloc's link-time address plus the bias is where this process calls it.
  auto malloc_vaddr = image->function("malloc");
  REQUIRE(malloc_vaddr);
  void* (*self_malloc)(size_t) = &::malloc;
  CHECK(bias + *malloc_vaddr == reinterpret_cast<uint64_t>(self_malloc));
  CHECK(map.find(reinterpret_cast<uint64_t>(self_malloc)) == libc);
}
