// /proc/PID/status: the tracer's parse_status and the sampler's parse_status_memory.
#include "fuzz_common.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/proc/status_memory.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = ptmem::fuzz::as_text(data, size);
  auto status = ptmem::proc::parse_status(text);
  if (status) PTMEM_FUZZ_CHECK(status->name.size() <= size);
  (void)ptmem::proc::parse_status_memory(text);
  return 0;
}
