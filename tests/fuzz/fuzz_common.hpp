// Shared by the libFuzzer harnesses (tests/fuzz.mk builds one binary per fuzz_*.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <unistd.h>

namespace ptmem::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A property every input must keep: a broken one is reported as a crash, with the input.
#define PTMEM_FUZZ_CHECK(cond) \
  do {                         \
    if (!(cond)) __builtin_trap(); \
  } while (0)

// The input as a file that the code under test opens by path ("/proc/self/fd/N"), the way
// ptmem opens the vdso copy: no file system litter, gone when closed.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("ptmem-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace ptmem::fuzz
