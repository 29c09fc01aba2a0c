#include "ptmem/util/test_pause.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "ptmem/util/eprint.hpp"

namespace ptmem::util {

void test_pause(const char* phase) {
  const char* want = std::getenv("PTMEM_TEST_PAUSE");
  const char* fifo = std::getenv("PTMEM_TEST_PAUSE_FIFO");
  if (!want || !fifo || std::strcmp(want, phase) != 0) return;
  eprint("ptmem: paused before {}\n", phase);
  // ptmem's SIGALRM tick (no SA_RESTART) interrupts the open and the read: retry.
  int fd;
  do fd = ::open(fifo, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return;
  char c;
  while (::read(fd, &c, 1) < 0 && errno == EINTR) {
  }
  ::close(fd);
}

}  // namespace ptmem::util
