// Getting in and out: launch a program traced from its first instruction, attach to every
// thread of a running process (gdb's rescan-until-stable), stop the world, and detach
// leaving nothing behind (strace's cleanup, made stricter by our breakpoints).
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <set>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptmem/proc/maps.hpp"
#include "ptmem/ptrace/attach_denied.hpp"
#include "ptmem/util/test_pause.hpp"
#include "session_impl.hpp"

namespace ptmem::ptrace {
namespace {

// TRACESYSGOOD: the one syscall-exit stop ptmem asks for (leave_syscall) is told apart
// from an int3's SIGTRAP.
constexpr long kOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                          PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT |
                          PTRACE_O_TRACESYSGOOD;

// "PROGRAM" as execvp would find it.
std::optional<std::string> resolve_program(const std::string& name, std::string* error) {
  auto check = [&](const std::string& path) -> int {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ENOENT;
    if (S_ISDIR(st.st_mode)) return EISDIR;
    if (::access(path.c_str(), X_OK) != 0) return EACCES;
    return 0;
  };
  if (name.find('/') != std::string::npos) {
    int e = check(name);
    if (e == ENOENT) *error = fmt::format("program not found: {}", name);
    else if (e) *error = fmt::format("cannot execute {}: {}", name, std::strerror(e));
    if (e) return std::nullopt;
    return name;
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  int last = ENOENT;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t colon = path.find(':', pos);
    std::string dir = path.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    pos = colon == std::string::npos ? path.size() + 1 : colon + 1;
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    int e = check(candidate);
    if (e == 0) return candidate;
    if (e != ENOENT) last = e;
  }
  if (last == ENOENT) *error = fmt::format("program not found: {}", name);
  else *error = fmt::format("cannot execute {}: {}", name, std::strerror(last));
  return std::nullopt;
}

// ELF class/machine of a file: "" if fine (or not ELF: a script), else the problem.
std::string check_elf(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  unsigned char ident[EI_NIDENT + 4] = {};
  ssize_t n = ::read(fd, ident, sizeof ident);
  ::close(fd);
  if (n < EI_NIDENT + 4 || std::memcmp(ident, ELFMAG, SELFMAG) != 0) return {};
  if (ident[EI_CLASS] == ELFCLASS32) return "is a 32-bit program; ptmem traces x86-64 programs only";
  uint16_t machine;
  std::memcpy(&machine, ident + EI_NIDENT + 2, 2);
  if (machine != EM_X86_64) return "is not an x86-64 program";
  return {};
}

}  // namespace

std::optional<std::string> Session::Impl::launch(const std::vector<std::string>& argv) {
  if (argv.empty()) return "no program given";
  std::string error;
  auto path = resolve_program(argv[0], &error);
  if (!path) return error;
  if (auto bad = check_elf(*path); !bad.empty()) return fmt::format("{} {}", argv[0], bad);

  // The program inherits exactly the fds ptmem was given: ours are close-on-exec.
  std::vector<int> inherited;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int self_fd = ::dirfd(d);
    while (auto* e = ::readdir(d)) {
      int fd = std::atoi(e->d_name);
      if (e->d_name[0] == '.' || fd == self_fd) continue;
      int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0 && !(flags & FD_CLOEXEC)) inherited.push_back(fd);
    }
    ::closedir(d);
  }
  std::sort(inherited.begin(), inherited.end());
  self.outcome_.inherited_fds = inherited;

  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) return fmt::format("pipe: {}", std::strerror(errno));
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  terminal.prepare();
  pid_t pid = ::fork();
  if (pid < 0) return fmt::format("fork: {}", std::strerror(errno));
  if (pid == 0) {
    ::close(errpipe[0]);
    ::signal(SIGPIPE, SIG_DFL);
    terminal.in_child();
    ::raise(SIGSTOP);  // wait here until the parent has seized us
    ::execv(path->c_str(), args.data());
    int e = errno;
    (void)!::write(errpipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(errpipe[1]);
  int status;
  while (::waitpid(pid, &status, WUNTRACED) < 0 && errno == EINTR) {
  }
  // EXITKILL: if ptmem dies, the program it launched dies with it rather than running on
  // with our int3s and no tracer.
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, kOptions | PTRACE_O_EXITKILL) != 0) {
    int e = errno;
    std::string why = attach_denied(attach_facts(pid, e, true));  // while the child is there to read
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    ::close(errpipe[0]);
    return fmt::format("cannot trace {}: {}", argv[0], why);
  }
  main = std::make_unique<Process>(pid);
  main->sink = &sink;
  main->stacks = &stacks;
  main->command = argv[0];
  launched = true;
  Thread& t = add_thread(*main, pid);
  terminal.hand_over(pid);
  ::kill(pid, SIGCONT);

  // Run the child up to its execve: the seize may show the SIGSTOP as a group-stop and
  // the SIGCONT as a signal; anything but the exec event is just continued.
  for (;;) {
    pid_t r = ::waitpid(pid, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status)) {
      int e = 0;
      bool got = ::read(errpipe[0], &e, sizeof e) == sizeof e;
      ::close(errpipe[0]);
      forget_thread(pid);
      main.reset();
      terminal.take_back();
      return fmt::format("cannot execute {}: {}", argv[0], got ? std::strerror(e) : "it died");
    }
    int event = status >> 16;
    if (event == PTRACE_EVENT_EXEC) {
      ::close(errpipe[0]);
      handle_stop(t, status);
      return std::nullopt;
    }
    int sig = WSTOPSIG(status);
    int deliver = (event == 0 && sig != SIGSTOP && sig != SIGTRAP) ? sig : 0;
    ::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<uintptr_t>(deliver)));
  }
}

