/* Signals at awkward moments.  Driven on stdin, answers on stdout (the tests run it with
 * and without ptmem and compare):
 *
 *   "ready PID"       at start
 *   ping       -> "pong"
 *   selftstp   -> "stopping", raise(SIGTSTP) (default action: stop); after SIGCONT:
 *                 "continued"
 *   rt         -> "rt S:V S:V ..." every real-time signal handled so far (signal number
 *                 relative to SIGRTMIN, sigqueue value), in the order the handler ran; then
 *                 forgets them.  (The test queues them with sigqueue while the program is
 *                 stopped; they run after SIGCONT while the program waits in read(2).)
 *   altstack N -> raises SIGUSR2 N times; its handler runs on a sigaltstack, checks it is
 *                 there, mallocs and frees 1x100 and leaks 1x20 (@leak altstack):
 *                 "altstack N on=N" (on: runs that found themselves on the alternate stack)
 *   storm N M  -> forks a sender that sigqueue()s SIGRTMIN+3 with values 1..N to us as
 *                 fast as it can (retrying while the queue is full), while we do M rounds
 *                 of malloc(1..256)/free in a loop (@leak never: all freed); then waits for
 *                 the sender: "storm sent=N handled=H order=ok|bad rounds=M" (H: handler
 *                 runs; order: the values came 1, 2, 3...)
 *   quit       -> exit 0
 *
 * Handlers never call malloc when the signal can land inside malloc: the storm's handler
 * only counts, the altstack one is raised from the main loop. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "trace_common.h"

#define MAX_RT 256
static volatile sig_atomic_t rt_count;
static int rt_sig[MAX_RT], rt_val[MAX_RT];

static void on_rt(int sig, siginfo_t* si, void* ctx) {
  (void)ctx;
  if (rt_count < MAX_RT) {
    rt_sig[rt_count] = sig - SIGRTMIN;
    rt_val[rt_count] = si->si_value.sival_int;
  }
  rt_count++;
}

static char altstack[64 * 1024];
static void* volatile kept[256];
static volatile sig_atomic_t alt_runs, alt_on;

static void on_usr2(int sig) {
  (void)sig;
  char here;
  if (&here >= altstack && &here < altstack + sizeof altstack) alt_on++;
  char* p = malloc(100);
  p[0] = 1;
  free(p);
  if (alt_runs < 256) kept[alt_runs] = malloc(20);  // @leak altstack
  alt_runs++;
}

static volatile sig_atomic_t storm_handled, storm_bad;
static volatile int storm_last;

static void on_storm(int sig, siginfo_t* si, void* ctx) {
  (void)sig, (void)ctx;
  if (si->si_value.sival_int != storm_last + 1) storm_bad = 1;
  storm_last = si->si_value.sival_int;
  storm_handled++;
}

static void storm(int n, int rounds) {
  storm_handled = 0;
  storm_bad = 0;
  storm_last = 0;
  pid_t me = getpid();
  int go[2];
  if (pipe(go) != 0) die("pipe");
  pid_t sender = fork();
  if (sender < 0) die("fork");
  if (sender == 0) {
    char c;
    close(go[1]);
    if (read(go[0], &c, 1) != 1) _exit(97);
    for (int v = 1; v <= n;) {
      union sigval sv = {.sival_int = v};
      if (sigqueue(me, SIGRTMIN + 3, sv) == 0) v++;
      else if (errno != EAGAIN) _exit(98);
    }
    _exit(0);
  }
  close(go[0]);
  if (write(go[1], "g", 1) != 1) die("write");
  close(go[1]);
  unsigned x = 12345;
  for (int i = 0; i < rounds; i++) {
    x = x * 1103515245u + 12345u;
    char* p = malloc(1 + (x >> 16) % 256);
    p[0] = (char)i;
    free(p);
  }
  int status;
  while (waitpid(sender, &status, 0) < 0)
    if (errno != EINTR) die("waitpid");
  /* Every value is queued once the sender has exited; pending ones are delivered before
   * waitpid returns to us. */
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) say("FAILED sender 0x%x\n", status);
  say("storm sent=%d handled=%d order=%s rounds=%d\n", n, (int)storm_handled, storm_bad ? "bad" : "ok",
      rounds);
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sa.sa_sigaction = on_rt;
  for (int i = 0; i < 3; i++)
    if (sigaction(SIGRTMIN + i, &sa, NULL) != 0) die("sigaction");
  sa.sa_sigaction = on_storm;
  if (sigaction(SIGRTMIN + 3, &sa, NULL) != 0) die("sigaction");

  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) die("sigaltstack");
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_ONSTACK | SA_RESTART;
  sa.sa_handler = on_usr2;
  if (sigaction(SIGUSR2, &sa, NULL) != 0) die("sigaction");

  say("ready %d\n", (int)getpid());
  char line[128];
  while (read_line(line, sizeof line)) {
    int n = 0, m = 0;
    if (strcmp(line, "ping") == 0) {
      say("pong\n");
    } else if (strcmp(line, "selftstp") == 0) {
      say("stopping\n");
      raise(SIGTSTP);
      say("continued\n");
    } else if (strcmp(line, "rt") == 0) {
      char out[4096];
      size_t len = (size_t)snprintf(out, sizeof out, "rt");
      int count = rt_count < MAX_RT ? rt_count : MAX_RT;
      for (int i = 0; i < count && len < sizeof out - 32; i++)
        len += (size_t)snprintf(out + len, sizeof out - len, " %d:%d", rt_sig[i], rt_val[i]);
      rt_count = 0;
      say("%s\n", out);
    } else if (sscanf(line, "altstack %d", &n) == 1) {
      alt_runs = alt_on = 0;
      for (int i = 0; i < n; i++) raise(SIGUSR2);
      say("altstack %d on=%d\n", (int)alt_runs, (int)alt_on);
    } else if (sscanf(line, "storm %d %d", &n, &m) == 2) {
      storm(n, m);
    } else if (strcmp(line, "quit") == 0) {
      break;
    } else {
      say("unknown command '%s'\n", line);
    }
  }
  return 0;
}
