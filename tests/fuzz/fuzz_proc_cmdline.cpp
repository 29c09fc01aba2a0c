// /proc/PID/cmdline: the output must never hold a control character.
#include "fuzz_common.hpp"
#include "ptmem/proc/cmdline.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto out = ptmem::proc::parse_cmdline(ptmem::fuzz::as_text(data, size));
  PTMEM_FUZZ_CHECK(out.size() <= size);
  for (char c : out) PTMEM_FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  return 0;
}
