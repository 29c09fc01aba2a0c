// /proc/PID/cmdline: NUL-separated arguments, as the process left them.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ptmem::proc {

/// Joins the arguments with spaces; control characters become '?', so a hostile argv
/// cannot move the cursor of the terminal that shows it.  Empty for kernel threads and
/// zombies (their cmdline is empty).
std::string parse_cmdline(std::string_view bytes);
std::optional<std::string> read_cmdline(pid_t pid, const std::string& root = "/proc",
                                        size_t max_bytes = 4096);

}  // namespace ptmem::proc
