// The tables behind the event stream: an EventSink that keeps live blocks, open fds and the
// counters of the report.  It knows nothing of ptrace (any event source can feed it) nor of
// symbols (reports read it afterwards).  Not thread-safe: one source feeds it.
//
// Counter semantics (the JSON contract's "summary"):
//   alloc_calls            successful allocating calls: on_alloc + on_realloc
//   free_calls             on_free (free(p), p != NULL, and realloc(p, 0) that freed p)
//   free_null_calls        on_free_null
//   realloc_calls          on_realloc_call (the source reports every realloc call there)
//   failed_alloc_calls     on_failed_alloc
//   total_allocated_bytes  sum of the sizes of successful allocating calls (a realloc adds
//                          its whole new size)
//   live_blocks/bytes      blocks allocated while traced and not freed yet
//   peak_live_bytes        highest live_bytes ever
//   frees_of_unknown_blocks a free or a realloc of an address not in the table (allocated
//                          before attach, or not seen)
//   fd_opened / fd_closed  on_fd_open / on_fd_close while traced (a pipe makes two opens);
//                          fd_closed also counts the fds an on_fd_close_range closed and
//                          the open fd an on_fd_open replaced (dup2 onto an open fd)
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "ptmem/proc/fds.hpp"
#include "ptmem/track/allocation_table.hpp"
#include "ptmem/track/events.hpp"
#include "ptmem/track/fd_table.hpp"

namespace ptmem::track {

struct Counters {
  uint64_t alloc_calls = 0;
  uint64_t free_calls = 0;
  uint64_t free_null_calls = 0;
  uint64_t realloc_calls = 0;
  uint64_t failed_alloc_calls = 0;
  uint64_t total_allocated_bytes = 0;
  uint64_t live_blocks = 0;
  uint64_t live_bytes = 0;
  uint64_t peak_live_bytes = 0;
  uint64_t frees_of_unknown_blocks = 0;
  /// An allocation returned an address that was still live in the table: the block's free
  /// went unseen (an untraced path), so the old block was dropped.
  uint64_t unseen_frees = 0;
  /// Blocks and bytes live when the process called exec (its heap vanished; not leaks).
  uint64_t exec_dropped_blocks = 0;
  uint64_t exec_dropped_bytes = 0;

  uint64_t fd_opened = 0;
  uint64_t fd_closed = 0;
  uint64_t fd_closes_of_unknown = 0;  ///< on_fd_close of an fd not in the table
  /// reconcile_fds: fds /proc showed open that the table did not know (added, origin
  /// Unknown), and fds of the table /proc showed closed (dropped: closed through a path
  /// that was not traced).
  uint64_t fd_found_open = 0;
  uint64_t fd_found_closed = 0;
  /// reconcile_fds at an exec: the close-on-exec fds the exec closed (also in fd_closed).
  uint64_t fd_closed_at_exec = 0;

  uint64_t threads_seen = 0;  ///< distinct tids seen in events or on_thread_start
};

class Tracker final : public EventSink {
 public:
  Tracker() = default;

  // EventSink
  void on_alloc(pid_t tid, uint64_t addr, uint64_t size, StackId stack) override;
  void on_free(pid_t tid, uint64_t addr) override;
  void on_free_null(pid_t tid) override;
  void on_realloc(pid_t tid, uint64_t old_addr, uint64_t new_addr, uint64_t size,
                  StackId stack) override;
  void on_failed_alloc(pid_t tid) override;
  void on_fd_open(pid_t tid, int fd, FdOrigin origin, StackId stack) override;
  void on_fd_close(pid_t tid, int fd) override;
  void on_fd_close_range(pid_t tid, unsigned first, unsigned last) override;
  void on_exec(pid_t pid) override;
  void on_realloc_call(pid_t tid) override;
  void on_thread_start(pid_t tid) override;
  void on_thread_name(pid_t tid, std::string_view name) override;
  void on_fd_close_begin(pid_t tid, int fd) override;
  void on_fd_close_failed(pid_t tid, int fd) override;

  /// Marks |fds| as open at launch (FdOrigin::Inherited, no stack): they are not leaks.  The
  /// launcher calls it with the fds the program was started with (0, 1, 2 at least),
  /// before or after the first reconcile_fds (fds that one found are then not counted in
  /// fd_found_open).
  void mark_inherited(std::span<const int> fds);

  struct ReconcileResult {
    size_t added = 0;    ///< open in /proc, unknown to the table: now origin Unknown
    size_t dropped = 0;  ///< in the table, closed in /proc: removed
  };
  /// Makes the fd table agree with |open_fds| (read_fds of the target, at attach, exec, exit
  /// and detach; only from a readable listing).  Records of fds still open keep their
  /// origin and stack (Inherited included).  |at_exec|: the listing was taken right after
  /// an exec, so the fds gone are the close-on-exec ones it closed: real closes.
  ReconcileResult reconcile_fds(const std::vector<proc::FdEntry>& open_fds, bool at_exec = false);

  const Counters& counters() const { return counters_; }
  /// The sequence number the next event will get (Block::sequence dates blocks by it).
  uint64_t next_sequence() const { return next_sequence_; }
  /// What each allocating stack allocated while traced, freed or not (profiles), and what
  /// of it is live now (the live view reads these instead of walking every block).
  struct SiteTotals {
    uint64_t calls = 0, bytes = 0;
    uint64_t live_blocks = 0, live_bytes = 0;
  };
  /// Indexed by StackId (ids are dense); stacks that allocated nothing hold zeros.
  const std::vector<SiteTotals>& allocated_by_stack() const { return allocated_by_stack_; }
  /// Live blocks and bytes by the thread that allocated them (freed by any thread).
  struct LiveTotals {
    uint64_t blocks = 0, bytes = 0;
  };
  const absl::flat_hash_map<pid_t, LiveTotals>& live_by_thread() const { return live_by_thread_; }
  /// The last name each thread was seen with (on_thread_name); threads never named are absent.
  const absl::flat_hash_map<pid_t, std::string>& thread_names() const { return thread_names_; }
  const AllocationTable& allocations() const { return allocations_; }
  const FdTable& fds() const { return fds_; }
  /// Bytes held by the tables (the tracer's own cost of the trace, stacks excluded).
  size_t memory_usage() const;

 private:
  void note_thread(pid_t tid) {
    if (tid == last_tid_ || tid <= 0) return;
    last_tid_ = tid;
    if (threads_.insert(tid).second) ++counters_.threads_seen;
  }
  void add_block(pid_t tid, uint64_t addr, uint64_t size, StackId stack);
  void drop_block(const Block& b);

  Counters counters_;
  std::vector<SiteTotals> allocated_by_stack_;
  absl::flat_hash_map<pid_t, LiveTotals> live_by_thread_;
  AllocationTable allocations_;
  FdTable fds_;
  uint64_t next_sequence_ = 1;
  pid_t last_tid_ = 0;  // cheap filter: consecutive events mostly come from one thread
  absl::flat_hash_set<pid_t> threads_;
  absl::flat_hash_map<pid_t, std::string> thread_names_;
  // Closes begun and not finished (fd, tid), and those of them an open by another thread
  // already proved done.  One entry per thread at most: tiny, searched linearly.
  struct Closing {
    int fd;
    pid_t tid;
    bool done;
  };
  std::vector<Closing> closing_;
};

}  // namespace ptmem::track
