/* A target for the mount-namespace tests: run from a private tmpfs that only its own mount
 * namespace sees, so ptmem must read its files through /proc/PID/root.
 *
 * Built twice from this file (samples/trace_ns.mk): trace_ns_target (dynamic), and
 * trace_ns_other (static, -DTRACE_NS_OTHER): other lines, other function names, other block
 * size, its allocator inside the executable.  A test puts one at a path in ptmem's namespace
 * and the other at the same path in the target's, so a report (or a hook) made from the wrong
 * file cannot match.
 *
 *   trace_ns_target        stdin commands: "leak N" -> "leaked N" (N blocks kept forever),
 *                          "undumpable" -> "undumpable" (prctl(PR_SET_DUMPABLE, 0)),
 *                          "quit" -> exit 0; prints "ready PID" first
 *   trace_ns_target N      leaks N blocks and exits 0 */
#include <sys/prctl.h>

#include "trace_common.h"

static void* volatile kept[1024];
static int kept_count;

#ifdef TRACE_NS_OTHER
/* Padding, so that no line of this build's leak site is a line of the other build's. */
static long unused_padding(long x) {
  x = x * 3 + 1;
  x = x * 5 + 2;
  x = x * 7 + 3;
  return x;
}

__attribute__((noinline)) static void leak_from_build_b(long n) {
  for (long i = 0; i < n && kept_count < 1024; i++) kept[kept_count++] = malloc(48);  // @leak build-b
}
#define LEAK(n) leak_from_build_b(n)
#else
__attribute__((noinline)) static void leak_from_build_a(long n) {
  for (long i = 0; i < n && kept_count < 1024; i++) kept[kept_count++] = malloc(32);  // @leak build-a
}
#define LEAK(n) leak_from_build_a(n)
#endif

int main(int argc, char** argv) {
#ifdef TRACE_NS_OTHER
  if (unused_padding(argc) == 0) return 1;
#endif
  if (argc > 1) {
    LEAK(atol(argv[1]));
    return 0;
  }
  say("ready %d\n", (int)getpid());
  char line[128];
  while (read_line(line, sizeof line)) {
    long n = 0;
    if (sscanf(line, "leak %ld", &n) == 1) {
      LEAK(n);
      say("leaked %ld\n", n);
    } else if (strcmp(line, "undumpable") == 0) {
      if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die("prctl");
      say("undumpable\n");
    } else if (strcmp(line, "quit") == 0) {
      return 0;
    } else {
      say("unknown command '%s'\n", line);
    }
  }
  return 0;
}
