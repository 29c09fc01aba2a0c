// Job control for a program launched on a terminal, done the way gdb and job-control
// shells do it.  Private to src/ptrace.
#pragma once
#include <sys/types.h>

namespace ptmem::ptrace {

/// When ptmem runs in the foreground of a terminal, the program it launches gets a
/// process group of its own and the terminal's foreground.  Keys then reach the program
/// alone, as without ptmem: Ctrl-C or Ctrl-\ ends the program (and ptmem reports its end),
/// Ctrl-Z stops it.  Because the shell only knows ptmem, ptmem mirrors the program's job
/// stops: when the program stops for SIGTSTP, SIGTTIN or SIGTTOU, ptmem stops itself with
/// the same signal, so the shell sees the job stop and takes the terminal; when `fg` or
/// `bg` continues ptmem, ptmem gives the terminal back (fg) and continues the program.
///
/// Without a terminal (pipes, CI, scripts) nothing changes: the program stays in ptmem's
/// process group, so signals sent to the group reach both, as they did before.
class Terminal {
 public:
  /// Before fork: find a terminal whose foreground is ptmem's process group.
  /// Returns whether job control is on.
  bool prepare();
  bool active() const { return fd_ >= 0; }

  /// In the forked child, before exec: a process group of its own, and SIGTTOU as ptmem
  /// found it.  Async-signal-safe.
  void in_child() const;
  /// In the parent once the child exists: its group, made the terminal's foreground.
  void hand_over(pid_t program);

  /// The program stopped for job control with SIG: stop ptmem the same way.  Returns once
  /// ptmem has been continued, after giving the terminal back (if ptmem is in the
  /// foreground again) and continuing the program's group.
  void mirror_stop(int sig);

  /// The program ended or was detached: take the foreground back if the program had it,
  /// so the report can be written and the shell finds the terminal as it left it.
  void take_back();

 private:
  int fd_ = -1;
  bool ttou_ignored_ = false;  ///< SIGTTOU's disposition when ptmem started
  pid_t program_ = 0;  ///< the program's process group (its pid)
};

}  // namespace ptmem::ptrace
