// Holds N live blocks for `make bench`'s memory figure: allocates N small blocks from a few
// call sites, prints "ready N" on stdout, waits for EOF on stdin (the bench reads the
// tracer's memory meanwhile), then exits without freeing anything.
// Usage: live_blocks N
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

// Four distinct allocation sites, so the tracer interns a few stacks, not one.
__attribute__((noinline)) static void* site_a(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* site_b(size_t n) { return malloc(n + 8); }
__attribute__((noinline)) static void* site_c(size_t n) { return site_a(n + 16); }
__attribute__((noinline)) static void* site_d(size_t n) { return site_b(n + 24); }

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  if (n < 0) return 2;
  void** blocks = malloc((size_t)(n ? n : 1) * sizeof *blocks);
  if (!blocks) return 1;
  for (long i = 0; i < n; ++i) {
    size_t size = 16 + (size_t)(i % 7) * 8;
    switch (i & 3) {
      case 0: blocks[i] = site_a(size); break;
      case 1: blocks[i] = site_b(size); break;
      case 2: blocks[i] = site_c(size); break;
      default: blocks[i] = site_d(size); break;
    }
    if (!blocks[i]) return 1;
    ((unsigned char*)blocks[i])[0] = 0xa5;
  }
  printf("ready %ld\n", n);
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  unsigned long sum = 0;  // the same in every run (no addresses: ASLR), read by the bench
  for (long i = 0; i < n; ++i) sum += ((unsigned char*)blocks[i])[0] == 0xa5;
  printf("bench: alloc_calls=%ld free_calls=0 fd_create_calls=0 fd_close_calls=0 checksum=%lu\n", n + 1,
         sum + (unsigned long)n);
  return 0;
}
