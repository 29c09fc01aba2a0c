/* A process whose memory and fd count change only when told to, for `ptmem stats` tests.
 *
 * Reads commands from stdin, one per line, and answers each with one line on stdout once
 * the change is complete, ending with t=<Unix time>, so a test can wait for a sample
 * taken after that moment:
 *   alloc N    malloc N MiB and touch every page      -> "ok alloc mib=<total MiB held>"
 *   free       free the most recent block              -> "ok free mib=<total>"
 *   open N     open /dev/null N times                  -> "ok open fds=<fds open in total>"
 *   close      close the most recently opened fd       -> "ok close fds=<total>"
 *   threads N  start N threads named worker-1..N that  -> "tid <tid>" per thread, then
 *              block on a pipe (2 more fds)               "ok threads n=N fds=<total>"
 *   quit       exit 0
 * It starts with exactly fds 0, 1 and 2 (everything else inherited is closed) and prints
 * "ready pid=<pid> t=<time>".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_BLOCKS 256
#define MAX_FDS 4096
#define MAX_THREADS 64

static char* blocks[MAX_BLOCKS];
static size_t block_mib[MAX_BLOCKS];
static int nblocks;
static size_t held_mib;
static int fds[MAX_FDS];
static int nfds;
static int thread_pipe[2] = {-1, -1};
static pthread_barrier_t started;

/* fds open in the process: 0, 1, 2, ours, and the threads' pipe once it exists. */
static int open_fds(void) { return 3 + nfds + (thread_pipe[0] >= 0 ? 2 : 0); }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void* blocked_thread(void* arg) {
  char name[16];
  snprintf(name, sizeof name, "worker-%d", (int)(long)arg);
  pthread_setname_np(pthread_self(), name);
  printf("tid %ld\n", (long)syscall(SYS_gettid));
  pthread_barrier_wait(&started);
  char c;
  while (read(thread_pipe[0], &c, 1) < 0) {
  }
  return NULL;
}

int main(void) {
  /* Exactly 0, 1, 2 open, so the expected fd count is 3 + what we open. */
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  /* A fixed mmap threshold: every MiB-sized block is its own mapping and free() gives it
   * back to the kernel, so RSS follows alloc/free exactly. */
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready pid=%d t=%.6f\n", (int)getpid(), now());

  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    int n = 0;
    if (sscanf(line, "alloc %d", &n) == 1 && n > 0 && nblocks < MAX_BLOCKS) {
      size_t bytes = (size_t)n << 20;
      char* p = malloc(bytes);
      if (!p) return 1;
      for (size_t off = 0; off < bytes; off += 4096) p[off] = (char)(off >> 12 | 1);
      blocks[nblocks] = p;
      block_mib[nblocks++] = (size_t)n;
      held_mib += (size_t)n;
      printf("ok alloc mib=%zu t=%.6f\n", held_mib, now());
    } else if (strncmp(line, "free", 4) == 0 && nblocks > 0) {
      --nblocks;
      free(blocks[nblocks]);
      held_mib -= block_mib[nblocks];
      printf("ok free mib=%zu t=%.6f\n", held_mib, now());
    } else if (sscanf(line, "open %d", &n) == 1 && n > 0) {
      for (int i = 0; i < n && nfds < MAX_FDS; ++i) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) return 1;
        fds[nfds++] = fd;
      }
      printf("ok open fds=%d t=%.6f\n", open_fds(), now());
    } else if (strncmp(line, "close", 5) == 0 && nfds > 0) {
      close(fds[--nfds]);
      printf("ok close fds=%d t=%.6f\n", open_fds(), now());
    } else if (sscanf(line, "threads %d", &n) == 1 && n > 0 && n <= MAX_THREADS) {
      if (thread_pipe[0] < 0 && pipe(thread_pipe) != 0) return 1;
      pthread_barrier_init(&started, NULL, (unsigned)n + 1);
      for (int i = 1; i <= n; ++i) {
        pthread_t t;
        if (pthread_create(&t, NULL, blocked_thread, (void*)(long)i) != 0) return 1;
      }
      /* Every thread has named itself and printed "tid N" before the barrier opens. */
      pthread_barrier_wait(&started);
      pthread_barrier_destroy(&started);
      printf("ok threads n=%d fds=%d t=%.6f\n", n, open_fds(), now());
    } else if (strncmp(line, "quit", 4) == 0) {
      return 0;
    } else {
      printf("error bad command: %s", line);
    }
  }
  return 0;
}
