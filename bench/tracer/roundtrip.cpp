// Bare ptrace round trip: the floor a breakpoint tracer can reach on this machine.
//
// A forked child calls a tiny function N times; the parent traces it with an int3 on the
// function's first byte and, per hit, does only what any breakpoint tracer must do:
// waitpid, PTRACE_GETREGS, deal with the displaced instruction, PTRACE_SETREGS,
// PTRACE_CONT.  Two displaced instructions are measured:
//   skip: a 1-byte nop (rip is set past it: no memory access at all), the floor;
//   push: a 1-byte `push %rbp`, emulated as real allocator entries need it (rsp -= 8 and
//         one PTRACE_POKEDATA of rbp).
// The child checks every result, so a wrong emulation shows up as a failure, not a figure.
// Usage: roundtrip [N]   Prints one line per mode:
//   roundtrip: mode=skip stops=N ns_per_stop=X
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

// Written in assembly so the first byte of each function is exactly the instruction above.
asm(R"(
  .text
  .globl rt_skip_target
  .type rt_skip_target, @function
rt_skip_target:
  nop
  lea 1(%rdi), %rax
  ret
  .size rt_skip_target, .-rt_skip_target

  .globl rt_push_target
  .type rt_push_target, @function
rt_push_target:
  push %rbp
  mov %rsp, %rbp
  lea 1(%rdi), %rax
  pop %rbp
  ret
  .size rt_push_target, .-rt_push_target
)");
extern "C" long rt_skip_target(long);
extern "C" long rt_push_target(long);

namespace {

enum class Mode { skip, push };

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "roundtrip: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// The traced child: N calls through a volatile pointer (never inlined, never hoisted).
[[noreturn]] void child(long (*fn)(long), long n) {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(4);
  raise(SIGSTOP);
  long (*volatile call)(long) = fn;
  long bad = 0;
  for (long i = 0; i < n; ++i) bad += call(i) != i + 1;
  _exit(bad == 0 ? 0 : 3);
}

// Traces one child through N hits; returns ns per stop (first hit to last hit).
double measure(Mode mode, long n) {
  long (*fn)(long) = mode == Mode::skip ? rt_skip_target : rt_push_target;
  const auto addr = reinterpret_cast<unsigned long>(fn);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) child(fn, n);

  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) die("child did not stop");
  // If this tracer dies, the kernel kills the child: nothing is left behind.
  if (ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_EXITKILL) != 0) die("SETOPTIONS");
  errno = 0;
  long word = ptrace(PTRACE_PEEKTEXT, pid, addr, nullptr);
  if (errno != 0) die("PEEKTEXT");
  long trapped = (word & ~0xffL) | 0xcc;
  if (ptrace(PTRACE_POKETEXT, pid, addr, trapped) != 0) die("POKETEXT");
  if (ptrace(PTRACE_CONT, pid, nullptr, nullptr) != 0) die("CONT");

  using clock = std::chrono::steady_clock;
  clock::time_point first, last;
  long hits = 0;
  for (;;) {
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    int sig = WSTOPSIG(status);
    if (sig != SIGTRAP) {  // not ours: pass it on unchanged
      ptrace(PTRACE_CONT, pid, nullptr, sig);
      continue;
    }
    last = clock::now();
    if (hits++ == 0) first = last;
    user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) die("GETREGS");
    if (regs.rip != addr + 1) {
      std::fprintf(stderr, "roundtrip: unexpected trap at %#llx\n", regs.rip);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      std::exit(1);
    }
    if (mode == Mode::push) {
      regs.rsp -= 8;
      if (ptrace(PTRACE_POKEDATA, pid, regs.rsp, regs.rbp) != 0) die("POKEDATA");
    }
    regs.rip = addr + 1;  // past the displaced 1-byte instruction
    if (ptrace(PTRACE_SETREGS, pid, nullptr, &regs) != 0) die("SETREGS");
    if (ptrace(PTRACE_CONT, pid, nullptr, nullptr) != 0) die("CONT");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || hits != n) {
    std::fprintf(stderr, "roundtrip: child failed (status %#x, %ld of %ld hits)\n", status, hits, n);
    std::exit(1);
  }
  return std::chrono::duration<double, std::nano>(last - first).count() / double(hits - 1);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 30000;
  if (n < 2) {
    std::fprintf(stderr, "usage: roundtrip [N >= 2]\n");
    return 2;
  }
  for (Mode mode : {Mode::skip, Mode::push}) {
    const double ns = measure(mode, n);
    std::printf("roundtrip: mode=%s stops=%ld ns_per_stop=%.0f\n", mode == Mode::skip ? "skip" : "push",
                n, ns);
    std::fflush(stdout);
  }
  return 0;
}
