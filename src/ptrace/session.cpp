// The wait loop and event dispatch (strace's next_event/dispatch_event): every ptrace stop
// of every traced thread comes through handle(), is classified, acted on, and the thread is
// resumed with exactly the signal it owes.
#include <cerrno>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <elf.h>
#include <fmt/format.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <utility>

#include "ptmem/arch/glibc_abi.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/util/eprint.hpp"
#include "ptmem/util/test_pause.hpp"
#include "session_impl.hpp"
#include "stack_reader.hpp"

namespace ptmem::ptrace {
namespace {

volatile sig_atomic_t g_stop = 0;

void on_stop_signal(int) { g_stop = 1; }
volatile sig_atomic_t g_snapshot = 0;
void on_snapshot_signal(int) { g_snapshot = 1; }
void on_alarm(int) {}

bool is_stop_signal(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

// Read with the registers at every allocation: enough for the frames of most programs; the
// unwinder reads deeper stacks through StackReader.
constexpr size_t kStackSnapshot = 2048;

// PTMEM_DEBUG=1 traces the engine's own decisions on stderr (for developers).
const bool g_debug = std::getenv("PTMEM_DEBUG") != nullptr;

}  // namespace

bool stop_requested() { return g_stop != 0; }

// /proc/PID/cmdline as the list of arguments (empty if unreadable).
std::vector<std::string> read_argv(pid_t pid) {
  std::vector<std::string> argv;
  auto bytes = proc::read_file(fmt::format("/proc/{}/cmdline", pid), 64 * 1024);
  if (!bytes) return argv;
  for (size_t at = 0; at < bytes->size();) {
    size_t end = bytes->find('\0', at);
    if (end == std::string::npos) end = bytes->size();
    argv.push_back(bytes->substr(at, end - at));
    at = end + 1;
  }
  return argv;
}
void request_stop() { g_stop = 1; }

bool get_regs(pid_t tid, arch::Registers& regs) {
  return ::ptrace(PTRACE_GETREGS, tid, nullptr, &regs.raw) == 0;
}
bool set_regs(pid_t tid, const arch::Registers& regs) {
  return ::ptrace(PTRACE_SETREGS, tid, nullptr, &regs.raw) == 0;
}

void Session::stop() { request_stop(); }

void Session::install_signal_handlers() {
  g_stop = 0;
  g_snapshot = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: waitpid must return EINTR so the loop sees the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, nullptr);
  sa.sa_handler = on_snapshot_signal;
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

Session::Session(TraceOptions options, track::EventSink& sink, track::StackTable& stacks)
    : impl_(std::make_unique<Impl>(*this, options, sink, stacks)) {
  impl_->stack_buf.resize(kStackSnapshot);
  impl_->pcs.resize(options.depth + 8);
}

Session::~Session() = default;

std::optional<std::string> Session::launch(const std::vector<std::string>& argv) {
  auto err = impl_->launch(argv);
  if (!err) {
    outcome_.pid = impl_->main->pid();
    outcome_.command = impl_->main->command;
    outcome_.argv = argv;
  }
  return err;
}

std::optional<std::string> Session::attach(pid_t pid) {
  auto err = impl_->attach(pid);
  if (err && (outcome_.exit_code || outcome_.signal)) {
    // It ended while we attached: say how, as the kernel told us.
    if (outcome_.signal) {
      const char* abbrev = sigabbrev_np(*outcome_.signal);
      return fmt::format("process {} was killed by {} during the attach",
                         pid, abbrev ? std::string("SIG") + abbrev : std::to_string(*outcome_.signal));
    }
    return fmt::format("process {} exited with status {} during the attach", pid, *outcome_.exit_code);
  }
  if (!err) {
    outcome_.pid = impl_->main->pid();
    outcome_.command = impl_->main->command;
    outcome_.argv = read_argv(pid);
    // Killed while we set up, with every thread stopped: its end is reported later, by the
    // loop, but it happened now.
    if (impl_->kill_pending(*impl_->main)) outcome_.ended_during = Phase::Attach;
  }
  return err;
}

void Session::run() { impl_->loop(); }

size_t Session::thread_count() const { return impl_->main ? impl_->main->threads.size() : 0; }

const symbols::ModuleMap& Session::modules() const { return impl_->main->modules; }

std::vector<arch::Registers> Session::thread_registers() const {
  return impl_->main ? thread_registers(impl_->main->pid()) : std::vector<arch::Registers>{};
}

const std::vector<arch::Registers>& Session::exited_thread_registers() const {
  static const std::vector<arch::Registers> none;
  return impl_->main ? impl_->main->exited_regs : none;
}

std::vector<arch::Registers> Session::thread_registers(pid_t pid) const {
  std::vector<arch::Registers> all;
  Process* p = impl_->process_of(pid);
  if (!p) return all;
  for (auto& [tid, t] : p->threads) {
    arch::Registers r;
    if (t->stopped && !t->foreign && get_regs(tid, r)) all.push_back(r);
  }
  return all;
}

const std::vector<arch::Registers>& Session::exited_thread_registers(pid_t pid) const {
  static const std::vector<arch::Registers> none;
  Process* p = impl_->process_of(pid);
  return p ? p->exited_regs : none;
}

size_t Session::child_count() const { return impl_->children.size(); }
const Outcome& Session::child_outcome(size_t index) const { return impl_->children.at(index).outcome; }
const symbols::ModuleMap& Session::child_modules(size_t index) const {
  return impl_->children.at(index).process->modules;
}

// The traced process |pid| now: the main one, else the latest child with that pid (an
// ended child's pid may have been reused).
Process* Session::Impl::process_of(pid_t pid) const {
  if (main && main->pid() == pid) return main.get();
  for (auto it = children.rbegin(); it != children.rend(); ++it)
    if (it->process->pid() == pid) return it->process.get();
  return nullptr;
}

Outcome& Session::Impl::outcome_of(const Process& p) {
  for (auto& c : children)
    if (c.process.get() == &p) return c.outcome;
  return self.outcome_;
}

bool Session::Impl::any_traced() const {
  if (main && !main->threads.empty()) return true;
  for (auto& c : children)
    if (!c.process->threads.empty()) return true;
  return false;
}

Thread& Session::Impl::add_thread(Process& p, pid_t tid) {
  Thread& t = p.add_thread(tid);
  by_tid[tid] = &t;
  if (p.record) p.sink->on_thread_start(tid);
  return t;
}

void Session::Impl::forget_thread(pid_t tid) {
  auto it = by_tid.find(tid);
  if (it == by_tid.end()) return;
  Process& p = it->second->process();
  by_tid.erase(it);
  p.threads.erase(tid);
}

// A periodic SIGALRM interrupts waitpid so a stop request made just before it blocks, or a
// --duration deadline, is noticed within a fraction of a second even if the target is idle.
void Session::Impl::loop() {
  // Woken 4 times per tick at least, so a short --interval keeps its pace when idle.
  long wake_us = opt.tick.count() > 0 ? std::clamp<long>(opt.tick.count() / 4, 10'000, 100'000) : 100'000;
  if (self.on_poll) wake_us = std::min(wake_us, 50'000L);  // keys answered within 50 ms
  itimerval tv{};
  tv.it_interval.tv_usec = wake_us;
  tv.it_value.tv_usec = wake_us;
  setitimer(ITIMER_REAL, &tv, nullptr);
  start = std::chrono::steady_clock::now();
  const auto never = std::chrono::steady_clock::time_point::max();
  next_tick = opt.tick.count() > 0 ? start + opt.tick : never;
  auto next_poll = start;
  phase = Phase::Trace;
  bool has_deadline = opt.duration.has_value();
  auto deadline = start + opt.duration.value_or(std::chrono::microseconds(0));

  while (any_traced()) {
    auto now = std::chrono::steady_clock::now();
    if (stop_requested() || (has_deadline && now >= deadline)) {
      phase = Phase::Detach;
      util::test_pause("detach");
      // Every traced process, children too; a child forked meanwhile is followed and
      // then detached in turn (the detaches serve the other processes' events).
      if (main && !main->threads.empty()) detach(*main);
      for (size_t i = 0; i < children.size(); ++i)
        if (!children[i].process->threads.empty()) detach(*children[i].process);
      break;
    }
    if (now >= next_tick) {
      next_tick += opt.tick;
      if (next_tick <= now) next_tick = now + opt.tick;  // fell behind (a long stop): no burst
      if (self.on_tick) self.on_tick();
    }
    if (self.on_poll && now >= next_poll) {
      next_poll = now + std::chrono::milliseconds(50);
      self.on_poll();
    }
    if (g_snapshot) {
      // SIGUSR1: the tables as of now, with what the agents recorded up to here.
      g_snapshot = 0;
      if (main) drain_agent(*main);
      if (self.on_snapshot) self.on_snapshot();
    }
    int status;
    if (job_stop) {
      // The program stopped for job control: once every stop reported so far is handled
      // (its threads are listening for SIGCONT), stop ptmem too, so the shell sees the job
      // stop.  We return from this once fg or bg continues us.
      // A group-stop reaches each thread on its own way into the kernel: the shell must
      // not see the job stopped while some thread still runs, so wait for all of them.
      pid_t tid = deferred.empty() ? ::waitpid(-1, &status, __WALL | WNOHANG) : next_event(status);
      if (tid == 0 && main && !all_group_stopped(*main)) tid = next_event(status);
      if (tid > 0) {
        handle(tid, status);
        continue;
      }
      if (tid < 0 && errno == EINTR) continue;
      int sig = std::exchange(job_stop, 0);
      if (tid == 0) {
        for (auto& [_, thread] : main->threads)
          if (!thread->group_stopped) thread->stale_group_stop = true;
        terminal.mirror_stop(sig);
      }
      continue;
    }
    pid_t tid = next_event(status);
    if (tid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: nothing left to wait for
    }
    handle(tid, status);
  }
  // Killed with no thread reporting an exit stop (SIGKILL can end them first): the rings,
  // mapped in ptmem too, still hold what the agent recorded.
  if (main && main->agent && !main->final_state_taken) drain_agent(*main, true);
  tv = {};
  setitimer(ITIMER_REAL, &tv, nullptr);
  terminal.take_back();
}

// The next event: a deferred one first, else waitpid's (polled while the agent records).
pid_t Session::Impl::next_event(int& status) {
  if (!deferred.empty()) {
    auto [tid, st] = deferred.front();
    deferred.pop_front();
    status = st;
    return tid;
  }
  pid_t tid = main && main->agent ? wait_draining(status) : ::waitpid(-1, &status, __WALL);
  if (tid > 0) take_ready_events();
  return tid;
}

// Waits for the next event and handles it.  False when nothing is left to wait for; true
// also when the wait was interrupted, so that the caller checks its condition again.
bool Session::Impl::serve_next_event() {
  int status;
  pid_t tid = next_event(status);
  if (tid < 0) return errno == EINTR;
  handle(tid, status);
  return true;
}

// waitpid(-1) always reports the first stopped tracee in the kernel's list: with threads
// stopping faster than ptmem serves them (64 busy threads on breakpoints), the ones late
// in the list would wait forever.  Every stop already pending joins the queue behind the
// one being handled, so each stopped thread is served once before any is served twice.
void Session::Impl::take_ready_events() {
  for (int st;;) {
    pid_t r = ::waitpid(-1, &st, __WALL | WNOHANG);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return;
    }
    if (WIFSTOPPED(st))
      if (Thread* other = find(r)) other->stopped = true;
    deferred.emplace_back(r, st);
  }
}

// Waits for |t|'s next event, keeping other threads' events for the loop.  waitpid(tid)
// alone can wait forever: when the process is killed, the leader can turn zombie without an
// exit stop, and is reported only once the other threads are reaped, while those sit in
// exit stops waiting for us.  So the wait polls, and gives up once /proc shows the thread
// dead.  The caller treats -1 as "this thread is dying"; its events are the loop's.
pid_t Session::Impl::wait_for_thread(Thread& t, int& status) {
  // /proc/TID (not /proc/PID/task/TID): a vfork child we step is a process of its own.
  const std::string stat_path = fmt::format("/proc/{}/stat", t.tid());
  for (unsigned polls = 0;; ++polls) {
    int st;
    pid_t r = ::waitpid(-1, &st, __WALL | WNOHANG);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) {
      // Injected syscalls and single steps take microseconds: poll tightly at first.
      if (polls > 64) {
        if (main) drain_agent(*main);  // a thread may wait for room in its ring meanwhile
        auto stat = proc::read_file(stat_path, 512);
        auto paren = stat ? stat->rfind(')') : std::string::npos;
        if (paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] == 'Z' ||
            (*stat)[paren + 2] == 'X')
          return -1;
        ::usleep(100);
      }
      continue;
    }
    if (WIFSTOPPED(st))
      if (Thread* other = find(r)) other->stopped = true;
    if (r == t.tid() && WIFSTOPPED(st) && (st >> 16) != PTRACE_EVENT_EXIT) {
      status = st;
      return r;
    }
    deferred.emplace_back(r, st);
    if (r == t.tid()) return -1;  // exited, or stopped on its way out
  }
}

