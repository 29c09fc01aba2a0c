// Built with -O2 -fomit-frame-pointer (samples/trace.mk): no frame pointer to follow, so the
// call chain main -> level1 -> level2 -> level3 only unwinds through DWARF CFI.  Each level
// uses its callee's result afterwards, so none of the calls is a tail call that would drop
// a frame, and noinline/noclone keep every level a function of its own.
//
// Leaked: o2-site 1x40 (stack: level3 @leak o2-site, level2 @frame o2-level2,
// level1 @frame o2-level1, main @frame o2-main), o2-vector 1x24 + 1x80 (a std::vector made
// by new on one line: the object and its buffer), plus libstdc++'s 72704-byte pool.
#include <vector>

extern "C" {
#include "trace_common.h"
}

void* volatile keep[4];
volatile int sink;

#define LEVEL __attribute__((noinline, noclone))

LEVEL int* level3(int n) {
  int* p = new int[n];  // @leak o2-site
  for (int i = 0; i < n; i++) p[i] = i;
  return p;
}

LEVEL int* level2(int n) {
  int* p = level3(n);  // @frame o2-level2
  sink = p[n - 1];
  return p;
}

LEVEL int* level1(int n) {
  int* p = level2(n + 1);  // @frame o2-level1
  sink = p[0];
  return p;
}

LEVEL std::vector<int>* make_vector(int n) {
  auto* v = new std::vector<int>(n, 3);  // @leak o2-vector
  sink = (*v)[0];
  return v;
}

int main() {
  keep[0] = level1(9);  // @frame o2-main
  keep[1] = make_vector(20);
  // A temporary that is freed: must not show up.
  std::vector<int> tmp(1000, 1);
  sink = tmp[999];
  say("done\n");
  return 0;
}
