/* 200000 malloc/free pairs of varying sizes with exactly 3 blocks kept (i = 1000, 100000
 * and 199999): 200000 allocating calls, 199997 frees, 3 leaked blocks of
 * (i % 100) + 1 bytes = 1 + 1 + 100 = 102 bytes, all on one line. */
#include "trace_common.h"

#define PAIRS 200000

static void* volatile keep[3];

int main(void) {
  int kept = 0;
  unsigned long sum = 0;
  for (int i = 0; i < PAIRS; i++) {
    unsigned char* p = malloc((size_t)(i % 100) + 1);  // @leak many
    p[0] = (unsigned char)i;
    sum += p[0];
    if (i == 1000 || i == 100000 || i == PAIRS - 1)
      keep[kept++] = p;
    else
      free(p);
  }
  say("done %lu\n", sum);
  return 0;
}
