#include "ptmem/symbols/module_map.hpp"

#include <absl/container/flat_hash_map.h>
#include <algorithm>
#include <fmt/format.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <tuple>

#include "ptmem/symbols/elf_image.hpp"

namespace ptmem::symbols {
namespace {

constexpr std::string_view kDeleted = " (deleted)";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Mappings that can hold an ELF image: real files and the vdso.  Device files, System V
// shared memory and the other [bracketed] regions cannot.
bool may_be_module(const proc::Mapping& m) {
  if (m.path == "[vdso]") return true;
  if (m.path.empty() || m.path[0] != '/') return false;
  if (m.path.starts_with("/dev/") || m.path.starts_with("/SYSV")) return false;
  return true;
}

// One module-to-be while scanning maps.
struct Group {
  const proc::Mapping* first = nullptr;
  uint64_t start = 0, end = 0, base = 0;
  bool has_offset0 = false;
  bool exec = false;
};

using FileKey = std::tuple<uint32_t, uint32_t, uint64_t, std::string_view>;
using ModuleKey = std::tuple<uint32_t, uint32_t, uint64_t, std::string_view, uint64_t>;

}  // namespace

uint64_t load_bias(const Module& module, const ElfImage& image) {
  return module.base - image.first_load_vaddr();
}

ModuleMap::ModuleMap(pid_t pid, std::string proc_root) : pid_(pid), proc_root_(std::move(proc_root)) {}

void ModuleMap::open_module(const proc::Mapping& first, Module& mod) {
  const std::string& path = mod.path;
  if (path == "[vdso]") return;
  bool deleted = ends_with(path, kDeleted);
  if (pid_ == 0) {
    mod.open_path = deleted ? path.substr(0, path.size() - kDeleted.size()) : path;
    return;
  }
  auto key = std::make_tuple(first.dev_major, first.dev_minor, first.inode, path);
  if (auto it = pins_.find(key); it != pins_.end()) {
    mod.pin = it->second;
    mod.open_path = mod.pin ? fmt::format("/proc/self/fd/{}", *mod.pin) : "";
    return;
  }
  // Tried in order; |check| is what must hold of the opened file.
  enum class Check { Inode, None, DevInode };
  std::vector<std::pair<std::string, Check>> candidates;
  // Through the target's root: its mount namespace, container or chroot, not ptmem's.
  if (!deleted) candidates.emplace_back(fmt::format("{}/{}/root{}", proc_root_, pid_, path), Check::Inode);
  // The mapped file itself, kept by the kernel even when deleted or replaced.
  candidates.emplace_back(fmt::format("{}/{}/map_files/{:x}-{:x}", proc_root_, pid_, first.start, first.end),
                          Check::None);
  // Without access to either (the target is gone): ptmem's own file of that name, only if
  // it is the very inode mapped.
  if (!deleted) candidates.emplace_back(path, Check::DevInode);
  std::shared_ptr<const int> pin;
  for (const auto& [candidate, check] : candidates) {
    int fd = ::open(candidate.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (ok && check != Check::None && first.inode != 0) ok = st.st_ino == first.inode;
    if (ok && check == Check::DevInode)
      ok = major(st.st_dev) == first.dev_major && minor(st.st_dev) == first.dev_minor;
    if (!ok) {
      ::close(fd);
      continue;
    }
    pin = std::shared_ptr<const int>(new int(fd), [](const int* p) {
      ::close(*p);
      delete p;
    });
    break;
  }
  pins_[key] = pin;
  mod.pin = pin;
  mod.open_path = pin ? fmt::format("/proc/self/fd/{}", *pin) : "";
}

bool ModuleMap::update(const std::vector<proc::Mapping>& maps, std::vector<uint32_t>* added,
                       std::vector<uint32_t>* removed) {
  // 1. Group the mappings into candidate modules, in address order.
  std::vector<Group> groups;
  absl::flat_hash_map<FileKey, size_t> current;  // file -> its latest group
  for (const auto& m : maps) {
    if (!may_be_module(m)) continue;
    FileKey key{m.dev_major, m.dev_minor, m.inode, std::string_view(m.path)};
    auto it = current.find(key);
    // A read-only or executable mapping at offset 0 of a file already grouped is a second
    // load of it (dlmopen).  A writable one at offset 0 is the data segment of a small
    // library whose page-rounded file offset is 0, part of the same load.
    bool new_load = m.offset == 0 && !m.write && it != current.end() && groups[it->second].has_offset0;
    if (it == current.end() || new_load) {
      Group g;
      g.first = &m;
      g.start = m.start;
      g.end = m.end;
      g.base = m.start - std::min(m.offset, m.start);
      groups.push_back(g);
      current[key] = groups.size() - 1;
      it = current.find(key);
    }
    Group& g = groups[it->second];
    if (m.offset == 0 && !g.has_offset0) {
      g.has_offset0 = true;
      g.base = m.start;
    }
    g.start = std::min(g.start, m.start);
    g.end = std::max(g.end, m.end);
    g.exec |= m.exec;
  }

  // 2. Match them with the loaded modules: same file at the same base is the same load.
  absl::flat_hash_map<ModuleKey, uint32_t> loaded;
  for (const auto& mod : modules_)
    if (mod.loaded())
      loaded[ModuleKey{mod.dev_major, mod.dev_minor, mod.inode, std::string_view(mod.path), mod.base}] = mod.id;

  uint64_t next_gen = generation_ + 1;
  bool changed = false;
  std::vector<bool> seen(modules_.size(), false);
  std::vector<Module> fresh;
  for (const auto& g : groups) {
    if (!g.exec && g.first->path != "[vdso]") continue;  // data files are not modules
    const auto& m = *g.first;
    auto it = loaded.find(ModuleKey{m.dev_major, m.dev_minor, m.inode, std::string_view(m.path), g.base});
    if (it != loaded.end()) {
      Module& mod = modules_[it->second];
      seen[mod.id] = true;
      if (mod.start != g.start || mod.end != g.end) {  // a load still in progress grew
        mod.start = g.start;
        mod.end = g.end;
        changed = true;
      }
      continue;
    }
    Module mod;
    mod.path = m.path;
    open_module(m, mod);
    mod.start = g.start;
    mod.end = g.end;
    mod.base = g.base;
    mod.loaded_gen = next_gen;
    mod.executable_mapped = g.exec;
    mod.dev_major = m.dev_major;
    mod.dev_minor = m.dev_minor;
    mod.inode = m.inode;
    fresh.push_back(std::move(mod));
  }
  for (auto& mod : modules_) {
    if (mod.loaded() && !seen[mod.id]) {
      mod.unloaded_gen = next_gen;
      changed = true;
      if (removed) removed->push_back(mod.id);
    }
  }
  for (auto& mod : fresh) {
    mod.id = static_cast<uint32_t>(modules_.size());
    if (added) added->push_back(mod.id);
    modules_.push_back(std::move(mod));
    changed = true;
  }
  if (!changed) return false;
  generation_ = next_gen;
  rebuild_index();
  return true;
}

void ModuleMap::unload_all() {
  bool any = false;
  for (auto& mod : modules_) {
    if (mod.loaded()) {
      mod.unloaded_gen = generation_ + 1;
      any = true;
    }
  }
  if (!any) return;
  ++generation_;
  rebuild_index();
}

void ModuleMap::rebuild_index() {
  loaded_by_start_.clear();
  for (const auto& mod : modules_)
    if (mod.loaded()) loaded_by_start_.push_back(mod.id);
  std::sort(loaded_by_start_.begin(), loaded_by_start_.end(),
            [this](uint32_t a, uint32_t b) { return modules_[a].start < modules_[b].start; });
}

const Module* ModuleMap::find(uint64_t addr) const {
  auto it = std::upper_bound(loaded_by_start_.begin(), loaded_by_start_.end(), addr,
                             [this](uint64_t a, uint32_t id) { return a < modules_[id].start; });
  if (it == loaded_by_start_.begin()) return nullptr;
  const Module& mod = modules_[*(it - 1)];
  return addr < mod.end ? &mod : nullptr;
}

const Module* ModuleMap::find(uint64_t addr, uint64_t generation) const {
  if (generation == generation_) return find(addr);
  for (auto it = modules_.rbegin(); it != modules_.rend(); ++it) {
    if (it->loaded_gen <= generation && generation < it->unloaded_gen && it->start <= addr &&
        addr < it->end)
      return &*it;
  }
  return nullptr;
}

const Module* ModuleMap::get(uint32_t id) const {
  return id < modules_.size() ? &modules_[id] : nullptr;
}

}  // namespace ptmem::symbols
