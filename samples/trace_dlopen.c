/* dlopen()s trace_plugin.so (next to this executable), calls its plugin_leak twice (64 and
 * 36 bytes, leaked inside the plugin), then dlclose()s it: the module is unmapped before
 * the report, its leak site must still show as plugin.c.
 *
 * Leaked: plugin 2 blocks, 64 + 36 bytes (site in samples/trace_lib/plugin.c), called
 * from @frame dlopen-call and @frame dlopen-call2.  glibc keeps one block of dlopen's after
 * dlclose (its _dl_find_object table: 2304 bytes with this program's set of objects), whose
 * first program frame is the dlopen line (@leak dlopen-internal). */
#include <dlfcn.h>
#include <limits.h>

#include "trace_common.h"

int main(void) {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
  if (n <= 0) die("readlink");
  path[n] = '\0';
  char* slash = strrchr(path, '/');
  strcpy(slash + 1, "trace_plugin.so");

  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);  // @leak dlopen-internal
  if (!handle) {
    say("FAILED dlopen %s\n", dlerror());
    return 99;
  }
  void (*leak)(size_t) = (void (*)(size_t))dlsym(handle, "plugin_leak");
  if (!leak) die("dlsym");
  leak(64);  // @frame dlopen-call
  leak(36);  // @frame dlopen-call2
  if (dlclose(handle) != 0) die("dlclose");
  say("done\n");
  return 0;
}