void Session::Impl::handle(pid_t tid, int status) {
  Thread* t = find(tid);
  if (!t) {
    if (forked.contains(tid)) {
      if (WIFSTOPPED(status)) clean_forked_child(tid);
      else forked.erase(tid);
      return;
    }
    // A new thread or child can report before its creator's PTRACE_EVENT_CLONE/FORK.
    if (WIFSTOPPED(status)) early_stops[tid] = status;
    return;
  }
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    on_thread_gone(tid, status);
    return;
  }
  if (WIFSTOPPED(status)) handle_stop(*t, status);
}

void Session::Impl::handle_stop(Thread& t, int status) {
  t.stopped = true;
  bool stale_stop = std::exchange(t.stale_group_stop, false);
  int sig = WSTOPSIG(status);
  int event = status >> 16;
  t.in_syscall_event = event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK ||
                       event == PTRACE_EVENT_VFORK_DONE || event == PTRACE_EVENT_EXEC;
  if (g_debug) util::eprint("[ptmem] {}: stop sig {} event {}\n", t.tid(), sig, event);
  switch (event) {
    case 0:
      if (sig == SIGTRAP) handle_sigtrap(t);
      else {
        if (g_debug) {
          siginfo_t si{};
          arch::Registers r;
          ::ptrace(PTRACE_GETSIGINFO, t.tid(), nullptr, &si);
          get_regs(t.tid(), r);
          util::eprint("[ptmem] {}: signal {} code {} addr {} at rip {:#x} sp {:#x}\n", t.tid(), sig,
                     si.si_code, si.si_addr, r.ip(), r.sp());
        }
        if (sig == PTMEM_ASK_SIGNAL && answer_agent(t)) resume(t);  // the agent's, not the program's
        else resume(t, sig);
      }  // signal-delivery-stop: the signal goes through unchanged
      return;
    case PTRACE_EVENT_STOP:
      if (is_stop_signal(sig)) {
        // Group-stop: stay stopped (as without ptmem) but able to report SIGCONT.
        if (!t.group_stopped && !stale_stop && sig != SIGSTOP && terminal.active() &&
            &t.process() == main.get())
          job_stop = sig;
        t.group_stopped = true;
        resume(t);
      } else {
        // PTRACE_INTERRUPT, or the first stop of a new thread, or the end of a group-stop
        // (a SIGCONT before ptmem mirrored the stop: the job runs again, ptmem with it).
        if (t.group_stopped) job_stop = 0;
        t.group_stopped = false;
        resume(t);
      }
      return;
    case PTRACE_EVENT_CLONE:
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
      on_new_task(t, event);
      return;
    case PTRACE_EVENT_EXEC:
      on_exec(t);
      return;
    case PTRACE_EVENT_EXIT:
      on_exit_stop(t);
      return;
    case PTRACE_EVENT_VFORK_DONE:
      // The child has exec'd or exited, and this thread runs again, its own calls to
      // record: the agent stops passing them through before the thread goes on (the
      // child's exec or exit event may come later).
      if (t.vfork_tcb && t.process().agent) t.process().agent->suspend(t.vfork_tcb, false);
      t.vfork_tcb = 0;
      resume(t);
      return;
    default:
      resume(t);
      return;
  }
}

