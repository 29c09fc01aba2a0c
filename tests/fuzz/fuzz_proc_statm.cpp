// /proc/PID/statm.
#include "fuzz_common.hpp"
#include "ptmem/proc/statm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)ptmem::proc::parse_statm(ptmem::fuzz::as_text(data, size));
  return 0;
}
