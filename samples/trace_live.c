/* A server that never exits, for the live view (issue #9).  Four worker threads make
 * balanced traffic (every block freed right after use; nothing of theirs stays live across
 * a sample), and, by mode (argv[1]):
 *   leak   - a fifth thread leaks 4096 bytes every 100 ms (@leak live-drip): 40 KiB/s;
 *   fd     - a fifth thread leaks one fd (/dev/null) every 200 ms (@fd live-fd-drip), while
 *            the workers open and close fds too: 5 fds/s;
 *   cache  - like leak, and, once "start" is read on stdin (after the attach, so that the
 *            tracer sees it fill), a cache filled at once with 64 blocks of 1 KiB that then
 *            replaces one entry every 10 ms (@leak live-cache: flat at 64 KiB), and a pool
 *            that grows by 2 KiB every 100 ms of the clock and frees all every 400 ms
 *            (@leak live-pool: a sawtooth).  Only the drip keeps growing.  "start" answers "started".
 * Prints "ready PID" and runs until "quit" (or EOF) on stdin. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "trace_common.h"

static atomic_int stopping;
static int mode_fd, mode_cache;

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void* worker(void* arg) {
  unsigned seed = (unsigned)(long)arg;
  while (!atomic_load(&stopping)) {
    for (int i = 0; i < 50; i++) {
      seed = seed * 1103515245u + 12345u;
      char* p = malloc(16 + seed % 2000);  // @leak live-balanced
      p[0] = (char)i;
      free(p);
    }
    if (mode_fd) {
      int fd = open("/dev/null", O_RDONLY);  // @fd live-balanced-fd
      if (fd >= 0) close(fd);
    }
    pause_ms(2);
  }
  return NULL;
}

static void* drip(void* arg) {
  (void)arg;
  static void* volatile kept[100000];
  (void)kept;
  for (long n = 0; !atomic_load(&stopping) && n < 100000; n++) {
    if (mode_fd) {
      if (open("/dev/null", O_RDONLY) < 0) die("open");  // @fd live-fd-drip
      pause_ms(200);
    } else {
      kept[n] = malloc(4096);  // @leak live-drip
      pause_ms(100);
    }
  }
  return NULL;
}

static void* volatile cache[64];

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void* churn_cache(void* arg) {
  (void)arg;
  static void* volatile pool[4];
  long last_step = -1;
  // One loop fills the cache at once (its first 64 turns do not sleep) and then replaces
  // an entry per turn: one site, which rises once and stays flat.
  for (long n = 0; !atomic_load(&stopping); n++) {
    free(cache[n % 64]);
    cache[n % 64] = malloc(1024);  // @leak live-cache
    if (n < 64) continue;
    // The pool steps by the clock, not by turns, so a slower engine does not stretch it.
    long k = now_ms() / 100 % 4;
    if (k != last_step) {
      last_step = k;
      if (k == 3) {
        for (int i = 0; i < 3; i++) {
          free(pool[i]);
          pool[i] = NULL;
        }
      } else if (!pool[k]) {
        pool[k] = malloc(2048);  // @leak live-pool
      }
    }
    pause_ms(10);
  }
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "leak";
  mode_fd = strcmp(mode, "fd") == 0;
  mode_cache = strcmp(mode, "cache") == 0;
  if (!mode_fd && !mode_cache && strcmp(mode, "leak") != 0) die("mode: leak, fd or cache");
  pthread_t t[6];
  int n = 0;
  for (long i = 0; i < 4; i++)
    if (pthread_create(&t[n++], NULL, worker, (void*)(i + 1)) != 0) die("pthread_create");
  if (pthread_create(&t[n++], NULL, drip, NULL) != 0) die("pthread_create");
  say("ready %d\n", (int)getpid());
  char line[64];
  while (read_line(line, sizeof line) && strcmp(line, "quit") != 0) {
    if (mode_cache && strcmp(line, "start") == 0 && n < 6) {
      if (pthread_create(&t[n++], NULL, churn_cache, NULL) != 0) die("pthread_create");
      say("started\n");
    }
  }
  atomic_store(&stopping, 1);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  return 0;
}
