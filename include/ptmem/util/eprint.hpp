// Diagnostics and reports on stderr that never throw and never give up on EINTR.  ptmem's
// signal handlers are installed without SA_RESTART (its waits must see Ctrl-C), so a write
// to a slow terminal can be interrupted by them; fmt::print(stderr, ...) then throws, and an
// uncaught throw would abort ptmem and, through PTRACE_O_EXITKILL, kill a launched program.
#pragma once
#include <fmt/format.h>
#include <string_view>
#include <utility>

namespace ptmem::util {

/// Writes all of |text| to fd 2, retrying after EINTR and short writes; other errors
/// (a closed stderr, EPIPE) drop the rest silently.
void write_stderr(std::string_view text);

template <typename... T>
void eprint(fmt::format_string<T...> format, T&&... args) {
  write_stderr(fmt::format(format, std::forward<T>(args)...));
}

}  // namespace ptmem::util
