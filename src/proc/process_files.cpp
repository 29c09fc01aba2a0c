#include "ptmem/proc/process_files.hpp"

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ptmem::proc {
namespace {

ReadResult from_errno(int e) {
  return (e == EACCES || e == EPERM) ? ReadResult::denied : ReadResult::gone;
}

constexpr size_t kMaxText = 1 << 20;

}  // namespace

ProcFile& ProcFile::operator=(ProcFile&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void ProcFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ReadResult ProcFile::open(const std::string& path, bool directory) {
  close();
  int flags = O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0);
  fd_ = ::open(path.c_str(), flags);
  if (fd_ < 0) return from_errno(errno);
  return ReadResult::ok;
}

void TextBuffer::reserve(size_t n) {
  if (n <= capacity_) return;
  data_ = std::make_unique_for_overwrite<char[]>(n);
  capacity_ = n;
  size_ = 0;
}

ReadResult ProcFile::read(TextBuffer& buf) const {
  buf.reserve(4096);
  for (;;) {
    size_t size = buf.capacity();
    ssize_t n;
    do n = ::pread(fd_, buf.data(), size, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      buf.set_size(0);
      return from_errno(errno);
    }
    // A full buffer may mean more text: read again, from 0, with room to spare.
    if (static_cast<size_t>(n) < size || size >= kMaxText) {
      buf.set_size(static_cast<size_t>(n));
      return ReadResult::ok;
    }
    buf.reserve(size * 2);
  }
}

std::optional<uint32_t> count_fd_directory(int dir_fd, bool procfs) {
  if (procfs) {
    struct stat st;
    if (::fstat(dir_fd, &st) != 0) return std::nullopt;
    if (st.st_size > 0) return static_cast<uint32_t>(st.st_size);
  }
  if (::lseek(dir_fd, 0, SEEK_SET) != 0) return std::nullopt;
  alignas(8) char buf[16384];
  uint32_t count = 0;
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir_fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[].
      unsigned short reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      if (reclen == 0 || off + reclen > n) return std::nullopt;
      const char* name = buf + off + 19;
      bool dot = name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
      if (!dot) ++count;
      off += reclen;
    }
  }
  return count;
}

ReadResult ProcessFiles::read_kept(ProcFile& file, const char* name, TextBuffer& buf) {
  if (!file.is_open()) {
    if (auto r = file.open(dir_ + "/" + name); r != ReadResult::ok) return r;
  }
  auto r = file.read(buf);
  if (!keep_open_) file.close();
  return r;
}

ReadResult ProcessFiles::read_stat(TextBuffer& buf) { return read_kept(stat_, "stat", buf); }
ReadResult ProcessFiles::read_statm(TextBuffer& buf) { return read_kept(statm_, "statm", buf); }
ReadResult ProcessFiles::read_status(TextBuffer& buf) { return read_kept(status_, "status", buf); }

std::optional<uint32_t> ProcessFiles::fd_count(bool procfs) {
  if (fd_dir_denied_) return std::nullopt;  // permission does not come back by retrying
  if (!fd_dir_.is_open()) {
    auto r = fd_dir_.open(dir_ + "/fd", true);
    if (r == ReadResult::denied) fd_dir_denied_ = true;
    if (r != ReadResult::ok) return std::nullopt;
  }
  auto n = count_fd_directory(fd_dir_.fd(), procfs);
  if (!keep_open_) fd_dir_.close();
  return n;
}

void ProcessFiles::drop_memory_files() {
  statm_.close();
  status_.close();
  fd_dir_.close();
}

unsigned ProcessFiles::held_fds() const {
  return unsigned(stat_.is_open()) + unsigned(statm_.is_open()) + unsigned(status_.is_open()) +
         unsigned(fd_dir_.is_open());
}

}  // namespace ptmem::proc
