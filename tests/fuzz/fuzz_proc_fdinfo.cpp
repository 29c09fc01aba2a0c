// /proc/PID/fdinfo/N and the fd interpretation around it.  Input: the link target, a NUL,
// the socket protocol attribute, a NUL, then the fdinfo text.
#include "fuzz_common.hpp"
#include "ptmem/proc/fds.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = ptmem::fuzz::as_text(data, size);
  ptmem::proc::RawFd raw;
  raw.fd = 3;
  auto cut = text.find('\0');
  raw.target = std::string(text.substr(0, cut));
  text.remove_prefix(cut == std::string_view::npos ? text.size() : cut + 1);
  cut = text.find('\0');
  raw.socket_protocol = std::string(text.substr(0, cut));
  text.remove_prefix(cut == std::string_view::npos ? text.size() : cut + 1);
  raw.fdinfo = std::string(text);
  auto info = ptmem::proc::parse_fdinfo(raw.fdinfo);
  if (info.flags) (void)ptmem::proc::decode_open_flags(*info.flags);
  ptmem::proc::SocketTable sockets;
  sockets.parse(ptmem::proc::NetFile::Unix, raw.fdinfo);  // whatever it makes of it
  const ptmem::proc::SocketTable* tables[] = {nullptr, &sockets};
  for (const ptmem::proc::SocketTable* table : tables) {
    auto e = ptmem::proc::interpret_fd(raw, table);
    (void)e.description();
    (void)e.flags_text();
    (void)ptmem::proc::to_string(e.kind);
  }
  raw.mode = size > 0 ? uint32_t{data[0]} << 12 : 0;  // the file type bits
  (void)ptmem::proc::interpret_fd(raw, nullptr);
  return 0;
}
