/* A minimal preloadable allocator in front of glibc's, for the tests of preloaded
 * allocators: it provides malloc and friends (forwarding to glibc's __libc_* entry points)
 * and C++'s operators new and delete, as jemalloc and tcmalloc do.  Built with CET
 * (-fcf-protection) and -O2, its operator delete is "endbr64; jmp free": one call, which
 * ptmem must count once. */
#include <stddef.h>
#include <stdlib.h>

extern void* __libc_malloc(size_t);
extern void __libc_free(void*);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

void* malloc(size_t n) { return __libc_malloc(n); }
void free(void* p) { __libc_free(p); }
void* calloc(size_t n, size_t size) { return __libc_calloc(n, size); }
void* realloc(void* p, size_t n) { return __libc_realloc(p, n); }
void* memalign(size_t align, size_t n) { return __libc_memalign(align, n); }
void* aligned_alloc(size_t align, size_t n) { return __libc_memalign(align, n); }
int posix_memalign(void** out, size_t align, size_t n) {
  void* p = __libc_memalign(align, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

/* operator new(size_t), new[](size_t): no new_handler, no exceptions needed by the tests. */
void* _Znwm(size_t n) {
  void* p = malloc(n);
  if (!p) abort();
  return p;
}
void* _Znam(size_t n) { return _Znwm(n); }
/* operator delete(void*), delete[](void*), and the sized ones: tail jumps to free. */
void _ZdlPv(void* p) { free(p); }
void _ZdaPv(void* p) { free(p); }
void _ZdlPvm(void* p, size_t n) {
  (void)n;
  free(p);
}
void _ZdaPvm(void* p, size_t n) {
  (void)n;
  free(p);
}
