#include "ptmem/proc/fds.hpp"
#include "ptmem/proc/kb_lines.hpp"

#include <algorithm>
#include <charconv>
#include <dirent.h>
#include <cstring>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace ptmem::proc {
namespace {

template <typename T>
bool parse_num(std::string_view s, T& out, int base) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The kernel's x86-64 open flag values.  Spelled out rather than taken from <fcntl.h>
// because glibc defines O_LARGEFILE as 0 on 64-bit while the kernel reports 0100000.
constexpr uint32_t kODirectory = 0200000;
constexpr uint32_t kOCloexec = 02000000;
struct FlagName {
  uint32_t mask;
  const char* name;
};
// Multi-bit flags first, so O_SYNC is not shown as O_DSYNC|__O_SYNC.
constexpr FlagName kFlagNames[] = {
    {04010000, "O_SYNC"},     {020200000, "O_TMPFILE"},  {0100, "O_CREAT"},
    {0200, "O_EXCL"},         {0400, "O_NOCTTY"},        {01000, "O_TRUNC"},
    {02000, "O_APPEND"},      {04000, "O_NONBLOCK"},     {010000, "O_DSYNC"},
    {020000, "O_ASYNC"},      {040000, "O_DIRECT"},      {0100000, "O_LARGEFILE"},
    {kODirectory, "O_DIRECTORY"}, {0400000, "O_NOFOLLOW"}, {01000000, "O_NOATIME"},
    {kOCloexec, "O_CLOEXEC"}, {010000000, "O_PATH"},
};

// "socket:[1234]" -> 1234 for a given "socket:" prefix; 0 if the text does not match.
uint64_t bracket_inode(std::string_view target, std::string_view prefix) {
  if (!starts_with(target, prefix)) return 0;
  auto rest = target.substr(prefix.size());
  if (rest.size() < 3 || rest.front() != '[' || rest.back() != ']') return 0;
  uint64_t ino = 0;
  return parse_num(rest.substr(1, rest.size() - 2), ino, 10) ? ino : 0;
}

// What the kernel's protocol name tells of a socket /proc/PID/net does not list.
SocketInfo socket_from_protocol(std::string_view proto, uint64_t inode) {
  SocketInfo s;
  s.inode = inode;
  if (starts_with(proto, "UNIX")) {
    // "UNIX-STREAM" (stream sockets on recent kernels), "UNIX" (dgram, seqpacket, older)
    s.family = "unix";
    s.protocol = "UNIX";
    if (proto == "UNIX-STREAM") s.type = "stream";
    return s;
  }
  s.protocol = std::string(proto);
  if (proto.size() > 2 && proto.substr(proto.size() - 2) == "v6") s.family = "inet6";
  else if (proto == "TCP" || proto == "UDP" || proto == "RAW" || proto == "UDP-Lite" ||
           proto == "PING" || proto == "SCTP" || proto == "MPTCP")
    s.family = "inet";
  else if (proto == "NETLINK") s.family = "netlink";
  else if (proto == "PACKET") s.family = "packet";
  return s;
}

}  // namespace

const char* to_string(FdKind kind) {
  switch (kind) {
    case FdKind::File: return "file";
    case FdKind::Directory: return "directory";
    case FdKind::Socket: return "socket";
    case FdKind::Pipe: return "pipe";
    case FdKind::Eventfd: return "eventfd";
    case FdKind::Timerfd: return "timerfd";
    case FdKind::Signalfd: return "signalfd";
    case FdKind::Epoll: return "epoll";
    case FdKind::Inotify: return "inotify";
    case FdKind::Memfd: return "memfd";
    case FdKind::Other: return "other";
  }
  return "other";
}

std::string decode_open_flags(uint32_t flags) {
  static const char* const access[] = {"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"};
  std::string out = access[flags & 3];
  uint32_t rest = flags & ~3u;
  for (const auto& f : kFlagNames) {
    if ((rest & f.mask) == f.mask) {
      out += '|';
      out += f.name;
      rest &= ~f.mask;
    }
  }
  if (rest) {
    char buf[16];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, rest, 8);
    out += "|0";
    out.append(buf, p);
  }
  return out;
}

FdInfo parse_fdinfo(std::string_view text) {
  FdInfo info;
  for_each_key_line(text, [&](std::string_view key, std::string_view raw) {
    auto value = trim(raw);
    if (key == "flags") {
      uint32_t f = 0;
      if (parse_num(value, f, 8)) info.flags = f;
    } else if (key == "pos") {
      parse_num(value, info.pos, 10);
    } else if (key == "ino") {
      parse_num(value, info.inode, 10);
    }
  });
  return info;
}

