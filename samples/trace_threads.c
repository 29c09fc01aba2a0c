/* Eight threads, all alive at once, each churning 1000 malloc/free pairs and leaking a
 * different amount on one shared line: thread i (0..7) leaks i+1 blocks of (i+1)*8 bytes,
 * 36 blocks and 1632 bytes in all, one group (same stack in every thread).
 *
 * pthread_create itself allocates the new thread's DTV (calloc inside ld.so) and glibc
 * keeps it with the cached stack after the join: 8 blocks on the @leak thread-create line.
 * Small stacks keep all eight in glibc's stack cache (40 MiB), so none is freed there.
 * Thread i names itself "worker-i": the report's per-thread figures say who holds what. */
#define _GNU_SOURCE  // pthread_setname_np
#include <pthread.h>

#include "trace_common.h"

#define THREADS 8
#define CHURN 1000

static void* volatile keep[THREADS][THREADS];

static void* worker(void* arg) {
  long id = (long)arg;
  char name[16];
  snprintf(name, sizeof name, "worker-%ld", id);
  pthread_setname_np(pthread_self(), name);  // prctl: no allocation, no fd
  for (int i = 0; i < CHURN; i++) {
    char* p = malloc(16 + (size_t)(i % 64));
    p[0] = (char)i;
    free(p);
  }
  for (long k = 0; k <= id; k++) keep[id][k] = malloc((size_t)(id + 1) * 8);  // @leak thread
  return NULL;
}

int main(void) {
  pthread_t threads[THREADS];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  /* All threads are created before any is joined: each gets a stack (and a DTV) of its own. */
  for (long i = 0; i < THREADS; i++)
    if (pthread_create(&threads[i], &attr, worker, (void*)i) != 0) die("pthread_create");  // @leak thread-create
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  pthread_attr_destroy(&attr);
  say("done\n");
  return 0;
}
