// The inject engine, as the ptrace side sees it: the agent (src/inject/, src/agent/) goes
// in while every thread is stopped, takes over the traced functions it can patch, and is
// drained from the wait loop; the breakpoint engine keeps what the agent cannot take
// (functions it refuses, libraries loaded while threads run, the unwinder and longjmp
// entries) and does everything ptrace must do: threads, signals, fork, exec, detach.
#include <cerrno>
#include <chrono>
#include <unistd.h>
#include <cstdlib>
#include <string_view>
#include <fmt/format.h>
#include <csignal>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ptmem/proc/maps.hpp"
#include "ptmem/util/eprint.hpp"
#include "session_impl.hpp"

namespace ptmem::ptrace {
namespace {

// glibc 2.26+ x86-64: struct pthread's tid, from the thread pointer.  Trusted only after
// checking it against every stopped thread (inject_agent).
constexpr uint32_t kGlibcTidOffset = 0x2d0;

}  // namespace

class Session::Impl::ProcessTarget final : public inject::Target {
 public:
  ProcessTarget(Session::Impl& s, Process& p, Thread& t) : s_(s), p_(p), t_(t) {}
  pid_t pid() const override { return p_.pid(); }
  std::optional<uint64_t> syscall(long nr, std::array<uint64_t, 6> args) override {
    return s_.inject_syscall(p_, t_, nr, args);
  }
  arch::MemoryAccess& memory() override { return p_.mem; }
  std::optional<uint64_t> code_slot(uint64_t near, size_t size) override {
    return s_.scratch_slot(p_, t_, near, size);
  }