FdKind classify(std::string_view target, std::optional<uint32_t> mode,
                std::optional<uint32_t> flags) {
  if (starts_with(target, "socket:[")) return FdKind::Socket;
  if (starts_with(target, "pipe:[")) return FdKind::Pipe;
  if (starts_with(target, "anon_inode:")) {
    auto name = target.substr(11);
    if (name == "[eventfd]") return FdKind::Eventfd;
    if (name == "[timerfd]") return FdKind::Timerfd;
    if (name == "[signalfd]") return FdKind::Signalfd;
    if (name == "[eventpoll]") return FdKind::Epoll;
    if (name == "inotify" || name == "[inotify]") return FdKind::Inotify;
    return FdKind::Other;
  }
  // memfd_create names its file "memfd:NAME"; the link shows "/memfd:NAME (deleted)".
  if (starts_with(target, "/memfd:")) return FdKind::Memfd;
  if (!starts_with(target, "/")) return FdKind::Other;
  if (mode) {
    if (S_ISDIR(*mode)) return FdKind::Directory;
    if (S_ISFIFO(*mode)) return FdKind::Pipe;
    if (S_ISSOCK(*mode)) return FdKind::Socket;
    return FdKind::File;
  }
  return flags && (*flags & kODirectory) ? FdKind::Directory : FdKind::File;
}

std::string FdEntry::flags_text() const { return flags ? decode_open_flags(*flags) : ""; }

std::string FdEntry::description() const {
  std::string out = to_string(kind);
  std::string what = socket ? socket->describe() : target;
  if (!what.empty()) out += ", " + what;
  return out;
}

FdEntry interpret_fd(const RawFd& raw, const SocketTable* sockets) {
  FdEntry e;
  e.fd = raw.fd;
  e.target = raw.target;
  FdInfo info = parse_fdinfo(raw.fdinfo);
  e.flags = info.flags;
  e.pos = info.pos;
  e.cloexec = info.flags && (*info.flags & kOCloexec);
  e.kind = classify(raw.target, raw.mode, info.flags);
  e.inode = info.inode;
  if (e.inode == 0) e.inode = bracket_inode(raw.target, "socket:");
  if (e.inode == 0) e.inode = bracket_inode(raw.target, "pipe:");
  if (e.kind == FdKind::Socket && sockets) {
    // "socket:[N]" names the socket inode even where fdinfo has no "ino:".
    uint64_t ino = bracket_inode(raw.target, "socket:");
    if (ino == 0) ino = e.inode;
    if (const SocketInfo* s = sockets->find(ino)) e.socket = *s;
  }
  if (e.kind == FdKind::Socket && !e.socket && !raw.socket_protocol.empty())
    e.socket = socket_from_protocol(raw.socket_protocol, e.inode);
  return e;
}

std::vector<FdEntry> read_fds(pid_t pid, const std::string& root, bool* readable) {
  std::string base = root + "/" + std::to_string(pid);
  std::string fd_dir = base + "/fd/";
  // Numbers first, then the directory is closed: when |pid| is ptmem itself, the listing's
  // own fd must not be reported (its link is gone by the time it is read).
  std::vector<int> numbers;
  DIR* dir = ::opendir(fd_dir.c_str());
  if (readable) *readable = dir != nullptr;
  if (dir) {
    while (dirent* d = ::readdir(dir)) {
      int fd = -1;
      std::string_view name = d->d_name;
      if (parse_num(name, fd, 10) && fd >= 0) numbers.push_back(fd);
    }
    ::closedir(dir);
  }
  std::sort(numbers.begin(), numbers.end());

  std::vector<RawFd> raws;
  raws.reserve(numbers.size());
  for (int fd : numbers) {
    RawFd raw;
    raw.fd = fd;
    std::string link = fd_dir + std::to_string(fd);
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    if (n < 0) continue;  // closed meanwhile
    raw.target.assign(buf, static_cast<size_t>(n));
    struct stat st;
    if (::stat(link.c_str(), &st) == 0) raw.mode = st.st_mode;
    if (auto text = read_file(base + "/fdinfo/" + std::to_string(fd), 1 << 20)) raw.fdinfo = std::move(*text);
    if (starts_with(raw.target, "socket:[")) {
      char proto[64];
      ssize_t len = ::getxattr(link.c_str(), "system.sockprotoname", proto, sizeof proto);
      if (len > 0) raw.socket_protocol.assign(proto, strnlen(proto, static_cast<size_t>(len)));
    }
    raws.push_back(std::move(raw));
  }

  std::vector<FdEntry> out;
  out.reserve(raws.size());
  bool any_socket = false;
  for (const RawFd& raw : raws) {
    out.push_back(interpret_fd(raw, nullptr));
    any_socket = any_socket || out.back().kind == FdKind::Socket;
  }
  if (any_socket) {
    SocketTable sockets = read_socket_table(pid, root);
    for (size_t i = 0; i < out.size(); ++i)
      if (out[i].kind == FdKind::Socket) out[i] = interpret_fd(raws[i], &sockets);
  }
  return out;
}

}  // namespace ptmem::proc