std::optional<std::string> Session::Impl::attach(pid_t pid) {
  if (pid <= 0) return fmt::format("invalid process id {}", pid);
  if (pid == ::getpid()) return "ptmem cannot attach to itself";
  auto st = proc::read_status(pid);
  if (!st) return fmt::format("no such process: {}", pid);
  if (st->tgid != pid && st->tgid > 0)
    return fmt::format("{} is a thread of process {}; attach to {}", pid, st->tgid, st->tgid);
  if (st->state == 'Z' || st->state == 'X') return fmt::format("process {} is a zombie", pid);
  if (st->kernel_thread) return fmt::format("process {} ({}) is a kernel thread", pid, st->name);
  if (st->tracer_pid != 0) {
    auto tracer = proc::read_status(st->tracer_pid);
    return fmt::format("process {} is already traced by {} ({})", pid, st->tracer_pid,
                       tracer ? tracer->name : "?");
  }
  if (auto bad = check_elf(fmt::format("/proc/{}/exe", pid)); !bad.empty())
    return fmt::format("process {} ({}) {}", pid, st->name, bad);

  main = std::make_unique<Process>(pid);
  main->sink = &sink;
  main->stacks = &stacks;
  main->command = st->name;
  if (auto cmd = proc::read_file(fmt::format("/proc/{}/cmdline", pid), 4096); cmd && !cmd->empty()) {
    std::string first = cmd->substr(0, cmd->find('\0'));
    if (!first.empty()) main->command = first;
  }

  // Seize every thread; threads can be born while we read the list, so rescan until two
  // passes in a row find nothing new.
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, kOptions) != 0) {
    int e = errno;
    main.reset();
    if (e == EPERM)
      return fmt::format("permission denied attaching to {}: {}", pid, attach_denied(attach_facts(pid, e, false)));
    if (e == ESRCH) return fmt::format("process {} exited during attach", pid);
    return fmt::format("cannot attach to {}: {}", pid, std::strerror(e));
  }
  add_thread(*main, pid);
  for (int quiet_passes = 0; quiet_passes < 2;) {
    bool found = false;
    for (pid_t tid : proc::list_tasks(pid)) {
      if (find(tid)) continue;
      if (::ptrace(PTRACE_SEIZE, tid, nullptr, kOptions) == 0) {
        add_thread(*main, tid);
        found = true;
      }  // ESRCH/EPERM: the thread is exiting; fine
    }
    quiet_passes = found ? 0 : quiet_passes + 1;
  }
  util::test_pause("attach");  // a test hook (PTMEM_TEST_PAUSE): seized, not yet stopped
  // Every thread stopped in its exit: it ends under our eyes, nothing to set up.
  if (!stop_all(*main) || main->threads.empty() || finish_exiting(*main, false)) {
    main.reset();
    by_tid.clear();
    return fmt::format("process {} exited during attach", pid);
  }
  // Injected syscalls need a thread that is not in group-stop.
  Thread* worker = nullptr;
  for (auto& [tid, t] : main->threads)
    if (!t->group_stopped && !t->exiting) { worker = t.get(); break; }
  if (!worker) worker = main->threads.begin()->second.get();
  setup_image(*main, *worker, false);
  if (self.on_checkpoint) self.on_checkpoint(pid, Session::Checkpoint::Attached);
  for (auto& [tid, t] : main->threads) {
    int sig = std::exchange(t->pending_signal, 0);
    resume(*t, sig);
  }
  return std::nullopt;
}

bool Session::Impl::stop_all(Process& p, bool interrupt) {
  // Only |p| stays stopped: the other traced processes' events are served as usual.
  p.quiescing = true;
  if (interrupt)
    for (auto& [tid, t] : p.threads)
      if (!t->stopped && !t->in_vfork) ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
  auto all_stopped = [&] {
    for (auto& [tid, t] : p.threads)
      if (!t->stopped && !t->in_vfork) return false;
    return true;
  };
  // Events already taken from the kernel but not handled (deferred) belong to this stop
  // too: a signal owed, an exit under way.  Left for after the detach, they would be lost.
  while (!all_stopped() || !deferred.empty())
    if (!serve_next_event()) break;
  p.quiescing = false;
  return !p.threads.empty();
}

