/* Links libtrace_leaky.so (samples/trace.mk, rpath $ORIGIN): leaks made inside a shared
 * library the samples build, on lines of samples/trace_lib/leaky.c.
 *
 * Leaked (site in leaky.c: blocks x bytes):  lib-ctor 1x11 (before main), lib-make 1x200
 * (called from @frame uses-make), lib-dup 1x6 (the second leaky_dup; the first is freed,
 * called from @frame uses-dup). */
#include "trace_common.h"

void* leaky_make(size_t n);
char* leaky_dup(const char* s);

void* volatile keep[4];

int main(void) {
  keep[0] = leaky_make(200);  // @frame uses-make
  char* a = leaky_dup("freed");
  free(a);
  keep[1] = leaky_dup("hello");  // @frame uses-dup
  say("done\n");
  return 0;
}
