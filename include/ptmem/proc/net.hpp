// Sockets of a process's network namespace, from /proc/PID/net/{unix,tcp,tcp6,udp,udp6},
// indexed by inode so a "socket:[N]" fd can be named with its family and addresses.
// The text is untrusted: malformed lines are skipped, never trusted for lengths.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

#include <absl/container/flat_hash_map.h>

#include "ptmem/proc/maps.hpp"

namespace ptmem::proc {

struct SocketInfo {
  uint64_t inode = 0;
  std::string family;    ///< "unix", "inet", "inet6"
  std::string protocol;  ///< "TCP", "UDP", "TCPv6", "UDPv6", "UNIX"
  std::string type;      ///< unix: "stream", "dgram", "seqpacket"; "" for inet
  std::string local;     ///< "127.0.0.1:8080", "[::1]:53", a unix path, "@abstract"; "" if none
  std::string remote;    ///< peer address; "" when not connected (or unix, where /proc omits it)
  std::string state;     ///< TCP: "LISTEN", "ESTABLISHED", ...; "" otherwise

  /// "TCP 127.0.0.1:8080", "TCP 127.0.0.1:41000 -> 127.0.0.1:8080", "UNIX stream /run/x.sock".
  std::string describe() const;
};

/// One of the files this table understands.
enum class NetFile { Tcp, Tcp6, Udp, Udp6, Unix };

class SocketTable {
 public:
  /// Adds the sockets listed in |text| (the contents of /proc/PID/net/<file>); returns how
  /// many lines were understood.  The header line and malformed lines are skipped.
  size_t parse(NetFile file, std::string_view text);
  const SocketInfo* find(uint64_t inode) const;
  size_t size() const { return by_inode_.size(); }

 private:
  absl::flat_hash_map<uint64_t, SocketInfo> by_inode_;
};

/// Reads and parses every NetFile of |pid| (missing files are skipped: IPv6 may be off).
SocketTable read_socket_table(pid_t pid, const std::string& root = kDefaultRoot);

}  // namespace ptmem::proc
