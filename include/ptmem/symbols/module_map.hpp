// The target's loaded ELF modules over time.  Each change bumps a generation; a module that
// is unloaded (dlclose, exec) is kept with the generation range it was loaded in, so a stack
// captured while it was mapped still symbolizes after it is gone.
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
  std::string open_path;       ///< where to open it from ptmem (may go through /proc/PID/root)
  uint64_t start = 0, end = 0; ///< lowest and highest address of its file mappings
  uint64_t base = 0;           ///< address of its mapping at file offset 0
  uint64_t loaded_gen = 0;
  uint64_t unloaded_gen = std::numeric_limits<uint64_t>::max();  ///< max while loaded
  bool executable_mapped = false;  ///< has an r-x mapping (code)
  bool loaded() const { return unloaded_gen == std::numeric_limits<uint64_t>::max(); }
};

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
  const Module* find(uint64_t addr) const;                        ///< currently loaded
  const Module* find(uint64_t addr, uint64_t generation) const;   ///< as of |generation|
  const Module* get(uint32_t id) const;
  const std::vector<Module>& all() const { return modules_; }     ///< loaded and unloaded
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
  std::string proc_root_;
  uint64_t generation_ = 1;
  std::vector<Module> modules_;
};

}  // namespace ptmem::symbols
