// The tracer: launches or attaches, runs the single wait loop (the only waitpid in ptmem),
// turns breakpoint hits into track::EventSink events, and on exit, signal or deadline
// restores every byte and return address it changed and detaches.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ptmem/arch/registers.hpp"
#include "ptmem/arch/step_over.hpp"
#include "ptmem/ptrace/process.hpp"
#include "ptmem/track/events.hpp"
#include "ptmem/track/functions.hpp"

namespace ptmem::track { class StackTable; }

namespace ptmem::ptrace {

/// Where the events come from: int3 breakpoints at every traced call (exact, a ptrace
/// stop per call), or an agent injected into the target that records calls in shared
/// rings (no stop per call).  Both feed the same tables.
enum class Engine { Breakpoint, Inject };

struct TraceOptions {
  Engine engine = Engine::Breakpoint;
  bool track_alloc = true;
  bool track_fds = true;
  size_t depth = 16;                                  ///< frames kept per stack (report)
  std::optional<std::chrono::microseconds> duration;  ///< stop tracing after this long
  std::chrono::microseconds tick{1'000'000};          ///< on_tick period; 0: never
  bool quiet = false;                                 ///< no live status line
  bool verbose = false;                               ///< diagnostics on stderr
  /// Trace the children fork/vfork/clone-without-CLONE_VM make (and what they exec), each
  /// with its own tables (Session::on_child_start); without it they are cleaned of our
  /// hooks and let go.
  bool follow_forks = false;
};

/// What ptmem was doing: the moment the target ended is reported in these terms.
enum class Phase { Attach, Trace, Scan, Detach };

/// What happened to the target, for the report.
struct Outcome {
  pid_t pid = 0;
  std::string command;
  std::optional<int> exit_code;    ///< exited normally
  std::optional<int> signal;       ///< killed by this signal
  bool detached = false;           ///< we detached and it kept running
  std::optional<Phase> ended_during;  ///< when exit_code or signal is set: what ptmem was doing
  std::vector<int> inherited_fds;  ///< open at launch (not leaks)
  std::vector<std::string> argv;   ///< followed children: /proc/PID/cmdline at start and exec
};

class Session {
 public:
  Session(TraceOptions options, track::EventSink& sink, track::StackTable& stacks);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Starts |argv| traced.  Error: one line, no "ptmem:" prefix.
  std::optional<std::string> launch(const std::vector<std::string>& argv);
  /// Attaches to every thread of |pid|.
  std::optional<std::string> attach(pid_t pid);
  /// Traces until the target exits or a stop is requested (SIGINT/SIGTERM/SIGHUP, the
  /// duration); then restores and detaches if the target still lives.
  void run();

  const Outcome& outcome() const { return outcome_; }
  /// Threads traced right now in the target.
  size_t thread_count() const;
  /// The traced program's modules (for symbolization at report time).
  const symbols::ModuleMap& modules() const;
  /// The registers of every stopped thread of the traced process (for the reachability
  /// scan at the Final checkpoint: roots, and where each stack's live part starts).
  std::vector<arch::Registers> thread_registers() const;
  /// The registers of the threads that ended while traced (not the main thread), at their
  /// exit: their stacks are dead memory, not roots.  Forgotten at exec.
  const std::vector<arch::Registers>& exited_thread_registers() const;
  /// The same for the traced process |pid| (the main one or a followed child), for the
  /// checkpoints of a child.
  std::vector<arch::Registers> thread_registers(pid_t pid) const;
  const std::vector<arch::Registers>& exited_thread_registers(pid_t pid) const;

  /// --follow-forks: where a new child's events and stacks go.  Called once per followed
  /// child, at its first stop (a forked child) or at its exec (a vfork child, whose own
  /// calls before the exec are the parent's memory and not recorded), before any of its
  /// events and before its Attached checkpoint (its fds then are inherited, not leaks).
  /// The references must stay valid until the Session is destroyed.
  struct ChildTables {
    track::EventSink& sink;
    track::StackTable& stacks;
  };
  std::function<ChildTables(pid_t child, pid_t parent)> on_child_start;
  /// Followed children, in on_child_start order: how each ended, and its modules (for
  /// symbolization at report time; they outlive the process).
  size_t child_count() const;
  const Outcome& child_outcome(size_t index) const;
  const symbols::ModuleMap& child_modules(size_t index) const;
  /// Called every TraceOptions::tick (live figures).
  std::function<void()> on_tick;
  /// Called about every 50 ms while tracing, between events (a full-screen view reads its
  /// keys here); it may call stop() to end the trace.
  std::function<void()> on_poll;
  /// Ends the trace as SIGINT would: restore, detach, and return from run().
  static void stop();
  /// SIGUSR1 reached ptmem: the tables are up to date; report them without detaching.
  std::function<void()> on_snapshot;
  /// Moments when the target's fds must be compared with /proc/PID/fd (the tracker's
  /// reconciliation): after attach, after an exec (close-on-exec fds are gone), and at the
  /// end (last exit stop, or just before detach) while the process still exists.  With
  /// follow_forks, for each child too (its pid): Attached when it starts being traced.
  enum class Checkpoint { Attached, Launched, Exec, Final };
  std::function<void(pid_t, Checkpoint)> on_checkpoint;

  /// Installs ptmem's SIGINT/SIGTERM/SIGHUP (stop) and SIGUSR1 (snapshot) handlers; they
  /// only set a flag, which this clears (a trace started after another one ended).
  static void install_signal_handlers();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Outcome outcome_;
};

}  // namespace ptmem::ptrace
