// /proc/PID/net/{unix,tcp,tcp6,udp,udp6}.  The first byte picks the file.
#include "fuzz_common.hpp"
#include "ptmem/proc/net.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr ptmem::proc::NetFile kFiles[] = {
      ptmem::proc::NetFile::Tcp, ptmem::proc::NetFile::Tcp6, ptmem::proc::NetFile::Udp,
      ptmem::proc::NetFile::Udp6, ptmem::proc::NetFile::Unix};
  auto file = kFiles[data[0] % 5];
  ptmem::proc::SocketTable table;
  size_t n = table.parse(file, ptmem::fuzz::as_text(data + 1, size - 1));
  PTMEM_FUZZ_CHECK(table.size() <= n);
  for (uint64_t inode = 0; inode < 4; ++inode)
    if (const auto* s = table.find(inode)) (void)s->describe();
  return 0;
}
