#include "ptmem/ptrace/remote_memory.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/uio.h>
#include <unistd.h>

namespace ptmem::ptrace {

RemoteMemory::RemoteMemory(pid_t pid) : pid_(pid) { reopen(); }

RemoteMemory::~RemoteMemory() { close(); }

void RemoteMemory::close() {
  if (mem_fd_ >= 0) ::close(mem_fd_);
  mem_fd_ = -1;
}

void RemoteMemory::reopen() {
  close();
  auto path = "/proc/" + std::to_string(pid_) + "/mem";
  mem_fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
}

bool RemoteMemory::read(uint64_t addr, void* buf, size_t len) {
  if (len == 0) return true;
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (n == static_cast<ssize_t>(len)) return true;
  // process_vm_readv refuses PROT_NONE/guard pages and some special mappings; /proc/PID/mem
  // can still read them (FOLL_FORCE).
  if (mem_fd_ < 0) return false;
  n = ::pread(mem_fd_, buf, len, static_cast<off_t>(addr));
  return n == static_cast<ssize_t>(len);
}

size_t RemoteMemory::read_partial(uint64_t addr, void* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

bool RemoteMemory::write(uint64_t addr, const void* buf, size_t len) {
  if (len == 0) return true;
  if (mem_fd_ < 0) return false;
  ssize_t n;
  do n = ::pwrite(mem_fd_, buf, len, static_cast<off_t>(addr));
  while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(len);
}

}  // namespace ptmem::ptrace
