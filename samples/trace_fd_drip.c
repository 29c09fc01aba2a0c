/* A long-running target for `ptmem attach` that leaks one fd (DIR/drip.txt, argv[1]) every
 * 200 ms on the @fd drip line, printing "fd drip N" after each.  Commands on stdin:
 *   stop  -> stops dripping, answers "stopped total=T" (T: fds leaked so far)
 *   go    -> resumes, answers "going"
 *   quit  -> exits 0
 * Starts dripping at once and prints "ready PID" first.  Single-threaded: poll(2) on stdin
 * with a 200 ms timeout is the clock, no allocation anywhere. */
#include <fcntl.h>
#include <poll.h>
#include <time.h>

#include "trace_common.h"

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  char path[512];
  snprintf(path, sizeof path, "%s/drip.txt", argv[1]);
  say("ready %d\n", (int)getpid());
  int running = 1, total = 0;
  long next = now_ms() + 200;
  char line[64];
  size_t have = 0;
  for (;;) {
    long wait = running ? next - now_ms() : -1;
    if (running && wait < 0) wait = 0;
    struct pollfd p = {0, POLLIN, 0};
    int r = poll(&p, 1, (int)wait);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("poll");
    if (r > 0) {
      char c;
      ssize_t n = read(0, &c, 1);
      if (n <= 0) break;
      if (c != '\n') {
        if (have + 1 < sizeof line) line[have++] = c;
        continue;
      }
      line[have] = '\0';
      have = 0;
      if (strcmp(line, "stop") == 0) {
        running = 0;
        say("stopped total=%d\n", total);
      } else if (strcmp(line, "go") == 0) {
        running = 1;
        next = now_ms() + 200;
        say("going\n");
      } else if (strcmp(line, "quit") == 0) {
        break;
      }
      continue;
    }
    if (running && now_ms() >= next) {
      int fd = open(path, O_CREAT | O_RDWR, 0600);  // @fd drip
      if (fd < 0) die("open");
      total++;
      say("fd drip %d\n", fd);
      next += 200;
    }
  }
  return 0;
}
