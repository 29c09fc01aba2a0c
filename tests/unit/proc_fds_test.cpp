#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <climits>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <signal.h>
#include <sstream>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ptmem/proc/fds.hpp"
#include "../support/process.hpp"

using namespace ptmem::proc;

namespace {

// Tests run from tests/ (make unit); also allow the repository root.
std::string fixture_root() {
  struct stat st;
  if (::stat("fixtures/proc_fds", &st) == 0) return "fixtures/proc_fds";
  return "tests/fixtures/proc_fds";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// links.txt: "FD<TAB>TYPE<TAB>TARGET" stands in for the /proc/PID/fd symlinks.
std::vector<FdEntry> fixture_fds() {
  std::string root = fixture_root();
  SocketTable sockets = read_socket_table(4242, root);
  std::vector<FdEntry> out;
  std::istringstream links(slurp(root + "/links.txt"));
  std::string line;
  while (std::getline(links, line)) {
    auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    REQUIRE(t2 != std::string::npos);
    RawFd raw;
    raw.fd = std::stoi(line.substr(0, t1));
    std::string type = line.substr(t1 + 1, t2 - t1 - 1);
    raw.target = line.substr(t2 + 1);
    if (type == "dir") raw.mode = S_IFDIR | 0755;
    else if (type == "reg") raw.mode = S_IFREG | 0644;
    else if (type == "chr") raw.mode = S_IFCHR | 0666;
    else if (type == "fifo") raw.mode = S_IFIFO | 0600;
    raw.fdinfo = slurp(root + "/4242/fdinfo/" + std::to_string(raw.fd));
    out.push_back(interpret_fd(raw, &sockets));
  }
  return out;
}

const FdEntry& by_fd(const std::vector<FdEntry>& v, int fd) {
  for (const FdEntry& e : v)
    if (e.fd == fd) return e;
  FAIL("fd " << fd << " not found");
  static FdEntry none;
  return none;
}

}  // namespace

TEST_CASE("proc net tables parse tcp, tcp6, udp and unix and skip malformed lines") {
  std::string root = fixture_root();
  SocketTable t;
  CHECK(t.parse(NetFile::Tcp, slurp(root + "/4242/net/tcp")) == 2);
  CHECK(t.parse(NetFile::Tcp6, slurp(root + "/4242/net/tcp6")) == 1);
  CHECK(t.parse(NetFile::Udp, slurp(root + "/4242/net/udp")) == 1);
  CHECK(t.parse(NetFile::Unix, slurp(root + "/4242/net/unix")) == 3);
  CHECK(t.parse(NetFile::Tcp, "") == 0);
  CHECK(t.parse(NetFile::Unix, "\n\n:\n0: 1 2 3\n") == 0);
  CHECK(t.size() == 7);
  // read_socket_table reads the same files (udp6 is absent: skipped).
  CHECK(read_socket_table(4242, root).size() == 7);
  CHECK(read_socket_table(4243, root).size() == 0);

  const SocketInfo* s = t.find(1002);
  REQUIRE(s);
  CHECK(s->family == "inet");
  CHECK(s->protocol == "TCP");
  CHECK(s->local == "127.0.0.1:41000");
  CHECK(s->remote == "127.0.0.1:8080");
  CHECK(s->state == "ESTABLISHED");
  CHECK_FALSE(t.find(3001));
  CHECK_FALSE(t.find(3002));
  CHECK_FALSE(t.find(3003));
}

TEST_CASE("proc fds: kinds, targets, flags and sockets from fixture text") {
  auto v = fixture_fds();
  REQUIRE(v.size() == 22);

  CHECK(by_fd(v, 3).kind == FdKind::Socket);
  CHECK(by_fd(v, 3).description() == "socket, TCP 127.0.0.1:8080");
  CHECK(by_fd(v, 3).socket->state == "LISTEN");
  CHECK(by_fd(v, 3).flags_text() == "O_RDWR|O_CLOEXEC");
  CHECK(by_fd(v, 3).cloexec);
  CHECK(by_fd(v, 3).inode == 1001);
  CHECK(by_fd(v, 4).description() == "socket, TCP 127.0.0.1:41000 -> 127.0.0.1:8080");
  CHECK(by_fd(v, 4).flags_text() == "O_RDWR|O_NONBLOCK|O_CLOEXEC");
  CHECK(by_fd(v, 5).description() == "socket, TCPv6 [::1]:443");
  CHECK(by_fd(v, 5).socket->family == "inet6");
  CHECK(by_fd(v, 6).description() == "socket, UDP 0.0.0.0:53");
  CHECK(by_fd(v, 6).socket->state == "");
  CHECK(by_fd(v, 7).description() == "socket, UNIX stream /run/app.sock");
  CHECK(by_fd(v, 7).socket->state == "LISTEN");
  CHECK(by_fd(v, 8).description() == "socket, UNIX stream");
  CHECK(by_fd(v, 8).socket->state == "CONNECTED");
  CHECK(by_fd(v, 9).description() == "socket, UNIX dgram @ptmem-test");
  CHECK(by_fd(v, 9).flags_text() == "O_RDWR");
  CHECK_FALSE(by_fd(v, 9).cloexec);
  // a socket /proc/net does not list (another family)
  CHECK(by_fd(v, 10).kind == FdKind::Socket);
  CHECK_FALSE(by_fd(v, 10).socket);
  CHECK(by_fd(v, 10).description() == "socket, socket:[5555]");

  CHECK(by_fd(v, 11).kind == FdKind::Pipe);
  CHECK(by_fd(v, 11).inode == 2001);
  CHECK(by_fd(v, 11).flags_text() == "O_RDONLY");
  CHECK(by_fd(v, 11).description() == "pipe, pipe:[2001]");

  CHECK(by_fd(v, 12).kind == FdKind::File);
  CHECK(by_fd(v, 12).target == "/var/log/app.log");
  CHECK(by_fd(v, 12).pos == 1234);
  CHECK(by_fd(v, 12).flags_text() == "O_WRONLY|O_APPEND|O_LARGEFILE|O_CLOEXEC");
  CHECK(by_fd(v, 12).description() == "file, /var/log/app.log");
  CHECK(by_fd(v, 13).kind == FdKind::Directory);
  CHECK(by_fd(v, 13).flags_text() == "O_RDONLY|O_NONBLOCK|O_LARGEFILE|O_DIRECTORY|O_CLOEXEC");
  // mode unknown: O_DIRECTORY in fdinfo tells a directory; no "ino:" line
  CHECK(by_fd(v, 14).kind == FdKind::Directory);
  CHECK(by_fd(v, 14).inode == 0);

  CHECK(by_fd(v, 15).kind == FdKind::Eventfd);
  CHECK(by_fd(v, 16).kind == FdKind::Timerfd);
  CHECK(by_fd(v, 17).kind == FdKind::Signalfd);
  CHECK(by_fd(v, 18).kind == FdKind::Epoll);
  CHECK(by_fd(v, 19).kind == FdKind::Inotify);
  CHECK(by_fd(v, 20).kind == FdKind::Memfd);
  CHECK(by_fd(v, 20).description() == "memfd, /memfd:cache (deleted)");
  CHECK(by_fd(v, 21).kind == FdKind::Other);
  CHECK(by_fd(v, 22).kind == FdKind::File);
  CHECK(by_fd(v, 22).flags_text() == "O_WRONLY|O_LARGEFILE");
  CHECK(by_fd(v, 23).kind == FdKind::Pipe);  // a named FIFO
  // malformed fdinfo: nothing invented
  CHECK(by_fd(v, 24).kind == FdKind::Pipe);
  CHECK(by_fd(v, 24).inode == 0);
  CHECK_FALSE(by_fd(v, 24).flags);
  CHECK(by_fd(v, 24).pos == 0);
  CHECK(by_fd(v, 24).flags_text() == "");
}

TEST_CASE("sockets /proc/net does not list are named from their protocol") {
  SocketTable empty;
  auto sock = [&](const char* proto) {
    return interpret_fd(RawFd{5, "socket:[7777]", "pos:\t0\nflags:\t02\n", std::nullopt, proto}, &empty);
  };
  FdEntry e = sock("TCP");
  REQUIRE(e.socket);
  CHECK(e.socket->family == "inet");
  CHECK(e.socket->inode == 7777);
  CHECK(e.description() == "socket, TCP");
  CHECK(sock("TCPv6").socket->family == "inet6");
  CHECK(sock("UNIX-STREAM").description() == "socket, UNIX stream");
  CHECK(sock("UNIX").description() == "socket, UNIX");
  CHECK(sock("NETLINK").socket->family == "netlink");
  CHECK(sock("NETLINK").description() == "socket, NETLINK");
  CHECK(sock("WEIRD").socket->family == "");
  CHECK_FALSE(sock("").socket);
  // The /proc/net entry wins over the protocol name.
  SocketTable t;
  t.parse(NetFile::Unix, "0000000000000000: 00000002 00000000 00010000 0001 01  7777 /run/x\n");
  CHECK(interpret_fd(RawFd{5, "socket:[7777]", "", std::nullopt, "UNIX-STREAM"}, &t).description() ==
        "socket, UNIX stream /run/x");
}

TEST_CASE("open flags decoding") {
  CHECK(decode_open_flags(0) == "O_RDONLY");
  CHECK(decode_open_flags(02) == "O_RDWR");
  CHECK(decode_open_flags(04010001) == "O_WRONLY|O_SYNC");
  CHECK(decode_open_flags(010001) == "O_WRONLY|O_DSYNC");
  CHECK(decode_open_flags(020200002) == "O_RDWR|O_TMPFILE");
  CHECK(decode_open_flags(010000000) == "O_RDONLY|O_PATH");
  CHECK(decode_open_flags(040000000 | 02) == "O_RDWR|040000000");
  CHECK(decode_open_flags(03) == "O_ACCMODE");
}

TEST_CASE("fdinfo and target classification edge cases") {
  FdInfo i = parse_fdinfo("pos:\t17\nflags:\t02000002\nmnt_id:\t15\nino:\t99\n");
  CHECK(i.pos == 17);
  CHECK(*i.flags == 02000002);
  CHECK(i.inode == 99);
  i = parse_fdinfo("flags 02\nnocolon\n:\npos:\t-1\nflags:\t\n");
  CHECK_FALSE(i.flags);
  CHECK(i.pos == 0);
  CHECK(classify("", std::nullopt) == FdKind::Other);
  CHECK(classify("anon_inode:", std::nullopt) == FdKind::Other);
  CHECK(classify("net:[4026531840]", std::nullopt) == FdKind::Other);
  CHECK(classify("/x", std::nullopt) == FdKind::File);
  CHECK(classify("/x", S_IFSOCK) == FdKind::Socket);
}

TEST_CASE("read_fds of a process that does not exist is empty and unreadable") {
  bool readable = true;
  CHECK(read_fds(4243, fixture_root(), &readable).empty());
  CHECK_FALSE(readable);
}

TEST_CASE("read_fds on this process: every kind, exact targets") {
  struct Fds {  // closes what the test opened, even when a check fails
    std::vector<int> v;
    ~Fds() {
      for (int fd : v) ::close(fd);
    }
    int add(int fd) {
      REQUIRE(fd >= 0);
      v.push_back(fd);
      return fd;
    }
  } opened;
  auto ino = [](int fd) {
    struct stat st;
    REQUIRE(::fstat(fd, &st) == 0);
    return static_cast<uint64_t>(st.st_ino);
  };

  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  opened.add(p[0]);
  opened.add(p[1]);
  int efd = opened.add(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  int sp[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
  opened.add(sp[0]);
  opened.add(sp[1]);
  int mfd = opened.add(::memfd_create("ptmem-test", MFD_CLOEXEC));
  int tcp = opened.add(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(tcp, 1) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(tcp, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  int port = ntohs(addr.sin_port);
  std::string dir = ptmem::test::temp_dir();
  char real[PATH_MAX];
  REQUIRE(::realpath(dir.c_str(), real));
  int dfd = opened.add(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string file = std::string(real) + "/data.txt";
  int ffd = opened.add(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600));
  REQUIRE(::write(ffd, "hello", 5) == 5);
  int tfd = opened.add(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  int sfd = opened.add(::signalfd(-1, &mask, SFD_CLOEXEC));
  int epfd = opened.add(::epoll_create1(EPOLL_CLOEXEC));
  int ifd = opened.add(::inotify_init1(IN_CLOEXEC));

  int unbound = opened.add(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int netlink = opened.add(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0));

  bool readable = false;
  auto v = read_fds(::getpid(), kDefaultRoot, &readable);
  CHECK(readable);
  for (size_t i = 1; i < v.size(); ++i) CHECK(v[i - 1].fd < v[i].fd);
  // The directory listing's own fd is not reported.
  for (const FdEntry& e : v) CHECK(e.target != "/proc/" + std::to_string(::getpid()) + "/fd");

  auto pipe_target = "pipe:[" + std::to_string(ino(p[0])) + "]";
  CHECK(by_fd(v, p[0]).kind == FdKind::Pipe);
  CHECK(by_fd(v, p[0]).target == pipe_target);
  CHECK(by_fd(v, p[0]).flags_text() == "O_RDONLY|O_CLOEXEC");
  CHECK(by_fd(v, p[1]).target == pipe_target);
  CHECK(by_fd(v, p[1]).flags_text() == "O_WRONLY|O_CLOEXEC");
  CHECK(by_fd(v, p[1]).cloexec);

  CHECK(by_fd(v, efd).kind == FdKind::Eventfd);
  CHECK(by_fd(v, efd).target == "anon_inode:[eventfd]");
  CHECK(by_fd(v, efd).flags_text() == "O_RDWR|O_NONBLOCK|O_CLOEXEC");

  for (int s : sp) {
    const FdEntry& e = by_fd(v, s);
    CHECK(e.kind == FdKind::Socket);
    CHECK(e.target == "socket:[" + std::to_string(ino(s)) + "]");
    REQUIRE(e.socket);
    CHECK(e.socket->protocol == "UNIX");
    CHECK(e.socket->state == "CONNECTED");
    CHECK(e.description() == "socket, UNIX stream");
  }

  CHECK(by_fd(v, mfd).kind == FdKind::Memfd);
  CHECK(by_fd(v, mfd).target == "/memfd:ptmem-test (deleted)");

  const FdEntry& t = by_fd(v, tcp);
  CHECK(t.kind == FdKind::Socket);
  REQUIRE(t.socket);
  CHECK(t.socket->state == "LISTEN");
  CHECK(t.description() == "socket, TCP 127.0.0.1:" + std::to_string(port));
  CHECK(t.flags_text() == "O_RDWR|O_CLOEXEC");

  CHECK(by_fd(v, dfd).kind == FdKind::Directory);
  CHECK(by_fd(v, dfd).target == std::string(real));
  CHECK(by_fd(v, ffd).kind == FdKind::File);
  CHECK(by_fd(v, ffd).target == file);
  CHECK(by_fd(v, ffd).pos == 5);
  CHECK(by_fd(v, ffd).flags_text() == "O_WRONLY|O_APPEND|O_LARGEFILE");
  CHECK_FALSE(by_fd(v, ffd).cloexec);

  CHECK(by_fd(v, tfd).kind == FdKind::Timerfd);
  CHECK(by_fd(v, sfd).kind == FdKind::Signalfd);
  CHECK(by_fd(v, epfd).kind == FdKind::Epoll);
  CHECK(by_fd(v, ifd).kind == FdKind::Inotify);
  CHECK(by_fd(v, ifd).target == "anon_inode:inotify");
  // not in /proc/net: named from system.sockprotoname
  CHECK(by_fd(v, unbound).description() == "socket, TCPv6");
  CHECK(by_fd(v, netlink).description() == "socket, NETLINK");
}
