#include "ptmem/proc/net.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <netinet/in.h>

namespace ptmem::proc {
namespace {

std::string_view next_field(std::string_view line, size_t& pos) {
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  size_t start = pos;
  while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') ++pos;
  return line.substr(start, pos - start);
}

template <typename T>
bool parse_num(std::string_view s, T& out, int base) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

// "0100007F:1F90" (IPv4) or 32 hex digits ":" port (IPv6), as the kernel prints them: each
// 32-bit word of the address in host order, the port in host order.  Returns "" for the
// unspecified address with port 0 (no peer) and false for malformed text.
bool decode_inet(std::string_view s, bool v6, std::string& out) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view addr = s.substr(0, colon);
  uint32_t port = 0;
  if (!parse_num(s.substr(colon + 1), port, 16) || port > 0xffff) return false;
  size_t words = v6 ? 4 : 1;
  if (addr.size() != words * 8) return false;
  unsigned char bytes[16] = {};
  bool zero = true;
  for (size_t i = 0; i < words; ++i) {
    uint32_t w = 0;
    if (!parse_num(addr.substr(i * 8, 8), w, 16)) return false;
    std::memcpy(bytes + i * 4, &w, 4);  // host order back to the bytes the kernel held
    zero = zero && w == 0;
  }
  if (zero && port == 0) {
    out.clear();
    return true;
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text)) return false;
  out = v6 ? "[" + std::string(text) + "]:" + std::to_string(port)
           : std::string(text) + ":" + std::to_string(port);
  return true;
}

const char* tcp_state(uint32_t st) {
  static const char* const names[] = {"",          "ESTABLISHED", "SYN_SENT",   "SYN_RECV",
                                      "FIN_WAIT1", "FIN_WAIT2",   "TIME_WAIT",  "CLOSE",
                                      "CLOSE_WAIT", "LAST_ACK",   "LISTEN",     "CLOSING",
                                      "NEW_SYN_RECV"};
  return st < std::size(names) ? names[st] : "";
}

// tcp/udp lines: "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ..."
bool parse_inet_line(std::string_view line, NetFile file, SocketInfo& info) {
  bool v6 = file == NetFile::Tcp6 || file == NetFile::Udp6;
  bool tcp = file == NetFile::Tcp || file == NetFile::Tcp6;
  size_t pos = 0;
  std::string_view f[10];
  for (auto& x : f) x = next_field(line, pos);
  if (f[9].empty() || f[0].back() != ':') return false;
  uint32_t st = 0;
  if (!parse_num(f[3], st, 16)) return false;
  if (!parse_num(f[9], info.inode, 10) || info.inode == 0) return false;
  if (!decode_inet(f[1], v6, info.local) || !decode_inet(f[2], v6, info.remote)) return false;
  info.family = v6 ? "inet6" : "inet";
  info.protocol = std::string(tcp ? "TCP" : "UDP") + (v6 ? "v6" : "");
  info.state = tcp ? tcp_state(st) : "";
  return true;
}

// unix lines: "Num RefCount Protocol Flags Type St Inode [Path]"
bool parse_unix_line(std::string_view line, SocketInfo& info) {
  size_t pos = 0;
  std::string_view f[7];
  for (auto& x : f) x = next_field(line, pos);
  if (f[6].empty() || f[0].back() != ':') return false;
  uint32_t flags = 0, type = 0, st = 0;
  if (!parse_num(f[3], flags, 16) || !parse_num(f[4], type, 16) || !parse_num(f[5], st, 16))
    return false;
  if (!parse_num(f[6], info.inode, 10) || info.inode == 0) return false;
  while (pos < line.size() && line[pos] == ' ') ++pos;
  info.local = std::string(line.substr(pos));
  info.family = "unix";
  info.protocol = "UNIX";
  switch (type) {
    case 1: info.type = "stream"; break;
    case 2: info.type = "dgram"; break;
    case 5: info.type = "seqpacket"; break;
    default: info.type = "";
  }
  constexpr uint32_t kAcceptCon = 0x10000;  // __SO_ACCEPTCON: listen() was called
  info.state = (flags & kAcceptCon) ? "LISTEN" : st == 3 ? "CONNECTED" : "UNCONNECTED";
  return true;
}

}  // namespace

std::string SocketInfo::describe() const {
  std::string out = protocol.empty() ? "socket" : protocol;
  if (!type.empty()) out += " " + type;
  if (!local.empty()) out += " " + local;
  if (!remote.empty()) out += " -> " + remote;
  return out;
}

size_t SocketTable::parse(NetFile file, std::string_view text) {
  // The column-title line fails to parse like any malformed line, so it needs no special
  // case (and headerless text works too).
  size_t parsed = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    SocketInfo info;
    bool ok = file == NetFile::Unix ? parse_unix_line(line, info) : parse_inet_line(line, file, info);
    if (!ok) continue;
    ++parsed;
    by_inode_.insert_or_assign(info.inode, std::move(info));
  }
  return parsed;
}

const SocketInfo* SocketTable::find(uint64_t inode) const {
  auto it = by_inode_.find(inode);
  return it == by_inode_.end() ? nullptr : &it->second;
}

SocketTable read_socket_table(pid_t pid, const std::string& root) {
  static constexpr std::pair<NetFile, const char*> files[] = {
      {NetFile::Unix, "unix"}, {NetFile::Tcp, "tcp"},   {NetFile::Tcp6, "tcp6"},
      {NetFile::Udp, "udp"},   {NetFile::Udp6, "udp6"},
  };
  SocketTable table;
  std::string dir = root + "/" + std::to_string(pid) + "/net/";
  for (auto [file, name] : files)
    if (auto text = read_file(dir + name, 64 << 20)) table.parse(file, *text);
  return table;
}

}  // namespace ptmem::proc