// Last resort for an instruction we can neither emulate nor relocate: with every other
// thread stopped, put the original byte back, single-step, re-arm.
bool Session::Impl::step_in_place(Thread& t, const Breakpoint& bp, arch::Registers& regs) {
  Process& p = t.process();
  uint64_t address = bp.address;
  uint8_t original = bp.original;
  stop_all(p);
  if (!set_regs(t.tid(), regs)) return false;
  p.mem.write(address, &original, 1);
  // A signal delivered during the step would run its handler first, and the handler would
  // return to the original instruction behind our int3 again: the call counted twice.  So
  // the step runs with every signal blocked (they stay pending, in order, with their
  // values) and the thread's mask goes back after.
  uint64_t mask = 0, all = ~uint64_t{0};
  bool masked = ::ptrace(PTRACE_GETSIGMASK, t.tid(), sizeof mask, &mask) == 0 &&
                ::ptrace(PTRACE_SETSIGMASK, t.tid(), sizeof all, &all) == 0;
  bool ok = false;
  for (int tries = 0; tries < 16; ++tries) {
    if (::ptrace(PTRACE_SINGLESTEP, t.tid(), nullptr,
                 reinterpret_cast<void*>(static_cast<uintptr_t>(std::exchange(t.pending_signal, 0)))) != 0)
      break;
    int status;
    if (wait_for_thread(t, status) < 0) break;  // dying: the loop sees its exit
    if (WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0) {
      ok = true;
      break;
    }
    if ((status >> 16) == 0) t.pending_signal = WSTOPSIG(status);  // deliver on the next step
  }
  if (masked) ::ptrace(PTRACE_SETSIGMASK, t.tid(), sizeof mask, &mask);
  static constexpr uint8_t kInt3 = 0xCC;
  p.mem.write(address, &kInt3, 1);
  for (auto& [tid, other] : p.threads)
    if (other.get() != &t && other->stopped) resume(*other, std::exchange(other->pending_signal, 0));
  return ok;
}

// PTRACE_INTERRUPT can win the race against the SIGTRAP of an int3 a thread has just
// executed: the thread reports the interrupt with the SIGTRAP still queued (rip just past one
// of our int3s).  Detached like that, it would die of the SIGTRAP.  Let such threads take
// the signal now, under our eyes (quiescing handles it like any trap), and stop again.
void Session::Impl::flush_pending_traps(Process& p) {
  for (int round = 0; round < 8; ++round) {
    bool any = false;
    for (auto& [tid, t] : p.threads) {
      arch::Registers regs;
      if (!t->stopped || t->group_stopped || !get_regs(tid, regs)) continue;
      uint64_t addr = regs.ip() - 1;
      if (!p.breakpoints.contains(addr) && !(p.trampoline && addr == p.trampoline)) continue;
      if (::ptrace(PTRACE_CONT, tid, nullptr, nullptr) == 0) {
        t->stopped = false;
        any = true;
      }
    }
    if (!any) return;
    stop_all(p, false);  // an interrupt now could win the race again: just wait
  }
}

void Session::Impl::detach(Process& p) {
  stop_all(p);
  flush_pending_traps(p);
  // A child forked just before the stop, whose first stop has not come yet, has a copy of
  // our int3s: clean it (and let it go) while our table still says where they are.
  auto forks_pending = [&] {
    for (auto& [_, fc] : forked)
      if (fc.parent == &p && !fc.vfork) return true;
    return false;
  };
  while (forks_pending())
    if (!serve_next_event()) break;
  if (p.threads.empty()) return;
  if (finish_exiting(p)) return;  // it was ending anyway: not detached
  remove_agent(p);
  take_final_state(p);
  if (end_if_killed(p)) return;  // SIGKILL came during the scan: it ends, not detached
  Thread* worker = nullptr;
  for (auto& [tid, t] : p.threads) {
    if (!worker && !t->group_stopped && !t->exiting) worker = t.get();
    // A thread between our displaced copy and its jump back goes back to the original code.
    arch::Registers regs;
    if (get_regs(tid, regs) && p.scratch_page(regs.ip())) {
      for (auto* bp : p.breakpoints.all()) {
        if (!bp->displaced_slot || regs.ip() < bp->displaced_slot ||
            regs.ip() >= bp->displaced_slot + arch::kMaxDisplacedSize)
          continue;
        regs.set_ip(regs.ip() == bp->displaced_slot ? bp->address : bp->address + bp->plan.length);
        set_regs(tid, regs);
        break;
      }
    }
    restore_return_addresses(*t);
  }
  p.breakpoints.remove_all(p.mem);
  if (worker && !p.keep_scratch) remove_scratch(p, *worker);
  for (auto& [tid, t] : p.threads)
    ::ptrace(PTRACE_DETACH, tid, nullptr,
             reinterpret_cast<void*>(static_cast<uintptr_t>(t->pending_signal)));
  for (auto& [tid, t] : p.threads) by_tid.erase(tid);
  p.threads.clear();
  outcome_of(p).detached = true;
  retire(p);
}

}  // namespace ptmem::ptrace
