/* Leaks 2 blocks of 100 bytes (@leak segv), then dies of SIGSEGV writing through a null
 * pointer.  The report must still be written; ptmem launch exits 128 + 11 = 139.  No core
 * file is left behind: RLIMIT_CORE is set to 0 first. */
#include <sys/resource.h>

#include "trace_common.h"

static void* volatile kept[2];
int* volatile nowhere = NULL;

int main(void) {
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  for (int i = 0; i < 2; i++) kept[i] = malloc(100);  // @leak segv
  char* freed = malloc(50);
  free(freed);
  say("crashing\n");
  *nowhere = 1;
  say("FAILED survived\n");
  return 0;
}