void Session::Impl::resume(Thread& t, int sig) {
  if (t.process().quiescing) {
    if (sig) t.pending_signal = sig;
    return;
  }
  int request = t.group_stopped ? PTRACE_LISTEN : PTRACE_CONT;
  if (::ptrace(static_cast<__ptrace_request>(request), t.tid(), nullptr,
               reinterpret_cast<void*>(static_cast<uintptr_t>(sig))) == 0 ||
      errno == ESRCH) {
    t.stopped = false;
    t.in_syscall_event = false;
  }
}

// A thread stopped at a clone/fork/exec event is still inside that syscall: run from there,
// the kernel would finish the syscall and write its result over the rax we set (an
// injected syscall then runs as syscall number <child tid>), and put our stale rax back
// as the program's result: a clone3 that "failed" with ENOSYS after making its thread,
// and glibc's fallback clone() starting a second thread on the same stack.  So the
// thread first runs to its syscall-exit stop, where rax holds the real result and
// nothing of the syscall is left to write.  False if it died meanwhile.
bool Session::Impl::leave_syscall(Thread& t) {
  if (!t.in_syscall_event) return true;
  if (::ptrace(PTRACE_SYSCALL, t.tid(), nullptr, nullptr) != 0) return false;
  for (;;) {
    int status;
    if (wait_for_thread(t, status) < 0) return false;
    // Nothing runs between the event and the syscall's exit: the next stop is that exit,
    // but a stray event stop (a late PTRACE_INTERRUPT) is let through just in case.
    if ((status >> 16) == 0 && WSTOPSIG(status) == (SIGTRAP | 0x80)) break;
    if ((status >> 16) == 0) t.pending_signal = WSTOPSIG(status);
    if (::ptrace(PTRACE_SYSCALL, t.tid(), nullptr, nullptr) != 0) return false;
  }
  t.in_syscall_event = false;
  return true;
}

