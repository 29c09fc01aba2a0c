// /proc/PID/auxv: binary pairs of 64-bit words.
#include "fuzz_common.hpp"
#include "ptmem/proc/maps.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)ptmem::proc::parse_auxv(ptmem::fuzz::as_text(data, size));
  return 0;
}
