// Compute-only workload for `make bench`: no allocation and no fd in its loop, so a tracer
// that hooks only allocator and fd functions should cost it (almost) nothing.
// Usage: compute N   (N rounds over a static buffer; ~0.3 s native at the default)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t buffer[1 << 16];

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 1800;
  uint32_t x = 88172645u;
  for (size_t i = 0; i < sizeof buffer / sizeof buffer[0]; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    buffer[i] = x;
  }
  uint64_t sum = 0;
  for (long r = 0; r < rounds; ++r) {
    // A dependent chain through the buffer: the compiler cannot vectorise it away.
    uint32_t idx = (uint32_t)r;
    for (size_t i = 0; i < sizeof buffer / sizeof buffer[0]; ++i) {
      idx = buffer[idx & 0xffff] ^ (idx * 2654435761u);
      sum += idx >> 7;
    }
  }
  printf("bench: alloc_calls=0 free_calls=0 fd_create_calls=0 fd_close_calls=0 checksum=%llu\n",
         (unsigned long long)sum);
  return 0;
}