void Session::Impl::handle_sigtrap(Thread& t) {
  Process& p = t.process();
  arch::Registers regs;
  if (!get_regs(t.tid(), regs)) return;  // died under us; its exit is reported next
  uint64_t addr = regs.ip() - 1;
  if (p.trampoline && addr == p.trampoline) {
    on_return(t, regs);
    return;
  }
  if (const Breakpoint* bp = p.breakpoints.find(addr)) {
    if (p.quiescing) {
      // Undo the trap; the call runs for real after we detach.
      regs.set_ip(addr);
      set_regs(t.tid(), regs);
      return;
    }
    regs.set_ip(addr);
    on_breakpoint(t, *bp, regs);
    return;
  }
  resume(t, SIGTRAP);  // not ours: the program's own SIGTRAP
}

// Puts back the return addresses this thread's pending calls had replaced (where the slot
// still holds our trampoline: the frame is live) and forgets those calls.  |unwound|: the
// calls will never return (an exception or a cancellation goes through them), so an
// allocation among them failed, as a NULL from malloc would have.
void Session::Impl::restore_return_addresses(Thread& t, bool unwound) {
  Process& p = t.process();
  for (auto& r : t.returns) {
    uint64_t slot = 0;
    if (p.mem.read(r.entry_sp, &slot, 8) && slot == p.trampoline)
      p.mem.write(r.entry_sp, &r.return_address, 8);
    if (unwound && r.call.fn->family == track::Family::Alloc) p.sink->on_failed_alloc(t.tid());
    if (r.call.fn->action == track::Action::FdClose) p.sink->on_fd_close_failed(t.tid(), static_cast<int>(r.call.args[0]));
  }
  t.returns.clear();
}

bool Session::Impl::inside_call(Thread& t, track::Family family, uint64_t sp) {
  Process& p = t.process();
  for (size_t i = t.returns.size(); i-- > 0;) {
    auto& r = t.returns[i];
    if (r.call.fn->family != family) continue;
    uint64_t slot = 0;
    bool live = p.mem.read(r.entry_sp, &slot, 8) && slot == p.trampoline;
    // Deeper (or, for a tail call such as glibc's realloc(NULL, n) -> jmp malloc, the same
    // frame): nested in a call we already record.
    if (live && r.entry_sp >= sp) return true;
    t.returns.erase(t.returns.begin() + static_cast<long>(i));  // left by longjmp
  }
  return false;
}

track::StackId Session::Impl::capture_stack(Thread& t, const arch::Registers& regs,
                                            uint64_t function_address, bool at_return) {
  Process& p = t.process();
  if (!p.unwinder) return track::kNoStack;
  // Stacks always start with the traced function's entry, then return addresses.  Taken at
  // the return, the unwind starts in the caller: put the function in front.
  size_t first = at_return ? 1 : 0;
  pcs[0] = function_address;
  arch::Registers at = regs;
  if (!at_return) at.set_ip(function_address);
  size_t n = unwind_stopped(t, at, first);
  return p.stacks->intern(std::span<const uint64_t>(pcs.data(), n), p.modules.generation());
}

