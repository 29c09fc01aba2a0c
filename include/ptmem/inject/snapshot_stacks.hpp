// Stacks for the inject engine: each creating call's record carries the callee-saved
// registers and a copy of the top of the stack, unwound here offline with the same libdw
// unwinder the breakpoint engine uses at its stops, so both engines give the same stacks.
#pragma once
#include "ptmem/arch/step_over.hpp"
#include "ptmem/inject/agent_host.hpp"
#include "ptmem/inject/ring_drain.hpp"
#include "ptmem/symbols/module_map.hpp"
#include "ptmem/symbols/unwinder.hpp"
#include "ptmem/track/stack_table.hpp"

namespace ptmem::inject {

class SnapshotStacks final : public StackSource {
 public:
  /// |live| reads the target for what the snapshot lacks (may be null); at most
  /// |max_frames| frames, the traced function's entry first.
  SnapshotStacks(symbols::Unwinder& unwinder, const symbols::ModuleMap& modules, track::StackTable& table,
                 arch::MemoryAccess* live, size_t max_frames)
      : unwinder_(unwinder), modules_(modules), table_(table), live_(live), pcs_(max_frames) {}

  track::StackId stack(const ptmem_record& entry, uint64_t function_address, std::span<const uint64_t> walked,
                       std::span<const uint8_t> snapshot) override;
  /// Where the unwind steps of unwound snapshots go, so the agent walks those paths itself
  /// next time.
  void learn_into(AgentHost* host) { host_ = host; }
  /// Publishes the steps of a chain unwound from the live stack (an answered question).
  void learn(std::span<const uint64_t> pcs);
  uint64_t walked() const { return walked_; }
  uint64_t unwound() const { return unwound_; }

 private:
  symbols::Unwinder& unwinder_;
  const symbols::ModuleMap& modules_;
  track::StackTable& table_;
  arch::MemoryAccess* live_;
  std::vector<uint64_t> pcs_;
  AgentHost* host_ = nullptr;
  uint64_t walked_ = 0, unwound_ = 0;
};

}  // namespace ptmem::inject
