// Allocations before main: a C++ global object's constructor and a C constructor function
// run from __libc_start_main before main; a launch must see them.  A global destructor frees
// one block at exit, after main returned.
//
// Leaked: ctor-global 1x40 (in Registry's constructor), ctor-attr 1x33; freed at exit by
// ~Registry: the ctor-freed block (1x16).  Plus libstdc++'s 72704-byte pool.
#include <cstdlib>

extern "C" {
#include "trace_common.h"
}

void* volatile keep[4];

struct Registry {
  int* table;
  void* scratch;
  Registry() {
    table = new int[10];  // @leak ctor-global
    scratch = std::malloc(16);
  }
  ~Registry() { std::free(scratch); }
};

Registry registry;

__attribute__((constructor)) static void early_init() {
  keep[0] = std::malloc(33);  // @leak ctor-attr
}

int main() {
  if (!registry.table || !keep[0]) die("constructors did not run");
  say("done\n");
  return 0;
}
