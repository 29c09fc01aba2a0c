/* libtrace_leaky.so: a shared library the samples build (samples/trace.mk), leaking from
 * its own code.  The allocation site is a line of this file (module libtrace_leaky.so),
 * the caller's line in the program is the next frame.
 *
 * Leaked: lib-ctor 1x11 (a constructor, before main), lib-make (size given by the caller),
 * lib-dup (strlen + 1 per call). */
#include <stdlib.h>
#include <string.h>

static void* volatile ctor_block;

__attribute__((constructor)) static void leaky_init(void) {
  ctor_block = malloc(11);  // @leak lib-ctor
}

static __attribute__((noinline)) void* leaky_alloc(size_t n) {
  return malloc(n);  // @leak lib-make
}

void* leaky_make(size_t n) {
  void* p = leaky_alloc(n);  // @frame lib-make-caller
  if (p) memset(p, 0, n);
  return p;
}

char* leaky_dup(const char* s) {
  size_t n = strlen(s) + 1;
  char* d = malloc(n);  // @leak lib-dup
  if (d) memcpy(d, s, n);
  return d;
}