 private:
  Session::Impl& s_;
  Process& p_;
  Thread& t_;
};

bool Session::Impl::world_stopped(const Process& p) const {
  for (auto& [_, t] : p.threads)
    if (!t->stopped && !t->exiting && !t->in_vfork) return false;
  return true;
}

void Session::Impl::inject_agent(Process& p, Thread& t) {
  if (opt.engine != Engine::Inject || p.agent || p.agent_refused || !p.record || t.foreign) return;
  auto refuse = [&](const std::string& why) {
    p.agent_refused = true;
    util::eprint("ptmem: inject engine unavailable in {}: {}; using breakpoints\n", p.pid(), why);
  };
  if (t.group_stopped) return refuse("every thread was stopped (SIGSTOP) at attach: none can run the injection");
  if (!world_stopped(p)) return refuse("threads were running when the hooks went in");
  inject::AgentHost::Options o;
  if (auto maps = proc::read_maps(p.pid()))
    for (auto& m : *maps)
      if (m.path == "[stack]") o.main_stack_hi = m.end;
  // The agent tells threads apart by their TCB and reads their tid there, if glibc's
  // layout is the one we know: check it on every stopped thread.
  bool tid_ok = !p.threads.empty();
  for (auto& [tid, th] : p.threads) {
    arch::Registers regs;
    int32_t seen = 0;
    if (!get_regs(tid, regs) || !regs.raw.fs_base || !p.mem.read(regs.raw.fs_base + kGlibcTidOffset, &seen, 4) ||
        seen != tid)
      tid_ok = false;
  }
  o.tid_offset = tid_ok ? kGlibcTidOffset : 0;
  o.max_frames = static_cast<uint32_t>(pcs.size());
  ProcessTarget target(*this, p, t);
  auto made = inject::AgentHost::inject(target, o);
  if (auto* why = std::get_if<std::string>(&made)) return refuse(*why);
  p.agent = std::move(std::get<std::unique_ptr<inject::AgentHost>>(made));
  p.agent_stacks = std::make_unique<inject::SnapshotStacks>(*p.unwinder, p.modules, *p.stacks, &p.mem, pcs.size());
  // PTMEM_INJECT_WALK=0: every stack from a snapshot unwound here (the other way the
  // agent can take stacks, for comparing the two in make bench).
  static const bool walk = [] {
    const char* v = std::getenv("PTMEM_INJECT_WALK");
    return !v || std::string_view(v) != "0";
  }();
  if (walk) {
    p.agent_stacks->learn_into(p.agent.get());
  } else {
    p.agent->rules_off();
    p.agent->set_asking(false);
  }
  if (opt.verbose) util::eprint("ptmem: agent injected into {}\n", p.pid());
}

// The code of the function at |address| as far as its symbol says, or why not.
static std::variant<std::vector<uint8_t>, std::string> function_code(Process& p, uint64_t address, uint64_t size) {
  if (!size) return std::string("its symbol has no size");
  std::vector<uint8_t> code(std::min<uint64_t>(size, 64 * 1024));  // the branch scan covers what it gets
  code.resize(p.mem.read_partial(address, code.data(), code.size()));
  if (code.size() < std::min<uint64_t>(size, 16)) return std::string("its code is unreadable");
  return code;
}

std::optional<std::string> Session::Impl::agent_refusal(Process& p, uint64_t address, uint64_t size,
                                                       std::vector<uint8_t>& code) {
  auto read = function_code(p, address, size);
  if (auto* why = std::get_if<std::string>(&read)) return *why;
  code = std::move(std::get<std::vector<uint8_t>>(read));
  // Where the copy will go does not matter here (within reach of anything).
  auto r = arch::relocate_prologue(address, code, address);
  if (auto* why = std::get_if<std::string>(&r)) return *why;
  return std::nullopt;
}

bool Session::Impl::agent_hook(Process& p, Thread& t, int function, uint64_t address, std::span<const uint8_t> code) {
  if (!p.agent) return false;
  const auto& fn = track::traced_functions()[static_cast<size_t>(function)];
  ProcessTarget target(*this, p, t);
  auto why = p.agent->hook(target, function, address, code, starts_with_jump(address, code.first(std::min<size_t>(code.size(), 16))));
  if (!why) return true;
  util::eprint("ptmem: inject engine: {} cannot be patched ({}): traced with a breakpoint\n", fn.name, *why);
  return false;
}

void Session::Impl::agent_hooks_in(Process& p) {
  if (!p.agent) return;
  // A thread stopped inside bytes a patch now covers goes on from their copy.
  for (auto& [tid, t] : p.threads) {
    arch::Registers regs;
    if (t->exiting || !get_regs(tid, regs)) continue;
    if (uint64_t to = p.agent->after_patch(regs.ip()); to != regs.ip()) {
      regs.set_ip(to);
      set_regs(tid, regs);
    }
  }
  p.agent->set_enabled(true);
}

size_t Session::Impl::drain_agent(Process& p, bool final) {
  if (!p.agent) return 0;
  return p.agent->drain(*p.sink, *p.agent_stacks, final);
}

// Detach or exec: every thread out of the agent, its redirected returns back, every byte
// restored, the agent and the rings unmapped.  Every thread is stopped.
void Session::Impl::remove_agent(Process& p) {
  if (!p.agent) return;
  auto& agent = *p.agent;
  agent.set_enabled(false);
  agent.trap_exits(p.mem);
  Thread* worker = nullptr;
  bool keep = false;
  for (auto& [tid, t] : p.threads) {
    if (t->exiting) continue;
    arch::Registers regs;
    if (!get_regs(tid, regs)) continue;
    if (!t->group_stopped && !t->in_vfork && !t->foreign && !worker) worker = t.get();
    // Inside the agent: it runs out to an exit trap (a few hundred instructions at most,
    // recording off); then the exit is played by hand.
    if (agent.in_agent(regs.ip()) && !agent.take_exit(regs, p.mem)) {
      bool out = false;
      for (int tries = 0; !out && tries < 16 && !t->group_stopped && !t->in_vfork; ++tries)
        out = run_to_trap(*t, regs) && agent.take_exit(regs, p.mem);
      if (!out) {
        keep = true;  // it stays in agent code: that code must stay, and work
        continue;
      }
    }
    // In a stub or a prologue's copy: back to the original code, stepping to the next
    // instruction boundary of the copy first if need be.
    for (int steps = 0;; ++steps) {
      auto to = agent.before_unpatch(regs.ip());
      if (to) {
        regs.set_ip(*to);
        break;
      }
      if (steps > 64 || !single_step(*t, regs)) {
        keep = true;
        break;
      }
    }
    set_regs(tid, regs);
    agent.restore_returns(regs.raw.fs_base, p.mem);
  }
  drain_agent(p, true);
  agent.unpatch(p.mem);
  keep = keep || agent.busy();
  if (keep) {
    // It will run agent code again: the exits go back to what they were, and the code,
    // the rings and the relocated prologues it may jump to stay, with recording off.
    agent.untrap_exits(p.mem);
    p.keep_scratch = true;
    util::eprint("ptmem: a thread of {} is inside the agent: its code stays mapped, inert\n", p.pid());
  }
  if (worker) {
    ProcessTarget target(*this, p, *worker);
    agent.unmap(target, keep);
  }
  report_agent(p);
  p.agent.reset();
  p.agent_stacks.reset();
}

// While the agent records, ptmem drains its rings between events instead of sleeping in
// waitpid: a poll that backs off to 2 ms when the target is quiet, and returns EINTR every
// 20 ms so the loop sees stop requests and its deadline.  waitpid scans every tracee:
// while the rings keep ptmem busy, it asks only every 500 us.
pid_t Session::Impl::wait_draining(int& status) {
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + std::chrono::milliseconds(20);
  auto asked = clock::time_point{};
  for (unsigned idle = 0;;) {
    auto now = clock::now();
    if (idle || now - asked >= std::chrono::microseconds(500)) {
      asked = now;
      pid_t r = ::waitpid(-1, &status, __WALL | WNOHANG);
      if (r != 0) return r;
    }
    if (drain_agent(*main) > 0) idle = 0;
    else ::usleep(std::min(50u << std::min(idle++, 6u), 2000u));
    if (stop_requested() || now >= until) {
      errno = EINTR;
      return -1;
    }
  }
}

// The agent's question (PTMEM_ASK_SIGNAL from its own thread, marked with its magic): the
// stack of the call it is in, which it could not walk.  Unwound here from the live stack
// of the stopped thread, exactly as the breakpoint engine does at its stops; the steps are
// published, so the agent walks that path itself from now on.  True when the signal was
// the agent's (never delivered to the program).
bool Session::Impl::answer_agent(Thread& t) {
  Process& p = t.process();
  siginfo_t si{};
  if (!p.agent || ::ptrace(PTRACE_GETSIGINFO, t.tid(), nullptr, &si) != 0 || si.si_code != SI_QUEUE ||
      si.si_pid != p.pid() || si.si_value.sival_int != PTMEM_ASK_MAGIC)
    return false;
  arch::Registers regs;
  if (!get_regs(t.tid(), regs)) return true;
  auto at = p.agent->question(regs.raw.fs_base);
  if (!at || !p.unwinder) return true;  // a question already given up on
  size_t n = unwind_stopped(t, *at, 0);
  p.agent->answer(regs.raw.fs_base, std::span<const uint64_t>(pcs.data(), n));
  p.agent_stacks->learn(std::span<const uint64_t>(pcs.data(), n));
  ++p.agent_answers;
  return true;
}

// Exec: the address space the agent lived in is gone; what it recorded is not.
void Session::Impl::drop_agent(Process& p) {
  if (!p.agent) return;
  drain_agent(p, true);
  report_agent(p);
  p.agent.reset();
  p.agent_stacks.reset();
}

void Session::Impl::report_agent(const Process& p) {
  if (!p.agent) return;
  if (uint64_t missed = p.agent->missed())
    util::eprint("ptmem: inject engine: {} calls passed unrecorded (nested in a signal handler, or no thread slot)\n",
               missed);
  if (opt.verbose) {
    auto& c = p.agent->counters();
    util::eprint("ptmem: inject engine: {} records, {} calls, {} abandoned, {} malformed; {} stacks walked in the target ({} after a stop to unwind the live stack), {} from snapshots\n",
               c.records, c.calls, c.abandoned, c.bad, p.agent_stacks->walked(), p.agent_answers, p.agent_stacks->unwound());
  }
}

bool Session::Impl::single_step(Thread& t, arch::Registers& regs) { return resume_until_trap(t, regs, PTRACE_SINGLESTEP); }
bool Session::Impl::run_to_trap(Thread& t, arch::Registers& regs) { return resume_until_trap(t, regs, PTRACE_CONT); }

// Resumes |t| (a single step, or until an int3) and waits for its SIGTRAP; signals that
// come meanwhile are kept for the detach.
bool Session::Impl::resume_until_trap(Thread& t, arch::Registers& regs, int request) {
  if (!leave_syscall(t)) return false;
  for (;;) {
    if (::ptrace(static_cast<__ptrace_request>(request), t.tid(), nullptr, nullptr) != 0) return false;
    int status;
    if (wait_for_thread(t, status) < 0) return false;
    int sig = WSTOPSIG(status);
    if ((status >> 16) != 0) continue;  // an event stop (stop_all's PTRACE_INTERRUPT, late): not ours
    if (sig != SIGTRAP) {
      if (!(sig == PTMEM_ASK_SIGNAL && answer_agent(t))) t.pending_signal = sig;  // delivered at detach
      continue;
    }
    return get_regs(t.tid(), regs);
  }
}

}  // namespace ptmem::ptrace
