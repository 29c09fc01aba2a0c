// Private to src/ptrace: the state behind Session, shared by its parts
// (session.cpp: wait loop and event dispatch; setup.cpp: launch, attach, detach;
// hooks.cpp: breakpoint installation, scratch pages, injected syscalls).
#pragma once
#include <absl/container/flat_hash_map.h>
#include <array>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ptmem/arch/registers.hpp"
#include "ptmem/arch/step_over.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/ptrace/process.hpp"
#include "ptmem/ptrace/session.hpp"
#include "ptmem/track/decoders.hpp"
#include "ptmem/track/events.hpp"
#include "ptmem/track/stack_table.hpp"
#include "terminal.hpp"

namespace ptmem::ptrace {

/// A forked child we must clean (restore our int3s in its copy of memory) and detach.
struct ForkedChild {
  Process* parent = nullptr;
  std::vector<PendingReturn> forker_returns;  ///< hijacked slots copied into the child's stack
  bool vfork = false;
  pid_t forker = 0;  ///< the thread that forked
  std::vector<std::pair<uint64_t, uint64_t>> agent_returns;  ///< the agent's, likewise
};

struct Session::Impl {
  Impl(Session& s, TraceOptions o, track::EventSink& k, track::StackTable& st)
      : self(s), opt(o), sink(k), stacks(st) {}

  Session& self;
  TraceOptions opt;
  track::EventSink& sink;
  track::StackTable& stacks;
  arch::StepPlanner planner;

  std::unique_ptr<Process> main;
  absl::flat_hash_map<pid_t, Thread*> by_tid;          ///< every traced thread
  absl::flat_hash_map<pid_t, int> early_stops;         ///< stops of tids not known yet
  absl::flat_hash_map<pid_t, ForkedChild> forked;      ///< children awaiting their first stop
  /// Events of other threads that came while we waited for one thread (wait_for_thread),
  /// handled by the loop, in order, before it waits again.
  std::deque<std::pair<pid_t, int>> deferred;
  /// follow_forks: the children traced, in on_child_start order.  Kept after they end: the
  /// report symbolizes with their modules.  A deque: Process and Outcome never move.
  struct Child {
    std::unique_ptr<Process> process;
    Outcome outcome;
  };
  std::deque<Child> children;
  bool launched = false;
  Phase phase = Phase::Attach;   ///< what we are doing, for Outcome::ended_during
  Terminal terminal;        ///< job control of a program launched on a terminal
  int job_stop = 0;         ///< the launched program stopped for job control with this signal
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point next_tick;

  // Hot-path buffers, reused for every event (no allocation per event).
  std::vector<uint8_t> stack_buf;
  std::vector<std::pair<uint64_t, uint64_t>> real_returns;  ///< unwind_stopped's slots to put back
  std::vector<uint64_t> pcs;

  // ---- session.cpp
  void loop();
  pid_t next_event(int& status);
  bool serve_next_event();
  void take_ready_events();
  pid_t wait_for_thread(Thread& t, int& status);
  void handle(pid_t tid, int status);
  void handle_stop(Thread& t, int status);
  void handle_sigtrap(Thread& t);
  void on_breakpoint(Thread& t, const Breakpoint& bp, arch::Registers& regs);
  void on_return(Thread& t, arch::Registers& regs);
  void on_new_task(Thread& parent, int event);
  void on_exec(Thread& t);
  void on_exit_stop(Thread& t);
  void on_thread_gone(pid_t tid, int status);
  void adopt_early_stop(pid_t tid);
  void clean_forked_child(pid_t child);
  Process& follow_child(pid_t child, Process& parent, bool at_exec);
  void retire(Process& p);
  Outcome& outcome_of(const Process& p);
  Process* process_of(pid_t pid) const;
  bool any_traced() const;
  bool following() const;
  void end_vfork(Thread& child);
  void resume(Thread& t, int sig = 0);
  void step_over(Thread& t, const Breakpoint& bp, arch::Registers& regs);
  bool step_in_place(Thread& t, const Breakpoint& bp, arch::Registers& regs);
  bool inside_call(Thread& t, track::Family family, uint64_t sp);
  void restore_return_addresses(Thread& t, bool unwound = false);
  track::StackId capture_stack(Thread& t, const arch::Registers& regs, uint64_t function_address,
                               bool at_return = false);
  size_t unwind_stopped(Thread& t, const arch::Registers& at, size_t first);
  void flush_pending_traps(Process& p);
  void take_final_state(Process& p);
  bool finish_exiting(Process& p, bool scan = true);
  bool end_if_killed(Process& p);
  void run_to_end(Process& p);
  bool kill_pending(const Process& p) const;
  bool thread_killed(const Process& p, pid_t tid) const;
  void forget_thread(pid_t tid);
  Thread* find(pid_t tid) {
    auto it = by_tid.find(tid);
    return it == by_tid.end() ? nullptr : it->second;
  }
  Thread& add_thread(Process& p, pid_t tid);
  /// Every thread of |p| that will take part in a group-stop has reported it.
  static bool all_group_stopped(const Process& p) {
    for (auto& [_, t] : p.threads)
      if (!t->group_stopped && !t->exiting && !t->foreign) return false;
    return true;
  }

  // ---- setup.cpp
  std::optional<std::string> launch(const std::vector<std::string>& argv);
  std::optional<std::string> attach(pid_t pid);
  bool stop_all(Process& p, bool interrupt = true);
  void detach(Process& p);

  // ---- hooks.cpp
  bool setup_image(Process& p, Thread& t, bool at_exec);
  void refresh_modules(Process& p, Thread& t);
  void install_hooks(Process& p, Thread& t);
  bool starts_with_jump(uint64_t addr, std::span<const uint8_t> code);
  void plant(Process& p, Thread& t, uint64_t addr, Breakpoint::Kind kind, int function, std::string_view name);
  std::optional<uint64_t> scratch_slot(Process& p, Thread& t, uint64_t near, uint64_t size);
  std::optional<uint64_t> inject_syscall(Process& p, Thread& t, long nr, std::array<uint64_t, 6> args);
  void remove_scratch(Process& p, Thread& t);

  // ---- agent.cpp (the inject engine)
  class ProcessTarget;
  bool world_stopped(const Process& p) const;
  void inject_agent(Process& p, Thread& t);
  /// Why the function at |address| cannot be patched, if so; else its code in |code|.
  std::optional<std::string> agent_refusal(Process& p, uint64_t address, uint64_t size, std::vector<uint8_t>& code);
  bool agent_hook(Process& p, Thread& t, int function, uint64_t address, std::span<const uint8_t> code);
  void agent_hooks_in(Process& p);
  size_t drain_agent(Process& p, bool final = false);
  pid_t wait_draining(int& status);
  void remove_agent(Process& p);
  void drop_agent(Process& p);
  void report_agent(const Process& p);
  bool answer_agent(Thread& t);
  bool leave_syscall(Thread& t);
  bool single_step(Thread& t, arch::Registers& regs);
  bool run_to_trap(Thread& t, arch::Registers& regs);
  bool resume_until_trap(Thread& t, arch::Registers& regs, int request);
};

/// ptrace wrappers that log nothing: the caller decides what an error means.
bool get_regs(pid_t tid, arch::Registers& regs);
bool set_regs(pid_t tid, const arch::Registers& regs);

/// Set by ptmem's signal handlers; polled by the loop.
bool stop_requested();
std::vector<std::string> read_argv(pid_t pid);
void request_stop();

}  // namespace ptmem::ptrace
