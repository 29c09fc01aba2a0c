/* A process that holds still, for `ptmem stats` tests: allocates and touches MIB MiB,
 * opens FDS fds on /dev/null, prints "ready pid=<pid> t=<Unix time>" and then blocks
 * reading stdin until EOF, changing nothing.  Usage: stats_flat MIB FDS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: stats_flat MIB FDS\n");
    return 2;
  }
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  size_t bytes = (size_t)atoi(argv[1]) << 20;
  int fds = atoi(argv[2]);
  char* p = malloc(bytes ? bytes : 1);
  if (!p) return 1;
  for (size_t off = 0; off < bytes; off += 4096) p[off] = 1;
  for (int i = 0; i < fds; ++i)
    if (open("/dev/null", O_RDONLY) < 0) return 1;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  printf("ready pid=%d t=%.6f\n", (int)getpid(), (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  return (int)(p[0] - 1);
}