// Unwinds the stopped thread |t| from |at| into pcs[first...]: a copy of the top of its
// stack with the real return addresses in the slots an engine redirected, then live
// memory.  Returns the number of pcs in pcs[] (>= 1).
size_t Session::Impl::unwind_stopped(Thread& t, const arch::Registers& at, size_t first) {
  Process& p = t.process();
  size_t got = p.mem.read_partial(at.sp(), stack_buf.data(), stack_buf.size());
  auto& real = real_returns;  // (slot, return address): usually none; reused, no allocation
  real.clear();
  for (auto& r : t.returns) real.emplace_back(r.entry_sp, r.return_address);
  if (p.agent) p.agent->redirected(at.raw.fs_base, real);
  for (auto [slot, ret] : real)
    if (slot >= at.sp() && slot + 8 <= at.sp() + got) std::memcpy(stack_buf.data() + (slot - at.sp()), &ret, 8);
  StackReader fallback(p.mem, real);
  size_t n = p.unwinder->unwind(at, std::span<const uint8_t>(stack_buf.data(), got), &fallback,
                                pcs.size() - first, pcs.data() + first);
  return std::max<size_t>(n + first, 1);
}

void Session::Impl::on_breakpoint(Thread& t, const Breakpoint& bp, arch::Registers& regs) {
  Process& p = t.process();
  if (bp.kind == Breakpoint::Kind::Entry) {
    // The original instruction runs for real once the byte is back.
    p.breakpoints.remove(p.mem, bp.address);
    set_regs(t.tid(), regs);
    install_hooks(p, t);
    resume(t);
    return;
  }
  if (bp.kind == Breakpoint::Kind::Unwind) {
    // A C++ exception or a thread cancellation is about to walk this thread's stack.  An
    // unwinder that met our trampoline as a return address would find no unwind info
    // there: std::terminate for a throw, cleanup handlers skipped for a cancellation.  So
    // the real return addresses go back now, and the calls they belonged to are forgotten:
    // the one that throws (operator new's bad_alloc) or is cancelled (a blocked accept)
    // never returns.
    restore_return_addresses(t, true);
    if (p.agent) p.agent->abandon_calls(regs.raw.fs_base, UINT64_MAX, p.mem);
    step_over(t, bp, regs);
    return;
  }
  if (bp.kind == Breakpoint::Kind::LongJump) {
    // Frames below the jump's target die without returning.  Their pending calls must go
    // now: a later call from a deeper frame whose uninitialised locals still hold the
    // trampoline word would look nested in one of them and be missed.  The slot check in
    // inside_call() catches the rest (a longjmp through a path not hooked here).
    uint64_t mangled = 0, guard = 0;
    if ((!t.returns.empty() || p.agent) &&
        p.mem.read(regs.arg(0) + arch::glibc::kJmpBufSp * 8, &mangled, 8) &&
        p.mem.read(regs.raw.fs_base + arch::glibc::kPointerGuardOffset, &guard, 8)) {
      uint64_t target_sp = arch::glibc::demangle_pointer(mangled, guard);
      if (target_sp > regs.sp()) {
        std::erase_if(t.returns, [&](const PendingReturn& r) { return r.entry_sp < target_sp; });
        if (p.agent) p.agent->abandon_calls(regs.raw.fs_base, target_sp, p.mem);
      }
    }
    step_over(t, bp, regs);
    return;
  }
  if (bp.kind == Breakpoint::Kind::DebugState) {
    if (g_debug) util::eprint("[ptmem] {}: r_brk, plan {} '{}'\n", t.tid(), static_cast<int>(bp.plan.kind), bp.plan.text);
    // Installing hooks grows the breakpoint table and invalidates |bp|: keep a copy.
    Breakpoint self_bp = bp;
    refresh_modules(p, t);
    step_over(t, self_bp, regs);
    return;
  }
  if (!p.trampoline && p.record && !t.foreign) {
    // Attached while every thread was in group-stop: no thread could map the scratch page
    // then.  This one runs, so finish the job (the table may grow: work on a copy).
    Breakpoint self_bp = bp;
    install_hooks(p, t);
    if (p.trampoline) {
      on_breakpoint(t, self_bp, regs);
      return;
    }
    step_over(t, self_bp, regs);
    return;
  }
  const track::TracedFunction& fn = track::traced_functions()[static_cast<size_t>(bp.function)];
  if (g_debug)
    util::eprint("[ptmem] {}: {} at {:#x} sp {:#x} plan {} '{}'\n", t.tid(), fn.name, bp.address,
               regs.sp(), static_cast<int>(bp.plan.kind), bp.plan.text);
  bool wanted = fn.family == track::Family::Alloc ? opt.track_alloc : opt.track_fds;
  if (auto tail = std::exchange(t.tail_call, std::nullopt);
      tail && tail->sp == regs.sp() && tail->arg0 == regs.arg(0)) {
    wanted = false;  // the tail jump of the call just recorded
    if (bp.tail_jump) t.tail_call = tail;  // and it jumps on (delete -> free -> __libc_free)
  }
  if (wanted && p.record && !t.foreign && p.trampoline && !inside_call(t, fn.family, regs.sp())) {
    track::CallRecord call;
    call.fn = &fn;
    call.tid = t.tid();
    for (int i = 0; i < 6; ++i) call.args[i] = regs.arg(i);
    track::decode_entry(call, p.mem);
    if (track::creates(fn.action) &&
        !(fn.action == track::Action::FdFcntl && call.args[1] != F_DUPFD &&
          call.args[1] != F_DUPFD_CLOEXEC))
      call.stack = capture_stack(t, regs, bp.address);
    if (fn.needs_return) {
      // A tail call out of a traced call of the other family already returns to the
      // trampoline: its own result cannot be told apart, so it is not recorded.
      uint64_t ret = 0;
      if (p.mem.read(regs.sp(), &ret, 8) && ret != p.trampoline &&
          p.mem.write(regs.sp(), &p.trampoline, 8)) {
        t.returns.push_back({regs.sp(), ret, bp.address, call});
        // Results are heard in the order ptmem serves the threads' stops, not in the order
        // the kernel did the work: another thread's open may come back with this number first.
        if (fn.action == track::Action::FdClose) p.sink->on_fd_close_begin(t.tid(), static_cast<int>(call.args[0]));
      }
    } else {
      track::decode_result(call, p.mem, *p.sink);
      if (bp.tail_jump) t.tail_call = Thread::TailCall{regs.sp(), regs.arg(0)};
    }
  }
  step_over(t, bp, regs);
}

