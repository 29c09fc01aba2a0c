// One traced thread (rr's Task): its ptrace-stop state, the signal it owes, and the calls it
// is inside of whose return we are waiting for.
#pragma once
#include <cstdint>
#include <optional>
#include <sys/types.h>
#include <vector>

#include "ptmem/track/decoders.hpp"

namespace ptmem::ptrace {

class Process;

/// A traced call whose return address we replaced with the trampoline.
struct PendingReturn {
  uint64_t entry_sp = 0;        ///< rsp at the entry breakpoint: [entry_sp] held the return address
  uint64_t return_address = 0;  ///< the real one, restored at return (or at detach)
  uint64_t function_address = 0;
  track::CallRecord call;
};

class Thread {
 public:
  Thread(pid_t tid, Process* process) : tid_(tid), process_(process) { returns.reserve(4); }
  pid_t tid() const { return tid_; }
  void set_tid(pid_t tid) { tid_ = tid; }
  Process& process() const { return *process_; }

  bool stopped = false;        ///< in a ptrace-stop we have not resumed from
  bool group_stopped = false;  ///< in group-stop: resume with PTRACE_LISTEN
  /// ptmem mirrored a job stop before this thread reported it: if its next report is that
  /// group-stop, it is stale (the stop is already over), not a new stop to mirror.
  bool stale_group_stop = false;
  /// Set after a recorded call that needs no return and starts with a tail jump: a traced
  /// entry next on this thread with the same stack pointer and first argument is that
  /// jump arriving (operator delete -> free), not a second call.
  struct TailCall {
    uint64_t sp = 0, arg0 = 0;
  };
  std::optional<TailCall> tail_call;
  bool exiting = false;        ///< PTRACE_EVENT_EXIT seen
  /// Stopped at an event inside a syscall (clone, fork, vfork-done, exec): resuming it
  /// finishes that syscall, whose result then overwrites rax.  Code must not be run on
  /// such a thread until it has left the syscall (Session::Impl::leave_syscall).
  bool in_syscall_event = false;
  int pending_signal = 0;      ///< to deliver at the next resume / detach
  bool foreign = false;        ///< a vfork child borrowing the address space: step, don't record
  pid_t vfork_parent = 0;      ///< for a foreign thread: the thread blocked in its vfork
  /// Blocked in vfork until its child execs or exits: it cannot stop for PTRACE_INTERRUPT
  /// (the kernel waits killably), and runs nothing meanwhile, so stop_all() skips it.
  bool in_vfork = false;
  uint64_t vfork_tcb = 0;      ///< in_vfork: its TCB, whose agent slot the child borrows
  std::vector<PendingReturn> returns;

 private:
  pid_t tid_;
  Process* process_;
};

}  // namespace ptmem::ptrace
