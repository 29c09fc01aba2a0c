#include "ptmem/track/tracker.hpp"

#include <algorithm>

namespace ptmem::track {

void Tracker::add_block(pid_t tid, uint64_t addr, uint64_t size, StackId stack) {
  ++counters_.alloc_calls;
  counters_.total_allocated_bytes += size;
  if (stack >= allocated_by_stack_.size()) allocated_by_stack_.resize(std::max<size_t>(stack + 1, allocated_by_stack_.size() * 2));
  if (auto old = allocations_.insert({addr, size, stack, tid, next_sequence_++})) {
    drop_block(*old);
    ++counters_.unseen_frees;
  }
  SiteTotals& site = allocated_by_stack_[stack];
  ++site.calls;
  site.bytes += size;
  ++site.live_blocks;
  site.live_bytes += size;
  LiveTotals& thread = live_by_thread_[tid];
  ++thread.blocks;
  thread.bytes += size;
  ++counters_.live_blocks;
  counters_.live_bytes += size;
  counters_.peak_live_bytes = std::max(counters_.peak_live_bytes, counters_.live_bytes);
}

void Tracker::drop_block(const Block& b) {
  --counters_.live_blocks;
  counters_.live_bytes -= b.size;
  SiteTotals& site = allocated_by_stack_[b.stack];  // sized by the add_block that made |b|
  --site.live_blocks;
  site.live_bytes -= b.size;
  if (auto it = live_by_thread_.find(b.tid); it != live_by_thread_.end()) {
    --it->second.blocks;
    it->second.bytes -= b.size;
  }
}

void Tracker::on_alloc(pid_t tid, uint64_t addr, uint64_t size, StackId stack) {
  note_thread(tid);
  add_block(tid, addr, size, stack);
}

void Tracker::on_free(pid_t tid, uint64_t addr) {
  note_thread(tid);
  ++counters_.free_calls;
  if (auto old = allocations_.erase(addr)) drop_block(*old);
  else ++counters_.frees_of_unknown_blocks;
}

void Tracker::on_free_null(pid_t tid) {
  note_thread(tid);
  ++counters_.free_null_calls;
}

void Tracker::on_realloc(pid_t tid, uint64_t old_addr, uint64_t new_addr, uint64_t size,
                         StackId stack) {
  note_thread(tid);
  // The old block is released first, so an in-place resize replaces it and peak_live_bytes
  // sees old and new size only once.
  if (auto old = allocations_.erase(old_addr)) drop_block(*old);
  else ++counters_.frees_of_unknown_blocks;
  add_block(tid, new_addr, size, stack);
}

void Tracker::on_failed_alloc(pid_t tid) {
  note_thread(tid);
  ++counters_.failed_alloc_calls;
}

void Tracker::on_realloc_call(pid_t tid) {
  note_thread(tid);
  ++counters_.realloc_calls;
}

void Tracker::on_thread_start(pid_t tid) { note_thread(tid); }

void Tracker::on_thread_name(pid_t tid, std::string_view name) { thread_names_[tid] = std::string(name); }

void Tracker::on_fd_close_begin(pid_t tid, int fd) {
  std::erase_if(closing_, [&](const Closing& c) { return c.tid == tid; });  // one per thread
  closing_.push_back({fd, tid, false});
}

void Tracker::on_fd_close_failed(pid_t tid, int fd) {
  // If an open already got the number, the close did happen, whatever it returned.
  std::erase_if(closing_, [&](const Closing& c) { return c.tid == tid && c.fd == fd; });
}

void Tracker::on_fd_open(pid_t tid, int fd, FdOrigin origin, StackId stack) {
  note_thread(tid);
  ++counters_.fd_opened;
  // The kernel gave out |fd| again: a close of it still waiting for its result is done.
  for (Closing& c : closing_)
    if (c.fd == fd && !c.done) {
      c.done = true;
      ++counters_.fd_closed;
      if (!fds_.close(fd)) ++counters_.fd_closes_of_unknown;
      break;
    }
  // An fd already open here was closed implicitly (dup2/dup3 onto it), or through a path
  // that was not seen; either way the old descriptor is gone.
  if (fds_.open({fd, origin, stack, tid, next_sequence_++})) ++counters_.fd_closed;
}

void Tracker::on_fd_close(pid_t tid, int fd) {
  note_thread(tid);
  for (auto it = closing_.begin(); it != closing_.end(); ++it)
    if (it->fd == fd && it->tid == tid) {
      bool done = it->done;
      closing_.erase(it);
      if (done) return;  // counted when an open proved it
      break;
    }
  ++counters_.fd_closed;
  if (!fds_.close(fd)) ++counters_.fd_closes_of_unknown;
}

void Tracker::on_fd_close_range(pid_t tid, unsigned first, unsigned last) {
  note_thread(tid);
  // Only fds the table knows can be counted; after reconciliation that is every open fd.
  std::vector<int> closing;
  fds_.for_each([&](const FdRecord& r) {
    if (r.fd >= 0 && static_cast<unsigned>(r.fd) >= first && static_cast<unsigned>(r.fd) <= last)
      closing.push_back(r.fd);
  });
  for (int fd : closing) fds_.close(fd);
  counters_.fd_closed += closing.size();
}

void Tracker::on_exec(pid_t) {
  counters_.exec_dropped_blocks += counters_.live_blocks;
  counters_.exec_dropped_bytes += counters_.live_bytes;
  counters_.live_blocks = 0;
  counters_.live_bytes = 0;
  allocations_.clear();
  for (SiteTotals& site : allocated_by_stack_) site.live_blocks = site.live_bytes = 0;
  live_by_thread_.clear();
}

void Tracker::mark_inherited(std::span<const int> fds) {
  for (int fd : fds) {
    if (fd < 0) continue;
    // Found by an earlier reconcile_fds (origin Unknown, never seen created): now explained.
    const FdRecord* r = fds_.find(fd);
    if (r && r->origin == FdOrigin::Unknown && r->sequence == 0 && counters_.fd_found_open > 0)
      --counters_.fd_found_open;
    fds_.open({fd, FdOrigin::Inherited, kNoStack, 0, 0});
  }
}

Tracker::ReconcileResult Tracker::reconcile_fds(const std::vector<proc::FdEntry>& open_fds, bool at_exec) {
  ReconcileResult result;
  absl::flat_hash_set<int> open;
  open.reserve(open_fds.size());
  for (const proc::FdEntry& e : open_fds) {
    open.insert(e.fd);
    if (!fds_.find(e.fd)) {
      fds_.open({e.fd, FdOrigin::Unknown, kNoStack, 0, 0});
      ++result.added;
    }
  }
  std::vector<int> gone;
  fds_.for_each([&](const FdRecord& r) {
    if (!open.contains(r.fd)) gone.push_back(r.fd);
  });
  for (int fd : gone) fds_.close(fd);
  result.dropped = gone.size();
  counters_.fd_found_open += result.added;
  if (at_exec) {
    counters_.fd_closed += result.dropped;
    counters_.fd_closed_at_exec += result.dropped;
  } else {
    counters_.fd_found_closed += result.dropped;
  }
  return result;
}

size_t Tracker::memory_usage() const {
  return allocations_.memory_usage() + allocated_by_stack_.capacity() * sizeof(SiteTotals) +
         fds_.size() * (sizeof(int) + sizeof(FdRecord) + 1);
}

}  // namespace ptmem::track
