#include <doctest/doctest.h>

#include "ptmem/proc/cmdline.hpp"
#include "ptmem/proc/smaps_rollup.hpp"

using namespace ptmem::proc;

TEST_CASE("smaps_rollup: PSS and USS") {
  auto r = parse_smaps_rollup(
      "55ed7b288000-7ffef16b1000 ---p 00000000 00:00 0                          [rollup]\n"
      "Rss:                1700 kB\nPss:                 379 kB\nPss_Dirty:           116 kB\n"
      "Shared_Clean:       1508 kB\nPrivate_Clean:        76 kB\nPrivate_Dirty:       116 kB\n"
      "Swap:                  0 kB\nSwapPss:               0 kB\n");
  CHECK(r.rss_kb == 1700u);
  CHECK(r.pss_kb == 379u);
  CHECK(r.uss_kb() == 192u);
  CHECK(r.swap_kb == 0u);
}

TEST_CASE("smaps_rollup: truncated text gives unknown, not a wrong number") {
  auto r = parse_smaps_rollup("Rss:                 400 kB\nPss:                 3");
  CHECK(r.rss_kb == 400u);
  CHECK_FALSE(r.pss_kb);
  CHECK_FALSE(r.uss_kb());
  auto half = parse_smaps_rollup("Private_Clean: 4 kB\n");
  CHECK_FALSE(half.uss_kb());  // needs both private figures
  auto f = read_smaps_rollup(100, "fixtures/proc/basic");
  REQUIRE(f);
  CHECK(f->pss_kb == 50000u);
  CHECK(f->uss_kb() == 61440u);
  CHECK_FALSE(read_smaps_rollup(200, "fixtures/proc/basic"));
}

TEST_CASE("cmdline: arguments joined, control characters neutralised") {
  CHECK(parse_cmdline(std::string_view("/bin/x\0-a\0b c\0", 14)) == "/bin/x -a b c");
  CHECK(parse_cmdline("") == "");
  CHECK(parse_cmdline(std::string_view("\0\0", 2)) == "");
  CHECK(parse_cmdline("evil\x1b[2Jname\n") == "evil?[2Jname?");
  CHECK(read_cmdline(100, "fixtures/proc/basic") == "/usr/sbin/server --port 8080");
  CHECK(read_cmdline(200, "fixtures/proc/basic") == "");
  CHECK_FALSE(read_cmdline(300, "fixtures/proc/basic"));
}
