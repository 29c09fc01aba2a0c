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
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "ptmem/proc/maps.hpp"

namespace ptmem::symbols {

struct Module {
  uint32_t id = 0;
  std::string path;            ///< as in /proc/PID/maps
  /// Where to open it from ptmem.  For a live target (pid != 0), the file is opened when the
  /// module is first seen, from the target's own mount namespace: /proc/PID/root + path when
  /// that is the mapped inode (containers, chroots, unshare -m), else
  /// /proc/PID/map_files/START-END (deleted or replaced files; needs CAP_SYS_ADMIN), else
  /// path in ptmem's namespace only if it has the mapping's device and inode.  open_path is
  /// then "/proc/self/fd/N" of that descriptor (|pin|), so it stays valid after the target
  /// is gone, and "" when no candidate could be opened: a file of ptmem's namespace that is
  /// not the mapped one is never used.  With pid 0 (offline), path as it is, minus
  /// " (deleted)".  "" for the vdso.
  std::string open_path;
  std::shared_ptr<const int> pin;  ///< the descriptor behind open_path, shared by copies
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

  // Pinned files by (dev major, dev minor, inode, path): a library loaded again is one open.
  std::map<std::tuple<uint32_t, uint32_t, uint64_t, std::string>, std::shared_ptr<const int>> pins_;

  void open_module(const proc::Mapping& first, Module& mod);
  void rebuild_index();
};

}  // namespace ptmem::symbols
