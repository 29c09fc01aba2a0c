// The vdso has no file to open.  Every 64-bit process on one kernel maps the same vdso
// image, so ptmem serves the target's [vdso] module from a copy of its own: one memfd,
// written once, opened by libdwfl by its /proc/self/fd path.
#pragma once
#include <cstdint>
#include <string>

namespace ptmem::symbols::detail {

/// "/proc/self/fd/N" of a memfd holding this process's vdso image and its size, or ""
/// when there is none (no AT_SYSINFO_EHDR, memfd refused).
const std::string& vdso_file(uint64_t* size = nullptr);

}  // namespace ptmem::symbols::detail
