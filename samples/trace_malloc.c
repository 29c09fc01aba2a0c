/* Plain C allocator calls with known leaks, one site per function so that the builds
 * without debug info (trace_malloc_nodebug, _stripped) and the static build
 * (trace_malloc_static) still have a name or a distinct size per site.
 *
 * Leaked (site: blocks x bytes):  small 1x40, calloc 1x120, zero 1x0, loop 5x64,
 * posix_memalign 1x100, aligned_alloc 1x256, valloc 1x1000.  Everything else is freed.
 * Also: 2 x free(NULL), 1 failed malloc (returns NULL).  No pvalloc: valgrind, which
 * checks these figures, aborts on it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>

#include "trace_common.h"

/* The leaked pointers are kept here so the compiler cannot drop the calls. */
void* volatile keep[16];
/* GCC drops free(NULL) with a literal NULL: the sample must really call it. */
void* volatile null_pointer = NULL;

void leak_small(void) {
  keep[0] = malloc(40);  // @leak small
}

void leak_calloc(void) {
  keep[1] = calloc(10, 12);  // @leak calloc
}

void leak_zero(void) {
  keep[2] = malloc(0);  // @leak zero
}

void leak_loop(void) {
  for (int i = 0; i < 5; i++) keep[3 + i] = malloc(64);  // @leak loop
}

void leak_aligned(void) {
  void* p = NULL;
  if (posix_memalign(&p, 64, 100) != 0) die("posix_memalign");  // @leak posix_memalign
  keep[8] = p;
  keep[9] = aligned_alloc(128, 256);  // @leak aligned_alloc
  keep[10] = valloc(1000);  // @leak valloc
}

/* Freed properly: none of these may show up in a report. */
void no_leaks(void) {
  char* a = malloc(1000);
  int* b = calloc(4, sizeof(int));
  void* c = memalign(32, 48);
  void* d = valloc(8192);
  void* e = NULL;
  if (posix_memalign(&e, 16, 24) != 0) die("posix_memalign");
  a[0] = 1;
  b[0] = 2;
  free(a);
  free(b);
  free(c);
  free(d);
  free(e);
  free(null_pointer);
  free(null_pointer);
}

void failed_alloc(void) {
  /* Fails without touching memory (the request exceeds PTRDIFF_MAX); not an allocation.
   * The size goes through a volatile so the compiler neither warns nor folds the call. */
  volatile size_t huge = SIZE_MAX - 4096;
  void* volatile p = malloc(huge);
  if (p != NULL) die("huge malloc succeeded");
}

int main(void) {
  leak_small();
  leak_calloc();
  leak_zero();
  leak_loop();
  leak_aligned();
  no_leaks();
  failed_alloc();
  say("done\n");
  return 0;
}
