#include "ptmem/ptrace/attach_denied.hpp"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptmem/proc/maps.hpp"

namespace ptmem::ptrace {
namespace {

constexpr int kCapSysPtrace = 19;

std::string user(uint32_t uid, const std::string& name) {
  return name.empty() ? fmt::format("uid {}", uid) : fmt::format("uid {} ({})", uid, name);
}

std::string triple(const Ids& ids) { return fmt::format("{}/{}/{}", ids.real, ids.effective, ids.saved); }

// The value after "|key|:" in a /proc status text, "" when absent.
std::string field(const std::string& text, std::string_view key) {
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':')
      return std::string(line.substr(key.size() + 1));
    pos = eol + 1;
  }
  return {};
}

std::optional<Ids> parse_ids(const std::string& value) {
  Ids ids;
  if (std::sscanf(value.c_str(), "%u %u %u", &ids.real, &ids.effective, &ids.saved) != 3) return std::nullopt;
  return ids;
}

std::string user_name(uint32_t uid) {
  struct passwd pw, *out = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &out) != 0 || !out) return {};
  return out->pw_name;
}

}  // namespace

std::string attach_denied(const AttachFacts& f) {
  if (f.error != EPERM) return std::strerror(f.error);
  const std::optional<int>& scope = f.ptrace_scope;
  // Scope 3 refuses everyone, whatever the credentials and capabilities.
  if (scope && *scope >= 3) {
    if (f.launch)
      return "kernel.yama.ptrace_scope is 3: ptrace is disabled for every process, root's included, even of "
             "one's own child (PTRACE_TRACEME is refused too), until reboot";
    return "kernel.yama.ptrace_scope is 3: ptrace is disabled for every process, root's included, until "
           "reboot (the setting cannot be lowered); ptmem launch is refused too";
  }
  if (f.cap_sys_ptrace)
    return "refused although ptmem has CAP_SYS_PTRACE: a security module (SELinux, AppArmor), a seccomp "
           "filter, or a user namespace the capability does not cover";
  const std::string fix = "run ptmem as root or with CAP_SYS_PTRACE";
  if (f.target_uid && f.target_gid) {
    const Ids& uid = *f.target_uid;
    if (uid.real != f.own_uid) {
      std::string other;  // running as the target's user instead: what else it needs
      if (scope == 2) other = " (kernel.yama.ptrace_scope is 2: nothing else may trace)";
      else if (scope == 1 && !f.launch && uid.real != 0)
        other = fmt::format(", or as uid {} with ptmem launch (kernel.yama.ptrace_scope is 1: attach reaches "
                            "only descendants)", uid.real);
      else if (uid.real != 0) other = fmt::format(", or as uid {}", uid.real);
      return fmt::format("process {} belongs to {} and ptmem runs as {} without CAP_SYS_PTRACE; {}{}", f.pid,
                         user(uid.real, f.target_user), user(f.own_uid, f.own_user), fix, other);
    }
    const Ids own_uid{f.own_uid, f.own_uid, f.own_uid}, own_gid{f.own_gid, f.own_gid, f.own_gid};
    if (uid != own_uid || *f.target_gid != own_gid)
      return fmt::format("process {} runs with credentials other than ptmem's (uid {}, gid {} real/effective/saved; "
                         "ptmem: uid {}, gid {}): a setuid or setgid program, which only CAP_SYS_PTRACE may "
                         "trace; {}", f.pid, triple(uid), triple(*f.target_gid), f.own_uid, f.own_gid, fix);
  }
  if (f.dumpable == false)
    return fmt::format("process {} is not dumpable (prctl(PR_SET_DUMPABLE, 0), a change of credentials, or an "
                       "unreadable executable), and only CAP_SYS_PTRACE may trace such a process; {}", f.pid, fix);
  if (scope == 1 && !f.descendant)
    return fmt::format("kernel.yama.ptrace_scope is 1: a process may trace only its descendants, and process {} is "
                       "not one of ptmem's; use ptmem launch, {}, or allow attaching with sysctl "
                       "kernel.yama.ptrace_scope=0", f.pid, fix);
  if (scope == 2)
    return fmt::format("kernel.yama.ptrace_scope is 2: only a process with CAP_SYS_PTRACE may trace, and ptmem "
                       "lacks it; {}, or as root lower the setting (sysctl kernel.yama.ptrace_scope=1)", fix);
  return fmt::format("refused although process {} has ptmem's uid and gid and is dumpable: a security module "
                     "(SELinux, AppArmor) or a seccomp filter", f.pid);
}

AttachFacts attach_facts(pid_t pid, int error, bool launch) {
  AttachFacts f;
  f.error = error;
  f.pid = pid;
  f.launch = launch;
  f.own_uid = ::getuid();
  f.own_gid = ::getgid();
  f.own_user = user_name(f.own_uid);
  std::string status = proc::read_file(fmt::format("/proc/{}/status", pid), 1 << 16).value_or("");
  f.target_uid = parse_ids(field(status, "Uid"));
  f.target_gid = parse_ids(field(status, "Gid"));
  if (f.target_uid) f.target_user = user_name(f.target_uid->real);
  std::string self = proc::read_file("/proc/self/status", 1 << 16).value_or("");
  f.cap_sys_ptrace = (std::strtoull(field(self, "CapEff").c_str(), nullptr, 16) >> kCapSysPtrace) & 1;
  // Absent without Yama: the classic rules alone apply.
  if (auto scope = proc::read_file("/proc/sys/kernel/yama/ptrace_scope", 64); scope && !scope->empty())
    f.ptrace_scope = std::atoi(scope->c_str());
  // The files in /proc/PID (not the directory itself) belong to root instead of the
  // process's euid when it is not dumpable (fs/proc/base.c, task_dump_owner).
  struct stat st;
  if (f.target_uid && f.target_uid->effective != 0 &&
      ::stat(fmt::format("/proc/{}/stat", pid).c_str(), &st) == 0)
    f.dumpable = st.st_uid == f.target_uid->effective;
  // Yama's descendant test follows real parents, which PPid: shows.
  pid_t self_pid = ::getpid();
  pid_t p = pid;
  for (int depth = 0; p > 1 && depth < 4096 && !f.descendant; ++depth) {
    auto st_p = proc::read_status(p);
    if (!st_p) break;
    p = st_p->ppid;
    f.descendant = p == self_pid;
  }
  return f;
}

}  // namespace ptmem::ptrace
