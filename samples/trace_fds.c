/* File descriptors of every kind, some leaked at marked lines ("// @fd NAME"), the others
 * properly closed.  argv[1]: a scratch directory (the test's temporary directory); files
 * are created in it.  For each leaked fd the sample prints "fd NAME NUMBER" so that the test
 * knows the numbers without guessing; it prints "done" last and exits 0.
 *
 * Leaked fds (NAME: kind, target):
 *   open: file DIR/a.txt            openat: file DIR/b.txt        fopen: file DIR/d.txt
 *   opendir: directory DIR          socket: socket (unix)         tcp: socket (inet)
 *   socketpair: socket (one end)    accept: socket (unix)         pipe: pipe (read end)
 *   dup: file DIR/e.txt (a dup'ed fd closed only once: the original is closed, the copy
 *        leaks)                     dup2: file DIR/a.txt (dup2 onto an open fd, which it
 *        closes)                    fcntl-dupfd: file DIR/a.txt (F_DUPFD, >= 50)
 *   eventfd, timerfd, signalfd, epoll, inotify: anonymous inodes of those kinds
 *   memfd: memfd "trace_memfd"      scm-rights: file DIR/h.txt (received in SCM_RIGHTS)
 * 19 leaked in all.  Closed properly: creat, fopen+fclose, opendir+closedir, fdopen+fclose,
 * freopen+fclose, fdopendir+closedir, the other socketpair end, accept4's fd, the listener
 * and both clients, pipe's write end, pipe2 (both), dup3, F_DUPFD_CLOEXEC, epoll_create,
 * inotify_init, 3 fds closed by close_range, the SCM_RIGHTS pair and the sent original.
 * One failed open (-1) is not an fd.
 *
 * Memory: fopen and opendir allocate their FILE / DIR: those two blocks leak with their fds
 * (site: the @fd fopen and @fd opendir lines); every other block is freed.
 *
 * Mode "gai" (argv[2]): getaddrinfo("localhost") + freeaddrinfo, whose internal fds (files
 * under /etc, netlink socket) are all closed, then one leak: "fd gai-after N" (@fd
 * gai-after, /dev/null). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <linux/close_range.h>

#include "trace_common.h"

static char dir[256];

static const char* in_dir(const char* name) {
  static char path[2][512];
  static int which;
  which ^= 1;
  snprintf(path[which], sizeof path[which], "%s/%s", dir, name);
  return path[which];
}

static int check(int fd, const char* what) {
  if (fd < 0) die(what);
  return fd;
}

static void closed(int fd, const char* what) {
  if (close(fd) != 0) die(what);
}

static void report(const char* name, int fd) { say("fd %s %d\n", name, fd); }

static void send_fd(int sock, int fd) {
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &msg, 0) != 1) die("sendmsg");
}

static int receive_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  if (recvmsg(sock, &msg, 0) != 1) die("recvmsg");  // @fd scm-rights
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) die("no SCM_RIGHTS");
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static void all_kinds(void) {
  /* close_range first, while fds 3.. are still contiguous: three fds, one call. */
  int r0 = check(open("/dev/null", O_RDONLY), "open r0");
  int r1 = check(open("/dev/null", O_RDONLY), "open r1");
  int r2 = check(open("/dev/null", O_RDONLY), "open r2");
  if (r1 != r0 + 1 || r2 != r0 + 2) die("close_range fds not contiguous");
  if (close_range((unsigned)r0, (unsigned)r2, 0) != 0) die("close_range");

  if (open(in_dir("missing/nothing"), O_RDONLY) != -1) die("open of a missing file worked");

  int a = check(open(in_dir("a.txt"), O_CREAT | O_RDWR, 0600), "open");  // @fd open
  report("open", a);

  int dfd = check(open(dir, O_RDONLY | O_DIRECTORY), "open dir");
  int b = check(openat(dfd, "b.txt", O_CREAT | O_WRONLY, 0600), "openat");  // @fd openat
  report("openat", b);
  closed(dfd, "close dfd");

  closed(check(creat(in_dir("c.txt"), 0600), "creat"), "close creat");

  FILE* d = fopen(in_dir("d.txt"), "w");  // @fd fopen
  if (!d) die("fopen");
  report("fopen", fileno(d));
  FILE* d2 = fopen(in_dir("d2.txt"), "w");
  if (!d2 || fclose(d2) != 0) die("fopen/fclose");

  DIR* od = opendir(dir);  // @fd opendir
  if (!od) die("opendir");
  report("opendir", dirfd(od));
  DIR* od2 = opendir(dir);
  if (!od2 || closedir(od2) != 0) die("opendir/closedir");

  int fdo = check(open(in_dir("i.txt"), O_CREAT | O_RDWR, 0600), "open i");
  FILE* fd_file = fdopen(fdo, "r+");
  if (!fd_file || fclose(fd_file) != 0) die("fdopen/fclose");

  FILE* fr = fopen(in_dir("j.txt"), "w");
  if (!fr) die("fopen j");
  fr = freopen(in_dir("k.txt"), "w", fr);
  if (!fr || fclose(fr) != 0) die("freopen/fclose");

  DIR* fdd = fdopendir(check(open(dir, O_RDONLY | O_DIRECTORY), "open dir 2"));
  if (!fdd || closedir(fdd) != 0) die("fdopendir/closedir");

  int s = check(socket(AF_UNIX, SOCK_STREAM, 0), "socket");  // @fd socket
  report("socket", s);
  int tcp = check(socket(AF_INET, SOCK_STREAM, 0), "socket inet");  // @fd tcp
  report("tcp", tcp);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");  // @fd socketpair
  report("socketpair", sv[0]);
  closed(sv[1], "close sv1");

  int listener = check(socket(AF_UNIX, SOCK_STREAM, 0), "listener");
  struct sockaddr_un addr = {0};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", in_dir("sock"));
  if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0) die("bind");
  if (listen(listener, 4) != 0) die("listen");
  int c1 = check(socket(AF_UNIX, SOCK_STREAM, 0), "client1");
  if (connect(c1, (struct sockaddr*)&addr, sizeof addr) != 0) die("connect1");
  int acc = check(accept(listener, NULL, NULL), "accept");  // @fd accept
  report("accept", acc);
  int c2 = check(socket(AF_UNIX, SOCK_STREAM, 0), "client2");
  if (connect(c2, (struct sockaddr*)&addr, sizeof addr) != 0) die("connect2");
  closed(check(accept4(listener, NULL, NULL, SOCK_CLOEXEC), "accept4"), "close accept4");
  closed(c1, "close c1");
  closed(c2, "close c2");
  closed(listener, "close listener");

  int p[2];
  if (pipe(p) != 0) die("pipe");  // @fd pipe
  report("pipe", p[0]);
  closed(p[1], "close pipe write end");
  int q[2];
  if (pipe2(q, O_CLOEXEC) != 0) die("pipe2");
  closed(q[0], "close q0");
  closed(q[1], "close q1");

  int e = check(open(in_dir("e.txt"), O_CREAT | O_RDWR, 0600), "open e");
  int e_copy = check(dup(e), "dup");  // @fd dup
  report("dup", e_copy);
  closed(e, "close e");

  int f = check(open(in_dir("f.txt"), O_CREAT | O_RDWR, 0600), "open f");
  if (dup2(a, f) != f) die("dup2");  // @fd dup2
  report("dup2", f);

  int d3 = check(dup3(a, 101, O_CLOEXEC), "dup3");
  closed(d3, "close dup3");

  int fd50 = check(fcntl(a, F_DUPFD, 50), "F_DUPFD");  // @fd fcntl-dupfd
  report("fcntl-dupfd", fd50);
  closed(check(fcntl(a, F_DUPFD_CLOEXEC, 60), "F_DUPFD_CLOEXEC"), "close dupfd_cloexec");

  int ev = check(eventfd(0, 0), "eventfd");  // @fd eventfd
  report("eventfd", ev);
  int tf = check(timerfd_create(CLOCK_MONOTONIC, 0), "timerfd");  // @fd timerfd
  report("timerfd", tf);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  int sf = check(signalfd(-1, &mask, 0), "signalfd");  // @fd signalfd
  report("signalfd", sf);
  int ep = check(epoll_create1(0), "epoll_create1");  // @fd epoll
  report("epoll", ep);
  closed(check(epoll_create(1), "epoll_create"), "close epoll_create");
  int in = check(inotify_init1(0), "inotify_init1");  // @fd inotify
  report("inotify", in);
  closed(check(inotify_init(), "inotify_init"), "close inotify_init");
  int mf = check(memfd_create("trace_memfd", 0), "memfd_create");  // @fd memfd
  report("memfd", mf);

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) != 0) die("socketpair dgram");
  int h = check(open(in_dir("h.txt"), O_CREAT | O_RDWR, 0600), "open h");
  send_fd(pair[0], h);
  closed(h, "close h");
  int received = receive_fd(pair[1]);
  report("scm-rights", received);
  closed(pair[0], "close pair0");
  closed(pair[1], "close pair1");
}

static void gai_mode(void) {
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  int rc = getaddrinfo("localhost", "80", &hints, &res);
  if (rc != 0) {
    say("FAILED getaddrinfo: %s\n", gai_strerror(rc));
    _exit(99);
  }
  freeaddrinfo(res);
  int n = check(open("/dev/null", O_RDONLY), "open /dev/null");  // @fd gai-after
  report("gai-after", n);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    say("usage: trace_fds DIR [gai]\n");
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  if (argc > 2 && strcmp(argv[2], "gai") == 0)
    gai_mode();
  else
    all_kinds();
  say("done\n");
  return 0;
}
