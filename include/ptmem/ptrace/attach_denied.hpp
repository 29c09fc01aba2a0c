// Why the kernel refused to let ptmem trace a process, as one line saying what to do.
// The reasoning is a pure function of facts (attach_denied), so that every branch, Yama's
// ptrace_scope 1, 2 and 3 included, is tested on any machine; attach_facts gathers them.
//
// The kernel's order (kernel/ptrace.c __ptrace_may_access, then Yama's hooks): a tracer
// without CAP_SYS_PTRACE must have the target's real, effective and saved uid and gid as its
// own real ones; then the target must be dumpable; then Yama: scope 1 only descendants
// (or a process that named ptmem with PR_SET_PTRACER), scope 2 only CAP_SYS_PTRACE, scope 3
// nothing at all (PTRACE_TRACEME included), a setting that cannot be lowered until reboot.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

namespace ptmem::ptrace {

/// Real, effective and saved ids, as in the Uid: and Gid: lines of /proc/PID/status.
struct Ids {
  uint32_t real = 0, effective = 0, saved = 0;
  bool operator==(const Ids&) const = default;
};

struct AttachFacts {
  int error = 0;                 ///< errno of PTRACE_SEIZE
  pid_t pid = 0;
  bool launch = false;           ///< the target is the child ptmem forked to launch a program
  std::optional<Ids> target_uid, target_gid;  ///< nullopt: unreadable
  uint32_t own_uid = 0, own_gid = 0;          ///< ptmem's real ids (what the kernel compares)
  std::string target_user, own_user;          ///< names of target_uid->real and own_uid, "" unknown
  bool cap_sys_ptrace = false;   ///< in ptmem's effective capabilities
  std::optional<int> ptrace_scope;  ///< kernel.yama.ptrace_scope; nullopt: no Yama (classic rules)
  bool descendant = false;       ///< the target descends from ptmem
  std::optional<bool> dumpable;  ///< nullopt: unknown
};

/// The reason, one line without a trailing period (e.g. "process 42 belongs to uid 0 (root)
/// and ptmem runs as uid 65534 (nobody) without CAP_SYS_PTRACE; run ptmem as root or with
/// CAP_SYS_PTRACE").  For an error other than EPERM, strerror(error).
std::string attach_denied(const AttachFacts& facts);

/// The facts about |pid| from /proc, for an attach (launch = false) or a launch.
AttachFacts attach_facts(pid_t pid, int error, bool launch);

}  // namespace ptmem::ptrace