void Session::Impl::on_return(Thread& t, arch::Registers& regs) {
  // After `ret` to the trampoline, rsp = entry rsp + 8.  Entries deeper than the match were
  // left by longjmp and are dead.
  for (size_t i = t.returns.size(); i-- > 0;) {
    if (t.returns[i].entry_sp + 8 != regs.sp()) continue;
    PendingReturn r = t.returns[i];
    t.returns.resize(i);
    r.call.result = regs.ret();
    regs.set_ip(r.return_address);
    if (r.call.fn->action == track::Action::RecvMsg && static_cast<int64_t>(r.call.result) >= 0) {
      msghdr msg;
      if (t.process().mem.read(r.call.args[1], &msg, sizeof msg) && msg.msg_control &&
          msg.msg_controllen >= sizeof(cmsghdr)) {
        r.call.stack = capture_stack(t, regs, r.function_address, true);
      }
    }
    track::decode_result(r.call, t.process().mem, *t.process().sink);
    set_regs(t.tid(), regs);
    resume(t);
    return;
  }
  // No record for this return: we cannot know where to go.  Never expected; say so loudly.
  util::eprint("ptmem: internal error: thread {} returned to the trampoline unexpectedly\n",
             t.tid());
  resume(t, SIGTRAP);
}

void Session::Impl::step_over(Thread& t, const Breakpoint& bp, arch::Registers& regs) {
  Process& p = t.process();
  switch (bp.plan.kind) {
    case arch::StepPlan::Kind::Emulate:
      if (arch::emulate(bp.plan, regs, p.mem)) break;
      if (!step_in_place(t, bp, regs)) return;
      resume(t);
      return;
    case arch::StepPlan::Kind::Displaced:
      regs.set_ip(bp.displaced_slot);
      break;
    case arch::StepPlan::Kind::Unsupported:
      if (!step_in_place(t, bp, regs)) return;
      resume(t);
      return;
  }
  if (g_debug) util::eprint("[ptmem] {}: stepped to rip {:#x} sp {:#x}\n", t.tid(), regs.ip(), regs.sp());
  set_regs(t.tid(), regs);
  resume(t);
}

void Session::Impl::on_new_task(Thread& parent, int event) {
  unsigned long msg = 0;
  ::ptrace(PTRACE_GETEVENTMSG, parent.tid(), nullptr, &msg);
  auto child = static_cast<pid_t>(msg);
  Process& p = parent.process();
  if (event == PTRACE_EVENT_CLONE) {
    add_thread(p, child);
    adopt_early_stop(child);
  } else if (event == PTRACE_EVENT_VFORK) {
    // The child borrows our address space until it execs or exits: it runs through our
    // breakpoints, which must be stepped over but not recorded.
    forked[child] = ForkedChild{&p, {}, true, parent.tid()};
    parent.in_vfork = true;
    arch::Registers regs;
    if (p.agent && get_regs(parent.tid(), regs)) {
      parent.vfork_tcb = regs.raw.fs_base;
      p.agent->suspend(parent.vfork_tcb, true);
    }
    if (early_stops.contains(child)) {
      early_stops.erase(child);
      clean_forked_child(child);
    }
  } else {
    forked[child] = ForkedChild{&p, parent.returns, false};
    arch::Registers regs;
    if (p.agent && get_regs(parent.tid(), regs)) p.agent->redirected(regs.raw.fs_base, forked[child].agent_returns);
    if (early_stops.contains(child)) {
      early_stops.erase(child);
      clean_forked_child(child);
    }
  }
  resume(parent);
}

void Session::Impl::adopt_early_stop(pid_t tid) {
  auto it = early_stops.find(tid);
  if (it == early_stops.end()) return;
  int status = it->second;
  early_stops.erase(it);
  handle(tid, status);
}

