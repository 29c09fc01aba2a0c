#include "ptmem/track/fd_table.hpp"

#include <algorithm>

namespace ptmem::track {

std::optional<FdRecord> FdTable::open(const FdRecord& record) {
  auto [it, inserted] = fds_.try_emplace(record.fd, record);
  if (inserted) return std::nullopt;
  FdRecord old = it->second;
  it->second = record;
  return old;
}

std::optional<FdRecord> FdTable::close(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return std::nullopt;
  FdRecord r = it->second;
  fds_.erase(it);
  return r;
}

const FdRecord* FdTable::find(int fd) const {
  auto it = fds_.find(fd);
  return it == fds_.end() ? nullptr : &it->second;
}

std::vector<FdRecord> FdTable::sorted() const {
  std::vector<FdRecord> out;
  out.reserve(fds_.size());
  for (const auto& [fd, r] : fds_) out.push_back(r);
  std::sort(out.begin(), out.end(), [](const FdRecord& a, const FdRecord& b) { return a.fd < b.fd; });
  return out;
}

}  // namespace ptmem::track
