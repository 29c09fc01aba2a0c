// /proc/PID/maps text: parse_maps, and the module map built from what it returns.
#include "fuzz_common.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/symbols/module_map.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t bad = 0;
  auto maps = ptmem::proc::parse_maps(ptmem::fuzz::as_text(data, size), &bad);
  for (const auto& m : maps) PTMEM_FUZZ_CHECK(m.start <= m.end);
  PTMEM_FUZZ_CHECK(maps.size() + bad <= size);
  // ModuleMap groups what parse_maps returns; pid 0: paths are used as they are (it stats
  // nothing and opens no file).
  ptmem::symbols::ModuleMap modules;
  modules.update(maps);
  for (const auto& m : maps) modules.find(m.start);
  modules.update({});  // everything unloaded
  return 0;
}
