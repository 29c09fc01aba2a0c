// The event stream between an event source (today the ptrace breakpoint engine; later an
// in-process agent) and the tables.  Sources translate what a call did into these few
// events; they know nothing of tables or reports, and the tables know nothing of ptrace.
#pragma once
#include <string_view>
#include <cstdint>
#include <span>
#include <string>
#include <sys/types.h>

namespace ptmem::track {

using StackId = uint32_t;
inline constexpr StackId kNoStack = 0;  ///< "stack unknown" (pre-attach fds, failed unwinds)

/// How an fd came to exist, for the report's "kind" when /proc cannot tell more.
enum class FdOrigin : uint8_t {
  Unknown,   ///< found in /proc/PID/fd, not seen being created (pre-attach or unhooked path)
  Inherited, ///< open when the program was launched (0, 1, 2 and whatever ptmem was given)
  Open, Fopen, Opendir, Socket, Accept, Pipe, Socketpair, Dup, Eventfd, Timerfd, Signalfd,
  Epoll, Inotify, Memfd, ScmRights, Other,
};
const char* to_string(FdOrigin origin);

class EventSink {
 public:
  virtual ~EventSink() = default;

  /// A block of |size| bytes at |addr| (never 0) was returned by an allocating call.
  virtual void on_alloc(pid_t tid, uint64_t addr, uint64_t size, StackId stack) = 0;
  /// free(addr) with addr != 0 (free(NULL) is reported through on_free_null).
  virtual void on_free(pid_t tid, uint64_t addr) = 0;
  virtual void on_free_null(pid_t tid) = 0;
  /// A successful realloc that returned |new_addr| != 0 for |old_addr| != 0 (moved or in
  /// place); the block now belongs to |stack|.  realloc(NULL, n) is an on_alloc and
  /// realloc(p, 0) that frees is an on_free; a failed realloc is on_failed_alloc.
  virtual void on_realloc(pid_t tid, uint64_t old_addr, uint64_t new_addr, uint64_t size,
                          StackId stack) = 0;
  /// An allocating call returned NULL / an error.
  virtual void on_failed_alloc(pid_t tid) = 0;

  /// A new descriptor |fd| (>= 0) now exists, created by |stack|.  If |fd| is already open
  /// (dup2/dup3 onto an open fd), the old one was implicitly closed: count it as a close.
  virtual void on_fd_open(pid_t tid, int fd, FdOrigin origin, StackId stack) = 0;
  /// close(fd) (or fclose/closedir) succeeded.
  virtual void on_fd_close(pid_t tid, int fd) = 0;
  /// close_range(first, last) without CLOSE_RANGE_CLOEXEC succeeded: every open fd in
  /// [first, last] is closed.
  virtual void on_fd_close_range(pid_t tid, unsigned first, unsigned last) = 0;

  /// The process image was replaced: its heap is gone; close-on-exec fds are closed by the
  /// kernel (the source reports those closes itself, before this).
  virtual void on_exec(pid_t pid) = 0;

  // Optional events (default: ignored), so a sink can keep exact counters that the events
  // above cannot tell apart.

  /// Once per realloc/reallocarray call, whatever its outcome, in addition to the event that
  /// describes the outcome (on_realloc, on_alloc for realloc(NULL, n), on_free for
  /// realloc(p, 0), on_failed_alloc).  Feeds the "realloc_calls" counter.
  virtual void on_realloc_call(pid_t tid) { (void)tid; }
  /// A thread joined the trace (seized at attach, or created while traced).  Threads are
  /// also noticed from the tid of every other event; this counts those that never allocate.
  virtual void on_thread_start(pid_t tid) { (void)tid; }
  /// The thread's name (/proc comm) as it ends, or at the end of the trace for those still
  /// running: reports attribute memory to named threads.
  virtual void on_thread_name(pid_t tid, std::string_view name) { (void)tid; (void)name; }
  /// A close(fd) has begun and its result is not known yet.  The kernel frees the number
  /// during the call, so another thread's open may be heard returning |fd| before this
  /// close's result is: the open then closes it first.  Sources that deliver every release
  /// in the order of its entry (the inject engine's rings) need not call it.
  virtual void on_fd_close_begin(pid_t tid, int fd) { (void)tid; (void)fd; }
  /// The close begun by on_fd_close_begin failed (or will never be known, e.g. the thread
  /// was cancelled in it): nothing was closed by it.
  virtual void on_fd_close_failed(pid_t tid, int fd) { (void)tid; (void)fd; }
};

}  // namespace ptmem::track