// A forked child has a copy of our int3s and trampoline return addresses: put the original
// bytes back in its memory, then let it go.  A vfork child shares our memory: keep it traced
// (as a non-recording thread) until it execs or exits.
void Session::Impl::clean_forked_child(pid_t child) {
  auto node = forked.extract(child);
  ForkedChild& fc = node.mapped();
  if (fc.vfork) {
    Thread& t = fc.parent->add_thread(child);
    by_tid[child] = &t;
    t.stopped = true;
    t.foreign = true;
    t.vfork_parent = fc.forker;
    resume(t);
    return;
  }
  RemoteMemory child_mem(child);
  // The parent's leftovers go in either case: a followed child gets hooks of its own.
  fc.parent->breakpoints.restore_in(child_mem);
  for (auto& r : fc.forker_returns) {
    uint64_t slot = 0;
    if (child_mem.read(r.entry_sp, &slot, 8) && slot == fc.parent->trampoline)
      child_mem.write(r.entry_sp, &r.return_address, 8);
  }
  // The agent's patches and redirected returns too; its mappings stay, never entered.
  if (fc.parent->agent) {
    fc.parent->agent->unpatch(child_mem);
    for (auto [slot, ret] : fc.agent_returns) child_mem.write(slot, &ret, 8);
  }
  if (following()) {
    resume(*follow_child(child, *fc.parent, false).thread(child));
    return;
  }
  ::ptrace(PTRACE_DETACH, child, nullptr, nullptr);
}

// A child traced as a process of its own, with its own tables.  It gets the breakpoint
// engine even under --engine inject: an agent of its own would need every ring, patch and
// thread slot set up again in the child (the parent's agent mapping is shared memory the
// child must never run or record through), for processes that are mostly short-lived.
// |at_exec|: a vfork child stopped at its exec, a new image (hooks as at a launch);
// otherwise a forked copy, already cleaned of the parent's hooks, stopped at its first stop.
Process& Session::Impl::follow_child(pid_t pid, Process& parent, bool at_exec) {
  Session::ChildTables tables = self.on_child_start(pid, parent.pid());
  Child& c = children.emplace_back();
  c.process = std::make_unique<Process>(pid);
  Process& p = *c.process;
  p.sink = &tables.sink;
  p.stacks = &tables.stacks;
  p.exec_seen = true;       // its exec, if any, is an exec of a traced process
  p.agent_refused = true;   // breakpoints (above), quietly
  auto status = proc::read_status(pid);
  p.command = status ? status->name : parent.command;
  c.outcome.pid = pid;
  c.outcome.command = p.command;
  c.outcome.argv = read_argv(pid);
  Thread& t = add_thread(p, pid);
  t.stopped = true;
  t.in_syscall_event = at_exec;
  setup_image(p, t, at_exec);
  if (self.on_checkpoint) self.on_checkpoint(pid, Session::Checkpoint::Attached);
  return p;
}

bool Session::Impl::following() const {
  return opt.follow_forks && self.on_child_start && phase != Phase::Detach;
}

void Session::Impl::on_exec(Thread& t) {
  Process& p = t.process();
  unsigned long former = 0;
  ::ptrace(PTRACE_GETEVENTMSG, t.tid(), nullptr, &former);
  if (t.foreign) {
    // A vfork child became a new program: no longer shares our memory; let it go, or
    // with --follow-forks trace the new program from here on.
    end_vfork(t);
    pid_t tid = t.tid();
    Process& parent = t.process();
    forget_thread(tid);
    if (following()) {
      resume(*follow_child(tid, parent, true).thread(tid));
      return;
    }
    ::ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    return;
  }
  // All other threads are gone; the execing thread now has the process id.
  pid_t new_tid = p.pid();
  Thread* execer = &t;
  for (auto it = p.threads.begin(); it != p.threads.end();) {
    if (it->second.get() != execer && !it->second->foreign) {
      by_tid.erase(it->first);
      p.threads.erase(it++);
    } else {
      ++it;
    }
  }
  if (execer->tid() != new_tid) {
    auto node = p.threads.extract(execer->tid());
    by_tid.erase(execer->tid());
    execer->set_tid(new_tid);
    node.key() = new_tid;
    p.threads.insert(std::move(node));
    by_tid[new_tid] = execer;
  }
  execer->returns.clear();
  // Reported under the pid, the exec may land on the old leader's Thread, which stopped in
  // its exit when a thread other than the leader exec'd: the new image's only thread is
  // not exiting (else detach would wait for its end and the scan take it for dead).
  execer->exiting = false;
  execer->tail_call.reset();
  p.exited_regs.clear();
  drop_agent(p);
  p.mem.reopen();
  p.breakpoints.forget_all();
  p.scratch.clear();
  p.trampoline = 0;
  p.r_debug = 0;
  p.hooked.assign(track::traced_functions().size(), false);
  p.hooks_installed = false;
  p.modules.unload_all();
  if (auto status = proc::read_status(p.pid())) p.command = status->name;
  if (p.pid() != main->pid()) {  // a followed child: its report names the new program
    Outcome& out = outcome_of(p);
    out.command = p.command;
    out.argv = read_argv(p.pid());
  }
  if (launched && !p.exec_seen) {
    p.exec_seen = true;  // our own execve of the program: nothing of it existed before
    if (self.on_checkpoint) self.on_checkpoint(p.pid(), Session::Checkpoint::Launched);
  } else {
    if (self.on_checkpoint) self.on_checkpoint(p.pid(), Session::Checkpoint::Exec);
    p.sink->on_exec(p.pid());
  }
  setup_image(p, *execer, true);
  resume(*execer);
}

