// C++ allocations: new, new[], and standard containers, some leaked.  The allocation site is
// the user's line, never operator new or the libstdc++ code (in libstdc++.so or
// instantiated from its headers) between it and malloc.
//
// Leaked (site: groups, blocks x bytes):  new-int 1x4, new-array 1x100,
// string: 2 groups on one line (the std::string object 1x32 and its buffer 1x41),
// vector: 2 groups on one line (the std::vector object 1x24 and its buffer 1x400).
// Everything else is freed.  libstdc++ itself keeps one 72704-byte block from before main
// (its emergency exception pool), which is live at exit too.
#include <string>
#include <vector>

extern "C" {
#include "trace_common.h"
}

// Pointers kept here so that nothing can be optimised away.
void* volatile keep[8];

static void leak_new() {
  keep[0] = new int(7);  // @leak new-int
  keep[1] = new char[100];  // @leak new-array
}

static void leak_containers() {
  keep[2] = new std::string(40, 'x');  // @leak string
  keep[3] = new std::vector<int>(100);  // @leak vector
}

static void no_leaks() {
  int* a = new int(1);
  delete a;
  char* b = new char[64];
  delete[] b;
  std::string s(100, 'y');  // heap buffer (longer than the small-string buffer), freed
  std::vector<int> v;
  for (int i = 0; i < 20; i++) v.push_back(i);  // grows 1,2,4,8,16,32: 6 buffers, all freed
  if (s.size() + v.size() != 120) die("sizes");
}

int main() {
  leak_new();
  leak_containers();
  no_leaks();
  say("done\n");
  return 0;
}
