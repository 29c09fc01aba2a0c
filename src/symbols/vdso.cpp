#include "vdso.hpp"

#include <fmt/format.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptmem/proc/maps.hpp"

namespace ptmem::symbols::detail {
namespace {

struct VdsoCopy {
  std::string path;
  uint64_t size = 0;

  VdsoCopy() {
    uint64_t start = getauxval(AT_SYSINFO_EHDR);
    if (start == 0) return;
    // The size is the [vdso] mapping's; the ELF header alone does not give the image size.
    auto maps = proc::read_maps(::getpid());
    if (!maps) return;
    for (const auto& m : *maps)
      if (m.path == "[vdso]" && m.start == start) size = m.end - m.start;
    if (size == 0) return;
    int fd = ::memfd_create("ptmem-vdso", MFD_CLOEXEC);
    if (fd < 0) return;
    auto* p = reinterpret_cast<const char*>(start);
    uint64_t done = 0;
    while (done < size) {
      ssize_t n = ::write(fd, p + done, size - done);
      if (n <= 0) break;
      done += static_cast<uint64_t>(n);
    }
    if (done != size) {
      ::close(fd);
      size = 0;
      return;
    }
    // Kept open for the life of ptmem: libdwfl reopens it by path whenever it reports it.
    path = fmt::format("/proc/self/fd/{}", fd);
  }
};

}  // namespace

const std::string& vdso_file(uint64_t* size) {
  static const VdsoCopy copy;
  if (size) *size = copy.size;
  return copy.path;
}

}  // namespace ptmem::symbols::detail
