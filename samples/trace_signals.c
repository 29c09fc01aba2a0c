/* Signals under the tracer.  Driven on stdin, answers on stdout:
 *
 *   "ready PID"          at start
 *   selfstop  -> "stopping", then raise(SIGSTOP); after someone sends SIGCONT: "continued"
 *   ping      -> "pong"  (the test sends SIGSTOP from outside, sees the process stopped and
 *                         not answering, then SIGCONT: the pong follows)
 *   raise N   -> raises SIGUSR1 N times: "raised N"
 *   (SIGUSR1 from outside while waiting for input: the handler runs, answers "handled K")
 *   quit      -> exit 0
 *
 * The SIGUSR1 handler allocates 24 bytes (leaked, @leak handler) and writes "handled K"
 * with write(2).  It only ever runs while the main thread waits in read(2) or inside
 * raise(), never inside malloc (glibc's malloc is not reentrant). */
#include <signal.h>

#include "trace_common.h"

static void* volatile kept[64];
static volatile sig_atomic_t handled;

static void on_usr1(int sig) {
  (void)sig;
  if (handled < 64) kept[handled] = malloc(24);  // @leak handler
  handled++;
  say("handled %d\n", (int)handled);
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction");

  say("ready %d\n", (int)getpid());
  char line[128];
  while (read_line(line, sizeof line)) {
    int n = 0;
    if (strcmp(line, "selfstop") == 0) {
      say("stopping\n");
      raise(SIGSTOP);
      say("continued\n");
    } else if (strcmp(line, "ping") == 0) {
      say("pong\n");
    } else if (sscanf(line, "raise %d", &n) == 1) {
      for (int i = 0; i < n; i++) raise(SIGUSR1);
      say("raised %d\n", n);
    } else if (strcmp(line, "quit") == 0) {
      break;
    } else {
      say("unknown command '%s'\n", line);
    }
  }
  return 0;
}
