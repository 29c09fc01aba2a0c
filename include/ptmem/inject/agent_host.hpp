// The inject engine's host side: puts the agent (src/agent/) and its shared rings into a
// stopped target with remote syscalls only, patches the entries of the traced functions
// with jumps to it, drains what it records, and takes everything out again.
//
// It knows nothing of ptrace: the engine that holds the target stopped gives it a Target
// (run a syscall in a stopped thread, read and write memory, find room for code near an
// address).  Threads are the engine's business too; the host answers, for a stopped
// thread, where it may go on (out of a displaced prologue, out of a stub) and which return
// addresses of its stack the agent redirected.
#pragma once
#include <array>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "ptmem/arch/prologue.hpp"
#include "ptmem/arch/registers.hpp"
#include "ptmem/arch/step_over.hpp"
#include "ptmem/inject/agent_abi.h"
#include "ptmem/inject/ring_drain.hpp"
#include "ptmem/symbols/unwinder.hpp"
#include "ptmem/track/functions.hpp"

namespace ptmem::inject {

/// The stopped target, as the engine that holds it offers it.
class Target {
 public:
  virtual ~Target() = default;
  virtual pid_t pid() const = 0;
  /// Runs syscall |nr| in a stopped thread; its result (a -errno on failure), or nullopt if
  /// it could not be run.
  virtual std::optional<uint64_t> syscall(long nr, std::array<uint64_t, 6> args) = 0;
  virtual arch::MemoryAccess& memory() = 0;
  /// |size| bytes in an executable page within +-1 GiB of |near| (written via memory()).
  virtual std::optional<uint64_t> code_slot(uint64_t near, size_t size) = 0;
};

/// The registers at a hooked function's entry, as a breakpoint there would have seen them
/// for the unwinder: pc, stack pointer, and the callee-saved rbx rbp r12 r13 r14 r15 in the
/// order the agent stores them (ptmem_record::regs, ptmem_thread::ask_regs + 2).
arch::Registers entry_registers(uint64_t pc, uint64_t sp, const uint64_t callee_saved[6]);

/// What the agent captures for the decoders, per traced function.
ptmem_capture capture_of(const track::TracedFunction& fn);

class AgentHost {
 public:
  struct Options {
    uint32_t stack_copy = 4096;       ///< stack bytes copied per creating call
    uint32_t ring_bytes = 256 << 10;  ///< per thread
    uint64_t main_stack_hi = 0;       ///< top of the main thread's stack ([stack]'s end)
    uint32_t tid_offset = 0;          ///< glibc's TCB tid field, 0 if not known for sure
    uint32_t max_frames = 24;         ///< pcs per walked stack (as the unwinder's limit)
  };

  /// Maps the agent and the rings into |target|, every thread of which is stopped.
  /// Returns why not, in a few words.
  static std::variant<std::unique_ptr<AgentHost>, std::string> inject(Target& target, const Options& opt);
  ~AgentHost();
  AgentHost(const AgentHost&) = delete;
  AgentHost& operator=(const AgentHost&) = delete;

  /// Hooks row |function| of track::traced_functions() at |address|, whose code is
  /// |code| (its symbol's bytes).  |tail_jump|: its body only jumps on to another traced
  /// function.  Every thread must be stopped; the engine then moves each one with
  /// thread_pc().  Returns why the function cannot be hooked.
  std::optional<std::string> hook(Target& target, int function, uint64_t address, std::span<const uint8_t> code,
                                  bool tail_jump);
  bool hooked(uint64_t address) const;

  /// Recording on or off (off: every call passes straight through the agent).
  void set_enabled(bool on);

  /// Where a thread stopped at |pc| goes on: after hook(), out of the bytes a patch just
  /// covered into their copy; at detach, out of stubs and copies back to the original.
  /// |pc| itself when nothing is to change; nullopt when the thread must single-step
  /// first (it is inside the agent, or inside a copied instruction sequence).
  uint64_t after_patch(uint64_t pc) const;
  std::optional<uint64_t> before_unpatch(uint64_t pc) const;
  bool in_agent(uint64_t pc) const { return pc >= code_ && pc < code_ + code_size_; }

