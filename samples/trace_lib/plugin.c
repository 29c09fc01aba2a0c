/* trace_plugin.so, dlopen'ed by trace_dlopen and dlclose'd after it leaked: its call sites
 * must still resolve to this file in the report, although the module is gone by then.
 *
 * Leaked: plugin 1 block per plugin_leak() call, of the size asked. */
#include <stdlib.h>

static void* volatile plugin_keep[8];
static int plugin_count;

__attribute__((noinline)) static void* plugin_alloc(size_t n) {
  return malloc(n);  // @leak plugin
}

void plugin_leak(size_t n) {
  if (plugin_count < 8) plugin_keep[plugin_count++] = plugin_alloc(n);  // @frame plugin-caller
}
