/* A long-running, multi-threaded target for `ptmem attach`, driven line by line on stdin,
 * answering on stdout (one line per command, written whole with write(2)):
 *
 *   "ready PID"            once, when the workers run
 *   sum N      -> "sum N VALUE"   VALUE = sum of i*i mod 1000003 over i < N, computed in a
 *                                 malloc'd array that is freed (1 malloc + 1 free)
 *   check      -> "check bad=B rounds=R"  B: corrupted rounds seen by the workers (must stay
 *                                 0), R: rounds done so far (keeps growing while running)
 *   leak N     -> "leaked N"      N blocks of 24 bytes on the @leak attach line, kept forever
 *   pause      -> "paused"        every worker idle, holding no heap block
 *   resume     -> "resumed"
 *   quit       -> exits 0 after joining the workers (a paused worker wakes up, does exactly
 *                 one more round: 3 allocating calls and 2 frees, and ends)
 *
 * The workers (4, or argv[1], at most 64) loop over malloc/realloc/calloc/free and verify what they wrote, so breakpoints
 * are hit all the time while ptmem attaches and detaches.  A corrupted register or a lost
 * write would show up as bad > 0; a stray int3 left behind would kill the process. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "trace_common.h"

#define MAX_WORKERS 64
static int WORKERS = 4;

static atomic_long rounds;
static atomic_long bad;
static atomic_int stop_all;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int paused;      /* guarded by lock */
static int idle_count;  /* workers waiting while paused */

static void* volatile kept[4096];
static int kept_count;

static void worker_round(long id, long r) {
  size_t n = 32 + (size_t)((r * 7 + id) % 200);
  uint32_t* a = malloc(n * sizeof *a);
  for (size_t i = 0; i < n; i++) a[i] = (uint32_t)(i * 2654435761u + (uint32_t)id);
  uint32_t* b = realloc(a, 2 * n * sizeof *b);
  for (size_t i = n; i < 2 * n; i++) b[i] = (uint32_t)i;
  uint32_t* c = calloc(n, sizeof *c);
  for (size_t i = 0; i < n; i++) c[i] = b[i] ^ b[n + i];
  for (size_t i = 0; i < n; i++)
    if ((c[i] ^ (uint32_t)(n + i)) != (uint32_t)(i * 2654435761u + (uint32_t)id)) {
      atomic_fetch_add(&bad, 1);
      break;
    }
  free(c);
  free(b);
}

static void* worker(void* arg) {
  long id = (long)arg;
  for (long r = 0; !atomic_load(&stop_all); r++) {
    pthread_mutex_lock(&lock);
    if (paused) {
      idle_count++;
      pthread_cond_broadcast(&cond);
      while (paused && !atomic_load(&stop_all)) pthread_cond_wait(&cond, &lock);
      idle_count--;
    }
    pthread_mutex_unlock(&lock);
    worker_round(id, r);
    atomic_fetch_add(&rounds, 1);
  }
  return NULL;
}

static unsigned long sum_squares(long n) {
  unsigned long* v = malloc((size_t)n * sizeof *v + 1);
  unsigned long s = 0;
  for (long i = 0; i < n; i++) v[i] = (unsigned long)i * (unsigned long)i % 1000003ul;
  for (long i = 0; i < n; i++) s += v[i];
  free(v);
  return s;
}

static void leak(long n) {
  for (long i = 0; i < n && kept_count < 4096; i++) kept[kept_count++] = malloc(24);  // @leak attach
}

int main(int argc, char** argv) {
  if (argc > 1) WORKERS = atoi(argv[1]);
  if (WORKERS < 1 || WORKERS > MAX_WORKERS) die("workers: 1 to 64");
  pthread_t threads[MAX_WORKERS];
  for (long i = 0; i < WORKERS; i++)
    if (pthread_create(&threads[i], NULL, worker, (void*)i) != 0) die("pthread_create");
  say("ready %d\n", (int)getpid());

  char line[256];
  while (read_line(line, sizeof line)) {
    long n = 0;
    if (sscanf(line, "sum %ld", &n) == 1 && n > 0) {
      say("sum %ld %lu\n", n, sum_squares(n));
    } else if (strcmp(line, "check") == 0) {
      say("check bad=%ld rounds=%ld\n", atomic_load(&bad), atomic_load(&rounds));
    } else if (sscanf(line, "leak %ld", &n) == 1) {
      leak(n);
      say("leaked %ld\n", n);
    } else if (strcmp(line, "pause") == 0) {
      pthread_mutex_lock(&lock);
      paused = 1;
      while (idle_count < WORKERS) pthread_cond_wait(&cond, &lock);
      pthread_mutex_unlock(&lock);
      say("paused\n");
    } else if (strcmp(line, "resume") == 0) {
      pthread_mutex_lock(&lock);
      paused = 0;
      pthread_cond_broadcast(&cond);
      pthread_mutex_unlock(&lock);
      say("resumed\n");
    } else if (strcmp(line, "quit") == 0) {
      break;
    } else {
      say("unknown command '%s'\n", line);
    }
  }
  atomic_store(&stop_all, 1);
  pthread_mutex_lock(&lock);
  paused = 0;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
  return 0;
}
