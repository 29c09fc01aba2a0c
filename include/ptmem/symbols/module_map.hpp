// The target's loaded ELF modules over time.  Each change bumps a generation; a module that
// is unloaded (dlclose, exec) is kept with the generation range it was loaded in, so a stack
// captured while it was mapped still symbolizes after it is gone.
//
// A module is a group of mappings of one file (same dev, inode and path) that contains
// code: a group without an executable mapping (locale archives, fonts, data files mapped
// with mmap) is not a module.  A read-only or executable mapping at offset 0 of a file
// already grouped starts a new module, so a library loaded twice (dlmopen) gives two.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ptmem/proc/maps.hpp"

namespace ptmem::symbols {

struct Module {
  uint32_t id = 0;
  std::string path;            ///< as in /proc/PID/maps
  /// Where to open it from ptmem: /proc/PID/root + path when that exists (containers,
  /// chroots); /proc/PID/map_files/START-END when the file was deleted or replaced (its
  /// inode differs), which works only while it is mapped; else path.  "" for the vdso.
  std::string open_path;
  uint64_t start = 0, end = 0; ///< lowest and highest address of its file mappings
  uint64_t base = 0;           ///< address of its mapping at file offset 0
  uint64_t loaded_gen = 0;
  uint64_t unloaded_gen = std::numeric_limits<uint64_t>::max();  ///< max while loaded
  bool executable_mapped = false;  ///< has an r-x mapping (code); true for every module today
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  bool loaded() const { return unloaded_gen == std::numeric_limits<uint64_t>::max(); }
};

class ElfImage;

/// Load bias of |module| whose file is |image|: what to add to a link-time address
/// (st_value, DWARF) to get the run-time address.  base - first_load_vaddr.
uint64_t load_bias(const Module& module, const ElfImage& image);

/// "[vdso]" is the only module without a file (ptmem serves it from its own copy, src/symbols/vdso.hpp).
inline bool is_vdso(const Module& module) { return module.path == "[vdso]"; }

class ModuleMap {
 public:
  explicit ModuleMap(pid_t pid = 0, std::string proc_root = proc::kDefaultRoot);

  /// Brings the map up to date with |maps| (file-backed ELF mappings; [vdso] included as a
  /// module named "[vdso]").  Returns true and bumps generation() when anything changed;
  /// |added| / |removed| receive module ids when given.
  bool update(const std::vector<proc::Mapping>& maps, std::vector<uint32_t>* added = nullptr,
              std::vector<uint32_t>* removed = nullptr);
  /// Marks every module unloaded (exec replaced the image).
  void unload_all();

  uint64_t generation() const { return generation_; }
  const Module* find(uint64_t addr) const;                        ///< currently loaded, O(log n)
  /// As of |generation|: loaded_gen <= generation < unloaded_gen.  O(log n) for the
  /// current generation, a scan (newest first) for older ones.
  const Module* find(uint64_t addr, uint64_t generation) const;
  const Module* get(uint32_t id) const;
  const std::vector<Module>& all() const { return modules_; }     ///< loaded and unloaded
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
  std::string proc_root_;
  uint64_t generation_ = 1;
  std::vector<Module> modules_;        // index == id
  std::vector<uint32_t> loaded_by_start_;  // ids of loaded modules, sorted by start

  std::string open_path_for(const proc::Mapping& first, const std::string& path) const;
  void rebuild_index();
};

}  // namespace ptmem::symbols
