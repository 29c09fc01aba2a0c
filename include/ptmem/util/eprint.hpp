// Diagnostics and reports on stderr that never throw and never give up on EINTR.  ptmem's
// signal handlers are installed without SA_RESTART (its waits must see Ctrl-C), so a write
// to a slow terminal can be interrupted by them; fmt::print(stderr, ...) then throws, and an
// uncaught throw would abort ptmem and, through PTRACE_O_EXITKILL, kill a launched program.
#pragma once
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <utility>

namespace ptmem::util {

/// Writes all of |text| to fd 2, retrying after EINTR and short writes; other errors
/// (a closed stderr, EPIPE) drop the rest silently.
void write_stderr(std::string_view text);

/// While alive, what ptmem writes to stderr is kept instead (a full-screen view owns the
/// terminal; the text is shown once it has given the terminal back).  Not nested.
class StderrCapture {
 public:
  StderrCapture();
  ~StderrCapture();
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  /// What was written so far (and forgets it).
  std::string take();
};

template <typename... T>
void eprint(fmt::format_string<T...> format, T&&... args) {
  write_stderr(fmt::format(format, std::forward<T>(args)...));
}

}  // namespace ptmem::util
