/* Children of a traced program.  Modes (argv[1]):
 *
 *   fork (default) - leaks 1x123 (@leak parent), then forks a child that allocates and
 *         frees 100 times and leaks 1x77 (@leak fork-child) before exiting 0, then forks a
 *         child that execs this program in mode "exec-child" (allocates, leaks 1x55
 *         @leak exec-child, exits 0), then runs system("exit 0") and popen("echo hi") /
 *         pclose.  The children run on copies of the parent's memory: if breakpoints were
 *         left in them they would die of SIGTRAP at their first malloc.  Prints
 *         "children ok" and exits 0 only if every child exited 0.
 *   exec - leaks 1x31 (@leak pre-exec), opens /dev/null twice, once close-on-exec
 *         (@fd cloexec, gone at exec) and once not (@fd kept, still open after exec), then
 *         the process itself execs this program in mode "after-exec", which leaks 1x47
 *         (@leak after-exec) and exits 0: the report covers the new image's memory only (the
 *         old one's is gone) and the one fd that crossed the exec, with its old stack.
 *
 * Leaked in the traced (parent) process, fork mode: 1x123 only (without --follow-forks),
 * plus what popen/system leave (see the test); exec mode: 1x47. */
#include <fcntl.h>
#include <limits.h>
#include <sys/wait.h>

#include "trace_common.h"

static void* volatile kept[4];

static char self[PATH_MAX];

static void find_self(void) {
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) die("readlink");
  self[n] = '\0';
}

static int child_churn(void) {
  for (int i = 0; i < 100; i++) {
    char* p = malloc(40 + (size_t)i);
    p[0] = 1;
    free(p);
  }
  kept[1] = malloc(77);  // @leak fork-child
  return 0;
}

static int wait_ok(pid_t pid, const char* what) {
  int status;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
  say("FAILED child %s: status 0x%x\n", what, status);
  return 0;
}

static int fork_mode(void) {
  int ok = 1;
  kept[0] = malloc(123);  // @leak parent

  pid_t a = fork();
  if (a < 0) die("fork");
  if (a == 0) _exit(child_churn());
  ok &= wait_ok(a, "fork");

  pid_t b = fork();
  if (b < 0) die("fork");
  if (b == 0) {
    execl(self, self, "exec-child", (char*)NULL);
    _exit(98);
  }
  ok &= wait_ok(b, "exec");

  int rc = system("exit 0");
  if (rc != 0) {
    say("FAILED system: 0x%x\n", rc);
    ok = 0;
  }
  FILE* p = popen("echo hi", "r");
  if (!p) die("popen");
  char buf[16] = {0};
  if (!fgets(buf, sizeof buf, p) || strcmp(buf, "hi\n") != 0) ok = 0;
  if (pclose(p) != 0) ok = 0;

  if (!ok) return 1;
  say("children ok\n");
  return 0;
}

int main(int argc, char** argv) {
  find_self();
  const char* mode = argc > 1 ? argv[1] : "fork";
  if (strcmp(mode, "fork") == 0) return fork_mode();
  if (strcmp(mode, "exec-child") == 0) {
    char* p = malloc(20);
    free(p);
    kept[2] = malloc(55);  // @leak exec-child
    return 0;
  }
  if (strcmp(mode, "exec") == 0) {
    kept[0] = malloc(31);  // @leak pre-exec
    if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) die("open");  // @fd cloexec
    if (open("/dev/null", O_RDONLY) < 0) die("open");  // @fd kept
    execl(self, self, "after-exec", (char*)NULL);
    die("execl");
  }
  if (strcmp(mode, "after-exec") == 0) {
    kept[3] = malloc(47);  // @leak after-exec
    say("after exec\n");
    return 0;
  }
  say("unknown mode %s\n", mode);
  return 2;
}
