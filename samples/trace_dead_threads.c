/* Blocks leaked by threads that have ended: thread i mallocs 64*(i+1) bytes into a local
 * and returns; main joins them all and exits.  The only words left pointing at the blocks
 * are stale ones in the dead threads' stacks, which glibc keeps cached for reuse: memcheck
 * calls them definitely lost (640 bytes in 4 blocks), and so must ptmem. */
#include <pthread.h>

#include "trace_common.h"

static void* leak(void* arg) {
  long i = (long)arg;
  void* volatile p = malloc((size_t)(64 * (i + 1)));  // @leak dead-thread
  (void)p;
  return NULL;
}

int main(void) {
  pthread_t t[4];
  for (long i = 0; i < 4; i++)
    if (pthread_create(&t[i], NULL, leak, (void*)i) != 0) die("pthread_create");
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  say("done\n");
  return 0;
}
