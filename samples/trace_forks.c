/* A forking target for --follow-forks.  Modes (argv[1]):
 *
 *   tree (default) - the parent leaks 2x24 (@leak forks-parent), then forks
 *         child 1: leaks 3x40 (@leak forks-child1), forks a grandchild that execs
 *                  trace_malloc (next to this program; its leaks are trace_malloc's), waits
 *                  for it, exits 3 (or 97 if the grandchild failed);
 *         child 2: leaks 2x100 (@leak forks-child2) and opens /dev/null without closing it
 *                  (@fd forks-child2), exits 4.
 *         The parent waits for both, prints "children 3 4" and exits 0.
 *   attach - prints "ready PID", then reads commands from stdin:
 *         "fork"    leaks 1x16 (@leak forks-attach-parent), forks a child that leaks 1x56
 *                   (@leak forks-attach-child), prints "child CHILDPID leaked" and waits
 *                   for "release" (a pipe from the parent), then exits 0;
 *         "release" lets the child go, waits for it: "child exited N";
 *         "quit"    exits 0.
 * The children's memory is their own: without --follow-forks only the parent's leaks are
 * reported. */
#include <fcntl.h>
#include <limits.h>
#include <sys/wait.h>

#include "trace_common.h"

static void* volatile kept[16];

static int wait_status(pid_t pid) {
  int status;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int child1(void) {
  for (int i = 0; i < 3; i++) kept[2 + i] = malloc(40);  // @leak forks-child1
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) die("readlink");
  self[n] = '\0';
  char* slash = strrchr(self, '/');
  if (!slash || (size_t)(slash - self) + sizeof "/trace_malloc" > sizeof self) die("path");
  strcpy(slash + 1, "trace_malloc");
  pid_t g = fork();
  if (g < 0) die("fork");
  if (g == 0) {
    execl(self, self, (char*)NULL);
    _exit(99);
  }
  return wait_status(g) == 0 ? 3 : 97;
}

static int child2(void) {
  for (int i = 0; i < 2; i++) kept[5 + i] = malloc(100);  // @leak forks-child2
  if (open("/dev/null", O_RDONLY) < 0) die("open");  // @fd forks-child2
  return 4;
}

static int tree_mode(void) {
  for (int i = 0; i < 2; i++) kept[i] = malloc(24);  // @leak forks-parent
  pid_t a = fork();
  if (a < 0) die("fork");
  if (a == 0) _exit(child1());
  pid_t b = fork();
  if (b < 0) die("fork");
  if (b == 0) _exit(child2());
  int sa = wait_status(a);
  int sb = wait_status(b);
  say("children %d %d\n", sa, sb);
  return sa == 3 && sb == 4 ? 0 : 1;
}

static int attach_mode(void) {
  say("ready %d\n", (int)getpid());
  char line[64];
  pid_t child = -1;
  int release = -1;
  for (;;) {
    size_t len = 0;
    for (;;) {  /* one line from stdin, unbuffered: no stdio allocation */
      char c;
      ssize_t r = read(0, &c, 1);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return 1;
      if (c == '\n') break;
      if (len < sizeof line - 1) line[len++] = c;
    }
    line[len] = '\0';
    if (strcmp(line, "fork") == 0) {
      kept[8] = malloc(16);  // @leak forks-attach-parent
      int p[2];
      if (pipe(p) != 0) die("pipe");
      child = fork();
      if (child < 0) die("fork");
      if (child == 0) {
        close(p[1]);
        kept[9] = malloc(56);  // @leak forks-attach-child
        say("child %d leaked\n", (int)getpid());
        char c;
        while (read(p[0], &c, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
      }
      close(p[0]);
      release = p[1];
    } else if (strcmp(line, "release") == 0) {
      if (write(release, "x", 1) != 1) die("write");
      close(release);
      say("child exited %d\n", wait_status(child));
    } else if (strcmp(line, "quit") == 0) {
      return 0;
    }
  }
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "attach") == 0) return attach_mode();
  return tree_mode();
}
