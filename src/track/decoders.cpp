#include "ptmem/track/decoders.hpp"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ptmem::track {
namespace {

constexpr uint64_t kPage = 4096;
constexpr size_t kMaxControlBytes = 4096;  // SCM_RIGHTS payloads we are willing to parse

bool read_int(arch::MemoryAccess& mem, uint64_t addr, int& out) {
  return addr != 0 && mem.read(addr, &out, sizeof out);
}

void alloc_result(const CallRecord& c, uint64_t size, EventSink& sink) {
  if (c.result != 0) sink.on_alloc(c.tid, c.result, size, c.stack);
  else sink.on_failed_alloc(c.tid);
}

void fd_result(const CallRecord& c, EventSink& sink) {
  auto fd = static_cast<int64_t>(c.result);
  if (fd >= 0 && fd <= INT32_MAX) sink.on_fd_open(c.tid, static_cast<int>(fd), c.fn->origin, c.stack);
}

void fd_pair(const CallRecord& c, uint64_t array, arch::MemoryAccess& mem, EventSink& sink) {
  if (static_cast<int64_t>(c.result) != 0) return;
  int fds[2];
  if (array == 0 || !mem.read(array, fds, sizeof fds)) return;
  for (int fd : fds)
    if (fd >= 0) sink.on_fd_open(c.tid, fd, c.fn->origin, c.stack);
}

// Walks the control messages of a received msghdr for SCM_RIGHTS descriptors.
void scm_rights(const CallRecord& c, arch::MemoryAccess& mem, EventSink& sink) {
  if (static_cast<int64_t>(c.result) < 0 || c.args[1] == 0) return;
  msghdr msg;
  if (!mem.read(c.args[1], &msg, sizeof msg)) return;
  if (!msg.msg_control || msg.msg_controllen < sizeof(cmsghdr)) return;
  size_t len = std::min<size_t>(msg.msg_controllen, kMaxControlBytes);
  alignas(cmsghdr) unsigned char buf[kMaxControlBytes];
  if (!mem.read(reinterpret_cast<uint64_t>(msg.msg_control), buf, len)) return;
  size_t off = 0;
  while (off + sizeof(cmsghdr) <= len) {
    cmsghdr h;
    std::memcpy(&h, buf + off, sizeof h);
    if (h.cmsg_len < sizeof(cmsghdr) || h.cmsg_len > len - off) break;
    if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS) {
      size_t n = (h.cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, buf + off + CMSG_LEN(0) + i * sizeof(int), sizeof fd);
        if (fd >= 0) sink.on_fd_open(c.tid, fd, FdOrigin::ScmRights, c.stack);
      }
    }
    off += CMSG_ALIGN(h.cmsg_len);
  }
}

}  // namespace

void decode_entry(CallRecord& c, arch::MemoryAccess& mem) {
  int fd;
  switch (c.fn->action) {
    case Action::FileClose:
    case Action::FileOpen:  // freopen: the stream's old fd (fopen: args[2] is junk, unused)
      if (c.fn->name.starts_with("freopen") || c.fn->action == Action::FileClose)
        if (read_int(mem, c.args[c.fn->action == Action::FileClose ? 0 : 2] + kFileFilenoOffset, fd))
          c.entry_fd = fd;
      break;
    case Action::DirClose:
      if (read_int(mem, c.args[0] + kDirFdOffset, fd)) c.entry_fd = fd;
      break;
    default:
      break;
  }
}

void decode_result(const CallRecord& c, arch::MemoryAccess& mem, EventSink& sink) {
  const auto& a = c.args;
  auto ret = static_cast<int64_t>(c.result);
  switch (c.fn->action) {
    case Action::Malloc:
    case Action::Valloc:
      alloc_result(c, a[0], sink);
      break;
    case Action::Pvalloc:
      alloc_result(c, a[0] == 0 ? kPage : (a[0] + kPage - 1) & ~(kPage - 1), sink);
      break;
    case Action::Memalign:
      alloc_result(c, a[1], sink);
      break;
    case Action::Calloc: {
      uint64_t size;
      if (__builtin_mul_overflow(a[0], a[1], &size)) size = 0;
      alloc_result(c, size, sink);
      break;
    }
    case Action::Realloc:
    case Action::ReallocArray: {
      uint64_t size = a[1];
      if (c.fn->action == Action::ReallocArray && __builtin_mul_overflow(a[1], a[2], &size)) size = 0;
      sink.on_realloc_call(c.tid);
      if (a[0] == 0) alloc_result(c, size, sink);            // realloc(NULL, n) == malloc(n)
      else if (c.result != 0) sink.on_realloc(c.tid, a[0], c.result, size, c.stack);
      else if (size == 0) sink.on_free(c.tid, a[0]);         // glibc: realloc(p, 0) frees p
      else sink.on_failed_alloc(c.tid);                      // failed: p is untouched
      break;
    }
    case Action::Free:
      if (a[0] == 0) sink.on_free_null(c.tid);
      else sink.on_free(c.tid, a[0]);
      break;
    case Action::PosixMemalign: {
      uint64_t block = 0;
      if (c.result == 0 && a[0] != 0 && mem.read(a[0], &block, sizeof block) && block != 0)
        sink.on_alloc(c.tid, block, a[2], c.stack);
      else
        sink.on_failed_alloc(c.tid);
      break;
    }
    case Action::FdResult:
      fd_result(c, sink);
      break;
    case Action::FdPipe:
      fd_pair(c, a[0], mem, sink);
      break;
    case Action::FdSocketpair:
      fd_pair(c, a[3], mem, sink);
      break;
    case Action::FdClose:
      if (ret == 0) sink.on_fd_close(c.tid, static_cast<int>(a[0]));
      else sink.on_fd_close_failed(c.tid, static_cast<int>(a[0]));
      break;
    case Action::FdDup2:
      if (ret >= 0 && static_cast<uint64_t>(ret) != a[0]) fd_result(c, sink);
      break;
    case Action::FdFcntl:
      if ((a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC) && ret >= 0) fd_result(c, sink);
      break;
    case Action::FileOpen: {
      if (c.result == 0) break;
      if (c.entry_fd >= 0) sink.on_fd_close(c.tid, static_cast<int>(c.entry_fd));  // freopen
      int fd;
      if (read_int(mem, c.result + kFileFilenoOffset, fd) && fd >= 0)
        sink.on_fd_open(c.tid, fd, c.fn->origin, c.stack);
      break;
    }
    case Action::DirOpen: {
      int fd;
      if (c.result != 0 && read_int(mem, c.result + kDirFdOffset, fd) && fd >= 0)
        sink.on_fd_open(c.tid, fd, c.fn->origin, c.stack);
      break;
    }
    case Action::FileWrap:
    case Action::DirWrap:
      break;  // the fd already exists with its own creator
    case Action::FileClose:
      // The stream is closed whether or not fclose reports an error (POSIX, glibc).
      if (c.entry_fd >= 0) sink.on_fd_close(c.tid, static_cast<int>(c.entry_fd));
      break;
    case Action::DirClose:
      if (ret == 0 && c.entry_fd >= 0) sink.on_fd_close(c.tid, static_cast<int>(c.entry_fd));
      break;
    case Action::CloseRange:
      if (ret == 0 && !(a[2] & CLOSE_RANGE_CLOEXEC))
        sink.on_fd_close_range(c.tid, static_cast<unsigned>(a[0]), static_cast<unsigned>(a[1]));
      break;
    case Action::RecvMsg:
      scm_rights(c, mem, sink);
      break;
  }
}

}  // namespace ptmem::track
