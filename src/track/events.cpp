#include "ptmem/track/events.hpp"

namespace ptmem::track {

const char* to_string(FdOrigin origin) {
  switch (origin) {
    case FdOrigin::Unknown: return "unknown";
    case FdOrigin::Inherited: return "inherited";
    case FdOrigin::Open: return "open";
    case FdOrigin::Fopen: return "fopen";
    case FdOrigin::Opendir: return "opendir";
    case FdOrigin::Socket: return "socket";
    case FdOrigin::Accept: return "accept";
    case FdOrigin::Pipe: return "pipe";
    case FdOrigin::Socketpair: return "socketpair";
    case FdOrigin::Dup: return "dup";
    case FdOrigin::Eventfd: return "eventfd";
    case FdOrigin::Timerfd: return "timerfd";
    case FdOrigin::Signalfd: return "signalfd";
    case FdOrigin::Epoll: return "epoll";
    case FdOrigin::Inotify: return "inotify";
    case FdOrigin::Memfd: return "memfd";
    case FdOrigin::ScmRights: return "scm_rights";
    case FdOrigin::Other: return "other";
  }
  return "unknown";
}

}  // namespace ptmem::track
