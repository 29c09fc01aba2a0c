// The one place that reads and writes a traced process's memory (rr's Task::read_bytes /
// strace's ucopy): process_vm_readv for reads, /proc/PID/mem for writes (it force-writes
// read-only text, which is how breakpoints get in).
#pragma once
#include <cstdint>
#include <sys/types.h>

#include "ptmem/arch/step_over.hpp"

namespace ptmem::ptrace {

class RemoteMemory final : public arch::MemoryAccess {
 public:
  explicit RemoteMemory(pid_t pid);
  ~RemoteMemory() override;
  RemoteMemory(const RemoteMemory&) = delete;
  RemoteMemory& operator=(const RemoteMemory&) = delete;

  /// After exec the old /proc/PID/mem refers to the dead address space: reopen.
  void reopen();
  /// The process is no longer traced: holds no fd from now on (reads and writes fail).
  void close();
  pid_t pid() const { return pid_; }

  bool read(uint64_t addr, void* buf, size_t len) override;
  bool write(uint64_t addr, const void* buf, size_t len) override;
  /// Reads as much of [addr, addr+len) as is mapped, from the start; returns bytes read.
  size_t read_partial(uint64_t addr, void* buf, size_t len);

 private:
  pid_t pid_;
  int mem_fd_ = -1;
};

}  // namespace ptmem::ptrace
