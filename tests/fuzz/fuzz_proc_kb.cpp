// "Key: N kB" files: /proc/meminfo, /proc/PID/smaps_rollup, the kb_lines scanner itself,
// and /proc/loadavg (read for the same header).
#include "fuzz_common.hpp"
#include "ptmem/proc/kb_lines.hpp"
#include "ptmem/proc/meminfo.hpp"
#include "ptmem/proc/smaps_rollup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = ptmem::fuzz::as_text(data, size);
  size_t lines = 0;
  ptmem::proc::for_each_key_line(text, [&](std::string_view key, std::string_view value) {
    PTMEM_FUZZ_CHECK(!key.empty() && key.find('\n') == std::string_view::npos &&
                     value.find('\n') == std::string_view::npos);
    ++lines;
  });
  PTMEM_FUZZ_CHECK(lines <= size);
  ptmem::proc::for_each_kb_line(text, [](std::string_view, uint64_t) {});
  (void)ptmem::proc::parse_kb_value(text);
  auto rollup = ptmem::proc::parse_smaps_rollup(text);
  (void)rollup.uss_kb();
  auto mem = ptmem::proc::parse_meminfo(text);
  if (auto used = mem.swap_used_kb()) PTMEM_FUZZ_CHECK(*used <= *mem.swap_total_kb);
  (void)ptmem::proc::parse_loadavg_threads(text);
  return 0;
}