void Session::Impl::on_exit_stop(Thread& t) {
  t.exiting = true;
  Process& p = t.process();
  if (!t.foreign) {
    arch::Registers regs;
    if (t.tid() != p.pid() && get_regs(t.tid(), regs)) p.exited_regs.push_back(regs);
    // Its name while /proc still has it: the report attributes its blocks to it.
    if (p.record && p.sink)
      if (auto comm = proc::read_file(fmt::format("/proc/{}/comm", t.tid()), 64); comm && !comm->empty())
        p.sink->on_thread_name(t.tid(), std::string_view(*comm).substr(0, comm->find('\n')));
    // exit_group or a fatal signal: the other threads have SIGKILL pending and may die
    // without an exit stop; waiting for theirs would miss the end scan.
    bool last = true;
    for (auto& [tid, other] : p.threads)
      if (!other->exiting && !other->foreign && !thread_killed(p, tid)) last = false;
    if (last) take_final_state(p);
  }
  resume(t);
}

void Session::Impl::take_final_state(Process& p) {
  if (p.final_state_taken) return;
  p.final_state_taken = true;
  drain_agent(p, true);
  report_agent(p);
  // A SIGKILL pending only after the scan came during it (its death is reported later, by
  // the loop's next events); one pending before is why we are here (the exit stops).
  bool killed_before = kill_pending(p);
  if (self.on_checkpoint) self.on_checkpoint(p.pid(), Session::Checkpoint::Final);
  if (!killed_before && kill_pending(p)) p.killed_in_final = true;
}

// SIGKILL sent to a process whose threads all sit in ptrace-stops stays pending (ShdPnd)
// until we resume them: the process is as good as dead, though every ptrace call on it
// still works.  True also when the process is gone altogether.
bool Session::Impl::kill_pending(const Process& p) const {
  auto status = proc::read_file(fmt::format("/proc/{}/status", p.pid()), 4096);
  if (!status) return true;
  for (const char* field : {"\nSigPnd:", "\nShdPnd:"}) {
    size_t at = status->find(field);
    if (at == std::string::npos) continue;
    uint64_t mask = std::strtoull(status->c_str() + at + std::strlen(field), nullptr, 16);
    if (mask & (uint64_t{1} << (SIGKILL - 1))) return true;
  }
  return false;
}

// SIGKILL is pending for thread |tid| (its process is being ended), or it is gone.
bool Session::Impl::thread_killed(const Process& p, pid_t tid) const {
  auto status = proc::read_file(fmt::format("/proc/{}/task/{}/status", p.pid(), tid), 4096);
  if (!status) return true;
  size_t at = status->find("\nSigPnd:");
  if (at == std::string::npos) return false;
  uint64_t pending = std::strtoull(status->c_str() + at + 8, nullptr, 16);
  return pending & (uint64_t{1} << (SIGKILL - 1));
}

// The process ends rather than runs on: resume its threads (with the signals they owe) and
// take in their ends, so that the report has its exit status.
void Session::Impl::run_to_end(Process& p) {
  for (auto& [tid, t] : p.threads) resume(*t, std::exchange(t->pending_signal, 0));
  while (!p.threads.empty())
    if (!serve_next_event()) break;
}

// Every thread stopped in its exit (exit_group under way): detached now, its exit status
// would be lost and the report would call it detached.  |scan|: take the end scan first,
// of the memory it still has.
bool Session::Impl::finish_exiting(Process& p, bool scan) {
  for (auto& [tid, t] : p.threads)
    if (!t->exiting && !t->foreign) return false;
  if (scan) take_final_state(p);
  run_to_end(p);
  return true;
}

// Killed during the end scan: ends traced, not detached.
bool Session::Impl::end_if_killed(Process& p) {
  if (!p.killed_in_final) return false;
  run_to_end(p);
  return true;
}


// The vfork child |child| exec'd or exited: its parent thread runs again.
void Session::Impl::end_vfork(Thread& child) {
  if (Thread* parent = find(child.vfork_parent)) parent->in_vfork = false;  // the agent: VFORK_DONE
}

void Session::Impl::on_thread_gone(pid_t tid, int status) {
  Thread* t = find(tid);
  if (!t) return;
  Process& p = t->process();
  if (t->foreign) end_vfork(*t);
  if (tid == p.pid() && !t->foreign) {
    Outcome& out = outcome_of(p);
    if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
    if (!out.ended_during) out.ended_during = p.killed_in_final ? Phase::Scan : phase;
  }
  forget_thread(tid);
  if (p.threads.empty()) retire(p);
}

// A followed child's trace is over: only its modules are needed still (the report).  Its
// memory fd and unwinder go now, or a program running thousands of commands would run
// ptmem out of file descriptors.
void Session::Impl::retire(Process& p) {
  if (&p == main.get()) return;
  p.mem.close();
  p.unwinder.reset();
  p.agent_stacks.reset();
  p.breakpoints.forget_all();
  p.scratch.clear();
}

}  // namespace ptmem::ptrace
