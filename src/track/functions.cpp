#include "ptmem/track/functions.hpp"

namespace ptmem::track {
namespace {

using A = Action;
using F = Family;
using O = FdOrigin;

// Rows are data: name, family, what the call does, fd origin, needs its result.
constexpr TracedFunction kFunctions[] = {
    {"malloc", F::Alloc, A::Malloc, O::Other, true},
    {"calloc", F::Alloc, A::Calloc, O::Other, true},
    {"realloc", F::Alloc, A::Realloc, O::Other, true},
    {"reallocarray", F::Alloc, A::ReallocArray, O::Other, true},
    {"free", F::Alloc, A::Free, O::Other, false},
    {"cfree", F::Alloc, A::Free, O::Other, false},
    {"posix_memalign", F::Alloc, A::PosixMemalign, O::Other, true},
    {"aligned_alloc", F::Alloc, A::Memalign, O::Other, true},
    {"memalign", F::Alloc, A::Memalign, O::Other, true},
    {"valloc", F::Alloc, A::Valloc, O::Other, true},
    {"pvalloc", F::Alloc, A::Pvalloc, O::Other, true},
    // jemalloc's own API (its operators new and delete do not go through it).
    {"mallocx", F::Alloc, A::Malloc, O::Other, true},
    {"rallocx", F::Alloc, A::Realloc, O::Other, true},
    {"dallocx", F::Alloc, A::Free, O::Other, false},
    {"sdallocx", F::Alloc, A::Free, O::Other, false},
    // C++ operators, where the allocator provides them (see allocator_only).  The size or
    // the pointer is the first argument in every variant (nothrow, sized, aligned).
    {"_Znwm", F::Alloc, A::Malloc, O::Other, true, true},
    {"_Znam", F::Alloc, A::Malloc, O::Other, true, true},
    {"_ZnwmRKSt9nothrow_t", F::Alloc, A::Malloc, O::Other, true, true},
    {"_ZnamRKSt9nothrow_t", F::Alloc, A::Malloc, O::Other, true, true},
    {"_ZnwmSt11align_val_t", F::Alloc, A::Malloc, O::Other, true, true},
    {"_ZnamSt11align_val_t", F::Alloc, A::Malloc, O::Other, true, true},
    {"_ZnwmSt11align_val_tRKSt9nothrow_t", F::Alloc, A::Malloc, O::Other, true, true},
    {"_ZnamSt11align_val_tRKSt9nothrow_t", F::Alloc, A::Malloc, O::Other, true, true},
    {"_ZdlPv", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdaPv", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdlPvm", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdaPvm", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdlPvRKSt9nothrow_t", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdaPvRKSt9nothrow_t", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdlPvSt11align_val_t", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdaPvSt11align_val_t", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdlPvmSt11align_val_t", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdaPvmSt11align_val_t", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdlPvSt11align_val_tRKSt9nothrow_t", F::Alloc, A::Free, O::Other, false, true},
    {"_ZdaPvSt11align_val_tRKSt9nothrow_t", F::Alloc, A::Free, O::Other, false, true},

    {"open", F::Fd, A::FdResult, O::Open, true},
    {"open64", F::Fd, A::FdResult, O::Open, true},
    {"openat", F::Fd, A::FdResult, O::Open, true},
    {"openat64", F::Fd, A::FdResult, O::Open, true},
    {"creat", F::Fd, A::FdResult, O::Open, true},
    {"creat64", F::Fd, A::FdResult, O::Open, true},
    {"__open_2", F::Fd, A::FdResult, O::Open, true},
    {"__open64_2", F::Fd, A::FdResult, O::Open, true},
    {"__openat_2", F::Fd, A::FdResult, O::Open, true},
    {"__openat64_2", F::Fd, A::FdResult, O::Open, true},
    // glibc-internal path used by opendir, fopen's helpers, getaddrinfo's /etc reads...
    {"__open_nocancel", F::Fd, A::FdResult, O::Open, true},
    {"__open64_nocancel", F::Fd, A::FdResult, O::Open, true},
    {"fopen", F::Fd, A::FileOpen, O::Fopen, true},
    {"fopen64", F::Fd, A::FileOpen, O::Fopen, true},
    {"freopen", F::Fd, A::FileOpen, O::Fopen, true},
    {"freopen64", F::Fd, A::FileOpen, O::Fopen, true},
    {"fdopen", F::Fd, A::FileWrap, O::Fopen, true},
    {"fclose", F::Fd, A::FileClose, O::Fopen, true},
    {"opendir", F::Fd, A::DirOpen, O::Opendir, true},
    {"fdopendir", F::Fd, A::DirWrap, O::Opendir, true},
    {"closedir", F::Fd, A::DirClose, O::Opendir, true},
    {"socket", F::Fd, A::FdResult, O::Socket, true},
    {"__socket", F::Fd, A::FdResult, O::Socket, true},
    {"socketpair", F::Fd, A::FdSocketpair, O::Socketpair, true},
    {"accept", F::Fd, A::FdResult, O::Accept, true},
    {"accept4", F::Fd, A::FdResult, O::Accept, true},
    {"pipe", F::Fd, A::FdPipe, O::Pipe, true},
    {"pipe2", F::Fd, A::FdPipe, O::Pipe, true},
    {"dup", F::Fd, A::FdResult, O::Dup, true},
    {"dup2", F::Fd, A::FdDup2, O::Dup, true},
    {"dup3", F::Fd, A::FdDup2, O::Dup, true},
    {"fcntl", F::Fd, A::FdFcntl, O::Dup, true},
    {"fcntl64", F::Fd, A::FdFcntl, O::Dup, true},
    {"eventfd", F::Fd, A::FdResult, O::Eventfd, true},
    {"timerfd_create", F::Fd, A::FdResult, O::Timerfd, true},
    {"signalfd", F::Fd, A::FdResult, O::Signalfd, true},
    {"epoll_create", F::Fd, A::FdResult, O::Epoll, true},
    {"epoll_create1", F::Fd, A::FdResult, O::Epoll, true},
    {"inotify_init", F::Fd, A::FdResult, O::Inotify, true},
    {"inotify_init1", F::Fd, A::FdResult, O::Inotify, true},
    {"memfd_create", F::Fd, A::FdResult, O::Memfd, true},
    {"close", F::Fd, A::FdClose, O::Other, true},
    {"__close_nocancel", F::Fd, A::FdClose, O::Other, true},
    {"close_range", F::Fd, A::CloseRange, O::Other, true},
    {"recvmsg", F::Fd, A::RecvMsg, O::ScmRights, true},
};

}  // namespace

std::span<const TracedFunction> traced_functions() { return kFunctions; }

bool creates(Action a) {
  switch (a) {
    case A::Free:
    case A::FdClose:
    case A::FileClose:
    case A::DirClose:
    case A::CloseRange:
    case A::FileWrap:  // the fd already exists with its own creator
    case A::DirWrap:
    case A::RecvMsg:   // rarely carries fds
      return false;
    default:
      return true;
  }
}

bool releases(Action a) {
  switch (a) {
    case A::Free:
    case A::FdClose:
    case A::FileClose:
    case A::DirClose:
    case A::CloseRange:
    case A::FdDup2:  // closes its target first; the number is the caller's choice
      return true;
    default:
      return false;
  }
}

int find_traced_function(std::string_view name) {
  for (size_t i = 0; i < std::size(kFunctions); ++i)
    if (kFunctions[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace ptmem::track
