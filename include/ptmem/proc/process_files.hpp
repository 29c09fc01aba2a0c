// The /proc files the sampler reads for one process on every sweep (stat, statm, status
// and the fd directory), kept open between sweeps.  Re-reading a kept-open /proc file with pread
// costs about half of open/read/close (measured.md: stat 6.0 vs 12.2 ms per 1000
// processes), and a kept-open file also pins the identity of the process: once it exits,
// reads fail with ESRCH even if its pid is reused, so a new process never inherits the
// history of an old one.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ptmem::proc {

enum class ReadResult {
  ok,
  gone,    ///< the process (or thread) no longer exists
  denied,  ///< exists, but we may not read this file (another user's process)
};

/// A reusable read buffer that grows but is never zero-filled: a sweep reads two files
/// per process, and clearing a 4 KiB std::string each time was a fifth of its CPU.
class TextBuffer {
 public:
  std::string_view view() const { return {data_.get(), size_}; }
  char* data() { return data_.get(); }
  size_t capacity() const { return capacity_; }
  void reserve(size_t n);  ///< contents are not kept
  void set_size(size_t n) { size_ = n; }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0, size_ = 0;
};

/// One /proc file, optionally kept open; read() returns its whole current text.
class ProcFile {
 public:
  ProcFile() = default;
  ~ProcFile() { close(); }
  ProcFile(const ProcFile&) = delete;
  ProcFile& operator=(const ProcFile&) = delete;
  ProcFile(ProcFile&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ProcFile& operator=(ProcFile&& o) noexcept;

  ReadResult open(const std::string& path, bool directory = false);
  /// Whole text from offset 0 into |buf| (capacity reused; capped at 1 MiB).
  ReadResult read(TextBuffer& buf) const;
  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void close();

 private:
  int fd_ = -1;
};

/// Open fds in a /proc/PID/fd directory.  On procfs since Linux 6.2 fstat's st_size is the
/// count (the kernel counts the fd bitmap: no directory walk); otherwise, or when it says
/// 0 (older kernels always do), the entries are counted with getdents64.
std::optional<uint32_t> count_fd_directory(int dir_fd, bool procfs);

class ProcessFiles {
 public:
  /// |dir| is "<root>/<pid>".  With |keep_open| false every read opens and closes (used
  /// when the process count would exceed our fd budget).
  ProcessFiles(std::string dir, bool keep_open) : dir_(std::move(dir)), keep_open_(keep_open) {}

  ReadResult read_stat(TextBuffer& buf);
  ReadResult read_statm(TextBuffer& buf);
  ReadResult read_status(TextBuffer& buf);
  /// nullopt when the count cannot be read (gone, or not allowed).
  std::optional<uint32_t> fd_count(bool procfs);
  /// Stop keeping all but stat (kernel threads need only stat).
  void drop_memory_files();
  /// How many fds this object holds now.
  unsigned held_fds() const;
  const std::string& dir() const { return dir_; }

 private:
  ReadResult read_kept(ProcFile& file, const char* name, TextBuffer& buf);
  std::string dir_;
  bool keep_open_;
  bool fd_dir_denied_ = false;
  ProcFile stat_, statm_, status_, fd_dir_;
};

}  // namespace ptmem::proc
