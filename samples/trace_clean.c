/* Leaks nothing: allocates and frees, opens and closes.  Modes (argv[1]):
 *   (none)    prints "clean", exits 0
 *   exit N    prints "clean", exits N
 *   fds       prints the fds it has open, "fds 0 1 2" style, ascending, and exits 0 (the
 *             fd used to list /proc/self/fd is left out)
 *   leak      leaks one block of 16 bytes (@leak clean-leak), exits 0 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>

#include "trace_common.h"

static void* volatile kept;

static void churn(void) {
  for (int i = 0; i < 10; i++) {
    void* p = malloc(100 + (size_t)i);
    free(p);
  }
  int fd = open("/dev/null", O_RDONLY);
  if (fd < 0) die("open");
  close(fd);
}

static void list_fds(void) {
  int fds[256], n = 0;
  int self = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
  if (self < 0) die("open /proc/self/fd");
  char buf[4096];
  /* getdents64 by hand: opendir would allocate and fopen-style buffers are not needed. */
  for (;;) {
    long got = syscall(217 /* SYS_getdents64 */, self, buf, sizeof buf);
    if (got <= 0) break;
    for (long off = 0; off < got;) {
      struct dirent64* d = (struct dirent64*)(buf + off);
      if (d->d_name[0] != '.' && n < 256) {
        int fd = atoi(d->d_name);
        if (fd != self) fds[n++] = fd;
      }
      off += d->d_reclen;
    }
  }
  close(self);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
      int t = fds[j];
      fds[j] = fds[j - 1];
      fds[j - 1] = t;
    }
  char line[2048];
  size_t len = (size_t)snprintf(line, sizeof line, "fds");
  for (int i = 0; i < n && len + 16 < sizeof line; i++)
    len += (size_t)snprintf(line + len, sizeof line - len, " %d", fds[i]);
  say("%s\n", line);
}

int main(int argc, char** argv) {
  churn();
  if (argc > 1 && strcmp(argv[1], "fds") == 0) {
    list_fds();
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "leak") == 0) {
    kept = malloc(16);  // @leak clean-leak
    say("leaked\n");
    return 0;
  }
  say("clean\n");
  if (argc > 2 && strcmp(argv[1], "exit") == 0) return atoi(argv[2]);
  return 0;
}
