/* A target for ending at every phase of ptmem's work, and for attaching to threads that
 * come and go.  Driven on stdin, answers on stdout:
 *
 *   "ready PID"     at start (two idle helper threads are running, blocked on a condition)
 *   leak N   -> "leaked N"   N blocks of 24 bytes (@leak phase), kept
 *   exit C   -> "exiting C", then exit(C) (exit_group: the helper threads end with it)
 *   quit     -> exit 0
 *
 * argv[1] = "churn": instead of the helpers, a spawner thread creates threads without
 * pause, each living a few milliseconds (it mallocs and frees 1x64, sleeps 1-3 ms, is
 * joined).  Extra commands:
 *   count    -> "count created=C"  threads made so far (keeps growing)
 *   grow N   -> "grown created=C"  once at least N more threads were made and joined
 *   stop     -> "stopped created=C"  the spawner stops after joining the last one
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "trace_common.h"

static void* volatile kept[4096];
static int kept_count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static atomic_long created;
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t grown = PTHREAD_COND_INITIALIZER;
static atomic_int stop_spawning;

static void* idle(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) pthread_cond_wait(&cond, &lock);  // never signalled: ends with the process
  return NULL;
}

static void* short_life(void* arg) {
  long i = (long)arg;
  char* p = malloc(64);
  p[0] = (char)i;
  free(p);
  struct timespec ts = {0, 1000000L * (1 + i % 3)};
  while (nanosleep(&ts, &ts) != 0) {
  }
  return NULL;
}

static void* spawner(void* arg) {
  (void)arg;
  for (long i = 0; !atomic_load(&stop_spawning); i++) {
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
      if (pthread_create(&t[k], NULL, short_life, (void*)(i * 4 + k)) != 0) die("pthread_create");
    for (int k = 0; k < 4; k++) pthread_join(t[k], NULL);
    pthread_mutex_lock(&grow_lock);
    atomic_fetch_add(&created, 4);
    pthread_cond_broadcast(&grown);
    pthread_mutex_unlock(&grow_lock);
  }
  return NULL;
}

int main(int argc, char** argv) {
  int churn = argc > 1 && strcmp(argv[1], "churn") == 0;
  pthread_t helpers[2];
  if (churn) {
    if (pthread_create(&helpers[0], NULL, spawner, NULL) != 0) die("pthread_create");
  } else {
    for (int i = 0; i < 2; i++)
      if (pthread_create(&helpers[i], NULL, idle, NULL) != 0) die("pthread_create");
  }
  say("ready %d\n", (int)getpid());
  char line[128];
  while (read_line(line, sizeof line)) {
    int n = 0;
    if (sscanf(line, "leak %d", &n) == 1) {
      for (int i = 0; i < n && kept_count < 4096; i++) kept[kept_count++] = malloc(24);  // @leak phase
      say("leaked %d\n", n);
    } else if (sscanf(line, "exit %d", &n) == 1) {
      say("exiting %d\n", n);
      exit(n);
    } else if (churn && strcmp(line, "count") == 0) {
      say("count created=%ld\n", atomic_load(&created));
    } else if (churn && sscanf(line, "grow %d", &n) == 1) {
      pthread_mutex_lock(&grow_lock);
      long goal = atomic_load(&created) + n;
      while (atomic_load(&created) < goal) pthread_cond_wait(&grown, &grow_lock);
      pthread_mutex_unlock(&grow_lock);
      say("grown created=%ld\n", atomic_load(&created));
    } else if (churn && strcmp(line, "stop") == 0) {
      atomic_store(&stop_spawning, 1);
      pthread_join(helpers[0], NULL);
      say("stopped created=%ld\n", atomic_load(&created));
    } else if (strcmp(line, "quit") == 0) {
      break;
    } else {
      say("unknown command '%s'\n", line);
    }
  }
  return 0;
}