  /// Detach: an int3 over each of the agent's two ways out, so that threads inside it can
  /// run out to one (recording off, the agent only finishes what it was doing).
  void trap_exits(arch::MemoryAccess& mem);
  void untrap_exits(arch::MemoryAccess& mem) const;
  /// A thread stopped in the agent at one of those exits (or on its int3): |regs| become
  /// what running the exit instruction would make of them.  False if not at an exit.
  bool take_exit(arch::Registers& regs, arch::MemoryAccess& mem) const;

  /// The return addresses the agent redirected in the stack of the thread whose TCB is
  /// |fs_base|, appended to |out|: (slot, real return address), outermost first.
  void redirected(uint64_t fs_base, std::vector<std::pair<uint64_t, uint64_t>>& out) const;
  /// Puts those return addresses back into |mem| (the target, or a forked child's copy).
  void restore_returns(uint64_t fs_base, arch::MemoryAccess& mem) const;
  /// The thread's calls below |sp| (all: UINT64_MAX) will never return (an exception,
  /// a cancellation, a longjmp): their return addresses go back, and the drain forgets
  /// them.  The thread is stopped outside the agent.
  void abandon_calls(uint64_t fs_base, uint64_t sp, arch::MemoryAccess& mem);
  /// Publishes the unwind step at |pc| for the agent's own stack walks (|adjusted|: |pc|
  /// is a return address).  Returns false when the table has no room.
  bool publish(uint64_t pc, bool adjusted, const symbols::CompactRule& rule);
  /// A module went away: its pcs may come back as other code.  The agent stops walking
  /// (snapshots only, unwound here).
  void rules_off();
  /// The question of the thread whose TCB is |fs_base| (stopped on the agent's
  /// PTMEM_ASK_SIGNAL): the registers at its call's entry, for an unwind of its live stack.
  std::optional<arch::Registers> question(uint64_t fs_base) const;
  void answer(uint64_t fs_base, std::span<const uint64_t> pcs);
  /// The agent may ask ptmem for stacks it cannot walk yet (on by default).
  void set_asking(bool on);
  /// A vfork child borrows this thread's TCB and stack: pass its calls through.
  void suspend(uint64_t fs_base, bool on);

  /// Writes the original bytes back over every patch, in |mem|.
  void unpatch(arch::MemoryAccess& mem) const;
  /// Some thread is inside the agent (a signal handler interrupted it): its code must stay.
  bool busy() const;
  /// Unmaps the agent and the rings from the target (after unpatch(), every thread out);
  /// |keep|: leave them (busy() said some thread will still run agent code).
  void unmap(Target& target, bool keep);

  size_t drain(track::EventSink& sink, StackSource& stacks, bool final = false) {
    return drain_.drain(sink, stacks, final);
  }
  const DrainCounters& counters() const { return drain_.counters(); }
  /// Calls the agent passed through while recording: nested in a signal handler, more
  /// threads than slots, a full shadow stack.  0 keeps the counts exact.
  uint64_t missed() const;

 private:
  struct Hook {
    arch::Prologue prologue;
    uint64_t stub = 0;
    std::vector<uint8_t> original;  // the bytes the patch covers
  };
  AgentHost(ptmem_control* control, size_t bytes);
  ptmem_thread* thread_of(uint64_t fs_base) const;
  void start_heartbeat();

  ptmem_control* control_;  // ptmem's own mapping of the shared region
  size_t region_bytes_;
  uint64_t region_ = 0;     // the region in the target
  uint64_t code_ = 0;       // the agent's code in the target
  uint64_t code_size_ = 0;
  uint64_t code_map_ = 0;   // its mapping's length
  uint64_t entry_ = 0;      // where every stub jumps
  uint64_t entry_exit_ = 0, return_exit_ = 0;  // the agent's two ways out
  uint8_t exit_bytes_[2] = {0, 0};              // their first bytes, under the int3s
  std::vector<Hook> hooks_;
  RingDrain drain_;
  // Beats for the agent whatever the engine's thread is busy with (a long scan, a step).
  std::mutex beat_mutex_;
  std::condition_variable_any beat_cv_;
  std::jthread beat_;
};

}  // namespace ptmem::inject
