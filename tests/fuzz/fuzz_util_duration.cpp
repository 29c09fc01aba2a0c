// Durations from the command line (--duration, --interval...).
#include "fuzz_common.hpp"
#include "ptmem/util/duration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string error;
  auto d = ptmem::util::parse_duration(ptmem::fuzz::as_text(data, size), &error);
  if (d) {
    PTMEM_FUZZ_CHECK(d->count() > 0);
    auto text = ptmem::util::format_duration(*d);
    auto again = ptmem::util::parse_duration(text);
    PTMEM_FUZZ_CHECK(again && *again == *d);  // formatting is exact
  }
  return 0;
}
