// Output files: reports are written whole or not at all (temp file + rename); streams
// of samples are appended one complete line per write(2), so a reader never sees half.
#pragma once
#include <string>
#include <string_view>

namespace ptmem::util {

/// write(2) of all of |data|, retrying after EINTR and short writes.  False on an error.
bool write_all(int fd, std::string_view data);

/// Writes |content| to |path| atomically (temp file in the same directory, fsync-free
/// rename).  "-" means stdout.  Returns false and sets |error| on failure.
bool write_file_atomically(const std::string& path, std::string_view content, std::string* error);

/// Checks up front that |path| can be created (so a long trace does not end with an
/// unwritable report).  Creates nothing.
bool check_writable(const std::string& path, std::string* error);

/// An append-only stream where each append() is one write(2) of whole lines.
class LineAppender {
 public:
  LineAppender() = default;
  ~LineAppender();
  LineAppender(const LineAppender&) = delete;
  LineAppender& operator=(const LineAppender&) = delete;
  /// "-" is stdout.  Truncates an existing file.
  bool open(const std::string& path, std::string* error);
  bool append(std::string_view lines);
  bool is_stdout() const { return fd_ == 1; }

 private:
  int fd_ = -1;
};

}  // namespace ptmem::util
