// One traced address space (rr's AddressSpace + ThreadGroup): its threads, memory,
// breakpoints, modules, the scratch pages we mapped into it, and the hooks installed.
#pragma once
#include <absl/container/flat_hash_map.h>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ptmem/arch/registers.hpp"
#include "ptmem/inject/agent_host.hpp"
#include "ptmem/inject/snapshot_stacks.hpp"
#include "ptmem/ptrace/breakpoint_table.hpp"
#include "ptmem/ptrace/remote_memory.hpp"
#include "ptmem/ptrace/thread.hpp"
#include "ptmem/symbols/module_map.hpp"
#include "ptmem/symbols/unwinder.hpp"

namespace ptmem::track {
class EventSink;
class StackTable;
}  // namespace ptmem::track

namespace ptmem::ptrace {

/// Pages we mmap'ed into the target: the return trampoline (one int3) and the relocated
/// instructions of displaced step-overs, each within +-2 GiB of what it serves.
struct ScratchPage {
  uint64_t address = 0;
  uint64_t size = 0;
  uint64_t used = 0;
};

class Process {
 public:
  explicit Process(pid_t pid);
  pid_t pid() const { return pid_; }

  RemoteMemory mem;
  BreakpointTable breakpoints;
  symbols::ModuleMap modules;
  std::unique_ptr<symbols::Unwinder> unwinder;
  absl::flat_hash_map<pid_t, std::unique_ptr<Thread>> threads;

  std::vector<ScratchPage> scratch;
  /// The inject engine's agent in this process, once injected (src/ptrace/agent.cpp).
  std::unique_ptr<inject::AgentHost> agent;
  std::unique_ptr<inject::SnapshotStacks> agent_stacks;
  bool agent_refused = false;  ///< tried and said why: breakpoints from now on
  uint64_t agent_answers = 0;  ///< stacks the agent asked for (new call paths)
  bool keep_scratch = false;   ///< detach: a thread may still run agent code that jumps there
  uint64_t trampoline = 0;     ///< address of the return int3; 0 until mapped
  uint64_t entry_point = 0;    ///< AT_ENTRY: never run again after start-up, used for injection
  uint64_t r_debug = 0;        ///< &_r_debug in ld.so, 0 for static programs
  std::vector<bool> hooked;    ///< per traced_functions() row
  bool hooks_installed = false;
  bool record = true;          ///< events of this process go to the sink
  bool exec_seen = false;      ///< launch mode: our own execve of the program has been seen
  std::string command;
  /// Where this process's events and stacks go: the session's for the main process, the
  /// tables the CLI gave for a followed child (each child is reported on its own).
  track::EventSink* sink = nullptr;
  track::StackTable* stacks = nullptr;
  bool quiescing = false;          ///< stopping all its threads: resume() leaves them stopped
  bool final_state_taken = false;  ///< the Final checkpoint ran
  bool killed_in_final = false;    ///< it died while stopped for the end scan
  std::vector<arch::Registers> exited_regs;  ///< its threads that ended, at their exit stop

  Thread* thread(pid_t tid) {
    auto it = threads.find(tid);
    return it == threads.end() ? nullptr : it->second.get();
  }
  Thread& add_thread(pid_t tid) {
    auto& t = threads[tid];
    if (!t) t = std::make_unique<Thread>(tid, this);
    return *t;
  }
  /// Is |addr| inside one of our scratch pages?
  const ScratchPage* scratch_page(uint64_t addr) const {
    for (auto& p : scratch)
      if (addr >= p.address && addr < p.address + p.size) return &p;
    return nullptr;
  }

 private:
  pid_t pid_;
};

}  // namespace ptmem::ptrace
