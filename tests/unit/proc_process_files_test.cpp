#include <doctest/doctest.h>

#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptmem/proc/process_files.hpp"
#include "ptmem/proc/stat.hpp"

using namespace ptmem::proc;

TEST_CASE("process files: fixture tree (plain directories, counted entry by entry)") {
  ProcessFiles f("fixtures/proc/basic/100", true);
  TextBuffer buf;
  REQUIRE(f.read_stat(buf) == ReadResult::ok);
  CHECK(parse_stat(buf.view())->comm == "server");
  REQUIRE(f.read_status(buf) == ReadResult::ok);
  CHECK(buf.view().rfind("Name:\tserver", 0) == 0);
  CHECK(f.fd_count(false) == 4u);
  CHECK(f.held_fds() == 3);
  f.drop_memory_files();
  CHECK(f.held_fds() == 1);

  ProcessFiles missing("fixtures/proc/basic/300", true);
  CHECK(missing.read_stat(buf) == ReadResult::gone);
  CHECK_FALSE(missing.fd_count(false));

  ProcessFiles transient("fixtures/proc/basic/100", false);
  REQUIRE(transient.read_stat(buf) == ReadResult::ok);
  CHECK(transient.fd_count(false) == 4u);
  CHECK(transient.held_fds() == 0);
}

TEST_CASE("process files: a kept-open file follows its process, and fails once it is gone") {
  int ready[2], hold[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe(hold) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Exactly 0, 1, 2 and the pipe's read end: 4 fds.
    ::close(ready[0]);
    ::close(hold[1]);
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != hold[0] && fd != ready[1]) ::close(fd);
    ::close(ready[1]);  // tells the parent we are set (EOF)
    char c;
    while (::read(hold[0], &c, 1) != 0) {
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(hold[0]);
  char c;
  CHECK(::read(ready[0], &c, 1) == 0);  // child has closed everything else
  ::close(ready[0]);

  ProcessFiles f("/proc/" + std::to_string(pid), true);
  TextBuffer buf;
  CHECK(f.read_stat(buf) == ReadResult::ok);
  CHECK(parse_stat(buf.view())->pid == pid);
  CHECK(f.fd_count(true) == 4u);
  CHECK(f.fd_count(false) == 4u);  // the getdents path agrees with st_size

  ::close(hold[1]);  // child exits
  int st;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(f.read_stat(buf) == ReadResult::gone);
  CHECK(f.read_status(buf) == ReadResult::gone);
  CHECK_FALSE(f.fd_count(true));
}
