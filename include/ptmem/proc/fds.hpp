// Open file descriptors of a process, from /proc/PID/fd (link targets) and /proc/PID/fdinfo
// (flags, position), with sockets named from /proc/PID/net.  The interpretation is split
// from the I/O (RawFd -> FdEntry) so tests can inject targets, fdinfo and net text.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "ptmem/proc/maps.hpp"
#include "ptmem/proc/net.hpp"

namespace ptmem::proc {

enum class FdKind : uint8_t {
  File, Directory, Socket, Pipe, Eventfd, Timerfd, Signalfd, Epoll, Inotify, Memfd, Other,
};
const char* to_string(FdKind kind);  ///< "file", "directory", "socket", ... "other"

/// fdinfo's "flags:" decoded: "O_RDWR|O_NONBLOCK|O_CLOEXEC"; bits without a name are
/// appended in octal ("O_RDONLY|040000000").
std::string decode_open_flags(uint32_t flags);

struct FdInfo {
  std::optional<uint32_t> flags;  ///< octal "flags:" line
  uint64_t pos = 0;
  uint64_t inode = 0;             ///< "ino:" (kernels >= 5.14)
};
FdInfo parse_fdinfo(std::string_view text);

/// What /proc says about one fd before interpretation.
struct RawFd {
  int fd = -1;
  std::string target;           ///< readlink of /proc/PID/fd/N
  std::string fdinfo;           ///< contents of /proc/PID/fdinfo/N ("" if unreadable)
  std::optional<uint32_t> mode; ///< st_mode of what the link points to (stat), if known
  /// Sockets: the "system.sockprotoname" attribute ("TCP", "UNIX-STREAM", "NETLINK"...),
  /// which names the protocol of sockets /proc/PID/net does not list (unbound, netlink).
  std::string socket_protocol;
};

/// The kind an fd's link target (and st_mode, when known) designates.  |flags| (fdinfo)
/// breaks the tie for a path whose mode is unknown: O_DIRECTORY means a directory.
FdKind classify(std::string_view target, std::optional<uint32_t> mode,
                std::optional<uint32_t> flags = std::nullopt);

struct FdEntry {
  int fd = -1;
  std::string target;               ///< "/etc/passwd", "socket:[1234]", "pipe:[99]", "anon_inode:[eventfd]"
  FdKind kind = FdKind::Other;
  std::optional<uint32_t> flags;    ///< fdinfo flags (octal in /proc), O_CLOEXEC included
  uint64_t pos = 0;
  bool cloexec = false;
  uint64_t inode = 0;               ///< from fdinfo, else from "socket:[N]"/"pipe:[N]"
  std::optional<SocketInfo> socket; ///< sockets found in /proc/PID/net

  std::string flags_text() const;   ///< decode_open_flags(*flags), "" if unknown
  /// What the report prints in parentheses: "socket, TCP 127.0.0.1:8080", "file, /etc/passwd",
  /// "pipe, pipe:[1234]".
  std::string description() const;
};

/// Interprets one fd.  A socket gets its SocketInfo from |sockets| (may be null), else a
/// partial one from raw.socket_protocol when that is known.
FdEntry interpret_fd(const RawFd& raw, const SocketTable* sockets);

/// Every open fd of |pid|, ascending.  Empty if the process is gone or not readable; an fd
/// closed while the directory is read is skipped.  /proc/PID/net is read (once) only when
/// at least one fd is a socket.  |readable| (when given) tells an empty result from a
/// process whose fd directory could not be listed (gone, or no permission): reconcile a
/// table only with a readable listing.
std::vector<FdEntry> read_fds(pid_t pid, const std::string& root = kDefaultRoot,
                              bool* readable = nullptr);

}  // namespace ptmem::proc
