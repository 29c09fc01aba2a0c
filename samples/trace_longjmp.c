/* A longjmp out of a traced call: open() of a FIFO that has no writer blocks; another
 * thread waits until /proc shows the main thread inside that syscall, then signals it, and
 * the handler siglongjmps back to main.  That open never returns, so it is no fd.  ptmem
 * must then count what follows exactly, including an open from a deeper frame whose
 * uninitialised locals still hold the word the dead call's return slot held.
 *
 * Output: "jumped", "done".  Leaked: fd 1 at @fd after-jump (/dev/null), memory 1x24 at
 * @leak after-jump; the FIFO is never opened. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "trace_common.h"

static sigjmp_buf back;
static pid_t main_tid;
static char fifo[256];

static void on_signal(int sig) {
  (void)sig;
  siglongjmp(back, 1);
}

/* Signals the main thread once it is blocked in the FIFO's openat. */
static void* kicker(void* arg) {
  (void)arg;
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)main_tid);
  for (;;) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open syscall file");
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      if (atoi(buf) == SYS_openat) break;
    }
    sched_yield();
  }
  syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
  return NULL;
}

static __attribute__((noinline)) void blocked_open(void) {
  int fd = open(fifo, O_RDONLY);
  say("FIFO opened?! fd %d\n", fd);
  _exit(98);
}

/* Deeper than blocked_open's frame, with a large uninitialised buffer over it. */
static __attribute__((noinline)) int deeper_open(void) {
  volatile char pad[4096];
  (void)pad;
  return open("/dev/null", O_RDONLY);  // @fd after-jump
}

int main(void) {
  main_tid = (pid_t)syscall(SYS_gettid);
  const char* dir = getenv("TMPDIR");
  snprintf(fifo, sizeof fifo, "%s/ptmem-fifo-%d", dir ? dir : "/tmp", (int)getpid());
  if (mkfifo(fifo, 0600) != 0) die("mkfifo");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGUSR1, &sa, NULL);

  pthread_t t;
  if (sigsetjmp(back, 1) == 0) {
    if (pthread_create(&t, NULL, kicker, NULL) != 0) die("pthread_create");
    blocked_open();
  }
  /* First thing after the jump, before any other call can overwrite the dead frame. */
  int fd = deeper_open();
  if (fd < 0) die("open /dev/null");
  pthread_join(t, NULL);
  unlink(fifo);
  say("jumped\n");
  void* volatile kept = malloc(24);  // @leak after-jump
  (void)kept;
  char* tmp = malloc(100);
  free(tmp);
  say("done\n");
  return 0;
}
