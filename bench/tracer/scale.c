// The end-of-trace scan at scale, for `make bench` (issue #11): N live blocks (default 10M)
// of a mix of sizes (16 to 848 bytes, 432 on average: 4 GiB at 10M), linked in chains of
// 64 so the scan follows real pointers:
//  - every block's first word points to the next block of its chain, its second word back
//    to the previous one, the rest is filler no scan can take for a pointer;
//  - chain c % 16 == 0: nothing points to its head: 1 block definitely lost, 63 indirectly;
//  - chain c % 16 == 1: a global points 8 bytes into its head: 64 blocks possibly lost;
//  - chain c % 16 == 2, the first 8 of them: held by main's stack (main calls exit(), so
//    its frame is live when the scan runs);
//  - every other chain: its head is in a global array, still reachable (the last chains
//    built are of this kind, so no stale register or stack slot holds a lost one).
// Prints "ready blocks=... bytes=... definitely=... indirectly=... possibly=..." (what the
// scan must find), waits for EOF on stdin (the bench reads the tracer's memory
// meanwhile), prints the usual "bench:" line, and exits without freeing anything.
// Usage: scale [N]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kChain = 64, kMaxChains = 1 << 20, kStackChains = 8 };

static void* g_heads[kMaxChains];     // still reachable chains
static char* g_interior[kMaxChains];  // head + 8 of the possibly lost chains

// 16 * (1 + k % 53): 16 to 848 bytes, mean 432.
static size_t size_of(long i) { return 16 * (size_t)(1 + (i * 37) % 53); }

__attribute__((noinline)) static void* alloc_block(long i) {
  size_t size = size_of(i);
  unsigned char* p = malloc(size);
  if (!p) exit(1);
  // Filler: every byte 0x5a, a word far above any user-space address.
  memset(p, 0x5a, size);
  return p;
}

// Builds chain |c| of |len| blocks from block number |first|; returns its head.
__attribute__((noinline)) static void* build_chain(long first, long len) {
  void* head = NULL;
  void** prev = NULL;
  for (long k = 0; k < len; ++k) {
    void** b = alloc_block(first + k);
    b[0] = NULL;
    b[1] = prev;  // a block of 16 bytes has room for both words
    if (prev) prev[0] = b;
    else head = b;
    prev = b;
  }
  return head;
}

static int kind_of(long c, long chains) {
  if (c >= chains - 2) return 3;  // the last ones built: plainly reachable
  return c % 16 < 3 ? (int)(c % 16) : 3;
}

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000000;
  if (n < 1) return 2;
  long chains = (n + kChain - 1) / kChain;
  if (chains > kMaxChains) return 2;
  void* volatile on_stack[kStackChains] = {0};
  long stacked = 0, definitely = 0, indirectly = 0, possibly = 0, reachable_slots = 0;
  unsigned long bytes = 0;
  for (long i = 0; i < n; ++i) bytes += size_of(i);
  for (long c = 0; c < chains; ++c) {
    long first = c * kChain, len = n - first < kChain ? n - first : kChain;
    void* head = build_chain(first, len);
    switch (kind_of(c, chains)) {
      case 0: definitely += 1; indirectly += len - 1; break;  // dropped
      case 1: g_interior[c] = (char*)head + 8; possibly += len; break;
      case 2:
        if (stacked < kStackChains) {
          on_stack[stacked++] = head;
          break;
        }
        g_heads[reachable_slots++] = head;
        break;
      default: g_heads[reachable_slots++] = head; break;
    }
  }
  printf("ready blocks=%ld bytes=%lu definitely=%ld indirectly=%ld possibly=%ld\n", n, bytes, definitely,
         indirectly, possibly);
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  // Walk what is still held (the interior pointers too, or the compiler could drop them):
  // the same count in every run (no addresses: ASLR).
  unsigned long held = 0;
  for (long s = 0; s < reachable_slots; ++s)
    for (void** b = g_heads[s]; b; b = b[0]) ++held;
  for (long s = 0; s < stacked; ++s)
    for (void** b = on_stack[s]; b; b = b[0]) ++held;
  for (long c = 0; c < chains; ++c)
    if (g_interior[c])
      for (void** b = (void**)(g_interior[c] - 8); b; b = b[0]) ++held;
  printf("bench: alloc_calls=%ld free_calls=0 fd_create_calls=0 fd_close_calls=0 checksum=%lu\n", n + 1,
         held + (unsigned long)n);
  fflush(stdout);
  exit(0);  // not return: main's frame, which holds some chains, must stay live
}
