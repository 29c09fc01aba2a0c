#include "ptmem/proc/cmdline.hpp"

#include "ptmem/proc/maps.hpp"

namespace ptmem::proc {

std::string parse_cmdline(std::string_view bytes) {
  while (!bytes.empty() && bytes.back() == '\0') bytes.remove_suffix(1);
  std::string out;
  out.reserve(bytes.size());
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\0') out.push_back(' ');
    else if (u < 0x20 || u == 0x7f) out.push_back('?');
    else out.push_back(c);
  }
  return out;
}

std::optional<std::string> read_cmdline(pid_t pid, const std::string& root, size_t max_bytes) {
  auto bytes = read_file(root + "/" + std::to_string(pid) + "/cmdline", max_bytes);
  if (!bytes) return std::nullopt;
  return parse_cmdline(*bytes);
}

}  // namespace ptmem::proc
