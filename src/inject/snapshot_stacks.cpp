#include "ptmem/inject/snapshot_stacks.hpp"

namespace ptmem::inject {

track::StackId SnapshotStacks::stack(const ptmem_record& r, uint64_t function_address,
                                     std::span<const uint64_t> walked, std::span<const uint8_t> snapshot) {
  if (!walked.empty()) {
    ++walked_;
    return table_.intern(walked.first(std::min(walked.size(), pcs_.size())), modules_.generation());
  }
  ++unwound_;
  const arch::Registers regs = entry_registers(function_address, r.sp, r.regs);
  size_t n = unwinder_.unwind(regs, snapshot, live_, pcs_.size(), pcs_.data());
  n = std::max<size_t>(n, 1);
  learn(std::span<const uint64_t>(pcs_.data(), n));
  return table_.intern(std::span<const uint64_t>(pcs_.data(), n), modules_.generation());
}

// Teaches the agent these steps.  A chain the agent can walk to its end gives these same
// pcs: every step is the one unwind() took (the rules are its own cache).
void SnapshotStacks::learn(std::span<const uint64_t> pcs) {
  for (size_t i = 0; host_ && i < pcs.size(); ++i) {
    auto rule = unwinder_.compact_rule(pcs[i], i > 0);
    if (!rule) break;
    host_->publish(pcs[i], i > 0, *rule);
  }
}

}  // namespace ptmem::inject
