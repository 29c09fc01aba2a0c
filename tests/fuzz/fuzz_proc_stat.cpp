// /proc/PID/stat and /proc/PID/task/TID/stat.
#include "fuzz_common.hpp"
#include "ptmem/proc/stat.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto stat = ptmem::proc::parse_stat(ptmem::fuzz::as_text(data, size));
  if (stat) PTMEM_FUZZ_CHECK(stat->comm.size() + 2 <= size);
  return 0;
}
