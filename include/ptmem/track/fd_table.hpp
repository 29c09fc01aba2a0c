// Open file descriptors of the target: fd -> how it was created, by which stack and thread.
// Small (a process has few fds next to its heap blocks), so entries are not packed.
#pragma once
#include <cstdint>
#include <optional>
#include <sys/types.h>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "ptmem/track/events.hpp"

namespace ptmem::track {

struct FdRecord {
  int fd = -1;
  FdOrigin origin = FdOrigin::Unknown;
  StackId stack = kNoStack;
  pid_t tid = 0;          ///< 0 when not seen being created
  uint64_t sequence = 0;  ///< 0 when not seen being created
};

class FdTable {
 public:
  /// Records |record|; returns the record it replaced when the fd was already known (closed
  /// through a path that was not seen).
  std::optional<FdRecord> open(const FdRecord& record);
  /// Forgets |fd|; returns its record, nullopt if it was not known.
  std::optional<FdRecord> close(int fd);
  const FdRecord* find(int fd) const;

  size_t size() const { return fds_.size(); }
  void clear() { fds_.clear(); }
  /// Every record, ascending by fd.
  std::vector<FdRecord> sorted() const;

  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [fd, r] : fds_) f(r);
  }

 private:
  absl::flat_hash_map<int, FdRecord> fds_;
};

}  // namespace ptmem::track
