#include "ptmem/ptrace/breakpoint_table.hpp"

#include "ptmem/ptrace/remote_memory.hpp"

namespace ptmem::ptrace {

static constexpr uint8_t kInt3 = 0xCC;

bool BreakpointTable::insert(RemoteMemory& mem, Breakpoint bp) {
  if (table_.contains(bp.address)) return true;
  if (!mem.write(bp.address, &kInt3, 1)) return false;
  table_.emplace(bp.address, std::move(bp));
  return true;
}

bool BreakpointTable::remove(RemoteMemory& mem, uint64_t address) {
  auto it = table_.find(address);
  if (it == table_.end()) return true;
  bool ok = mem.write(address, &it->second.original, 1);
  table_.erase(it);
  return ok;
}

bool BreakpointTable::remove_all(RemoteMemory& mem) {
  bool ok = true;
  for (auto& [addr, bp] : table_) ok = mem.write(addr, &bp.original, 1) && ok;
  table_.clear();
  return ok;
}

void BreakpointTable::forget_range(uint64_t start, uint64_t end) {
  for (auto it = table_.begin(); it != table_.end();) {
    if (it->first >= start && it->first < end) table_.erase(it++);
    else ++it;
  }
}

bool BreakpointTable::restore_in(RemoteMemory& child_mem) const {
  bool ok = true;
  for (auto& [addr, bp] : table_) ok = child_mem.write(addr, &bp.original, 1) && ok;
  return ok;
}

void BreakpointTable::mask(uint64_t addr, uint8_t* buf, size_t len) const {
  if (table_.size() < len) {
    for (auto& [a, bp] : table_)
      if (a >= addr && a < addr + len) buf[a - addr] = bp.original;
  } else {
    for (size_t i = 0; i < len; ++i)
      if (auto* bp = find(addr + i)) buf[i] = bp->original;
  }
}

std::vector<const Breakpoint*> BreakpointTable::all() const {
  std::vector<const Breakpoint*> out;
  for (auto& [a, bp] : table_) out.push_back(&bp);
  return out;
}

}  // namespace ptmem::ptrace
