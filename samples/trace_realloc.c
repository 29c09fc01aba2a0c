/* realloc in all its forms.  A block made by realloc belongs to the realloc's line, whether
 * glibc moved it or resized it in place; glibc's realloc(NULL, n) calls malloc and
 * realloc(p, 0) calls free internally, which a tracer must not count twice.
 *
 * Leaked (site: blocks x bytes):  realloc-chain 1x50, realloc-null 1x77,
 * reallocarray 1x300.  Calls: 9 allocating, 3 freeing (free x2 + realloc(p, 0)),
 * 7 realloc/reallocarray calls, 1 of them failing (its block stays live and is freed). */
#define _GNU_SOURCE
#include <stdint.h>

#include "trace_common.h"

void* volatile keep[4];
volatile size_t huge = SIZE_MAX / 2;
/* GCC turns realloc(NULL, n) with a literal NULL into malloc(n), even at -O0. */
void* volatile null_pointer = NULL;

/* Natively (glibc 2.36): the first realloc must move (|fence| sits right behind |a|),
 * the second grows in place (the moved block borders the top chunk), the third shrinks in
 * place.  Under valgrind every realloc moves; the figures are the same either way. */
void realloc_chain(void) {
  char* a = malloc(24);
  char* fence = malloc(24);
  a[0] = 'a';
  char* b = realloc(a, 2000);
  char* c = realloc(b, 4000);
  char* d = realloc(c, 50);  // @leak realloc-chain
  keep[0] = d;
  free(fence);
}

void realloc_null(void) {
  keep[1] = realloc(null_pointer, 77);  // @leak realloc-null
}

void realloc_zero(void) {
  char* p = malloc(500);
  p[0] = 1;
  char* volatile r = realloc(p, 0); /* frees p and returns NULL (glibc) */
  if (r != NULL) die("realloc(p, 0) returned a block");
}

void realloc_array(void) {
  keep[2] = reallocarray(null_pointer, 10, 30);  // @leak reallocarray
}

/* GCC cannot know that the realloc fails, and q is only valid because it does. */
#pragma GCC diagnostic ignored "-Wuse-after-free"
void realloc_fails(void) {
  char* q = malloc(10);
  char* volatile r = realloc(q, huge); /* fails: q stays valid and is still q's block */
  if (r != NULL) die("huge realloc succeeded");
  free(q);
}

int main(void) {
  realloc_chain();
  realloc_null();
  realloc_zero();
  realloc_array();
  realloc_fails();
  say("done\n");
  return 0;
}
