#include <doctest/doctest.h>

#include "ptmem/proc/kb_lines.hpp"
#include "ptmem/proc/meminfo.hpp"

using namespace ptmem::proc;

TEST_CASE("kB values: only well-formed 'N kB'") {
  CHECK(parse_kb_value("   1234 kB") == 1234u);
  CHECK(parse_kb_value("\t0 kB") == 0u);
  CHECK(parse_kb_value("1 kB  ") == 1u);
  for (const char* bad : {"", " kB", "12", "12x kB", "-5 kB", "1 MB", "12 kB junk",
                          "99999999999999999999999 kB"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_kb_value(bad));
  }
}

TEST_CASE("meminfo: the four figures, swap used derived") {
  auto m = parse_meminfo(
      "MemTotal:       16384000 kB\nMemFree:  1 kB\nMemAvailable:    8192000 kB\n"
      "SwapTotal:       2097152 kB\nSwapFree:        1048576 kB\nHugePages_Total:       0\n");
  CHECK(m.mem_total_kb == 16384000u);
  CHECK(m.mem_available_kb == 8192000u);
  CHECK(m.swap_used_kb() == 1048576u);
}

TEST_CASE("meminfo: malformed or truncated text leaves figures unknown") {
  auto m = parse_meminfo("MemTotal: lots kB\nMemAvailable: 12");
  CHECK_FALSE(m.mem_total_kb);
  CHECK_FALSE(m.mem_available_kb);
  CHECK_FALSE(m.swap_used_kb());
  // More free than total is nonsense: unknown, not a huge unsigned number.
  auto odd = parse_meminfo("SwapTotal: 10 kB\nSwapFree: 20 kB\n");
  CHECK_FALSE(odd.swap_used_kb());
  CHECK_FALSE(parse_meminfo("").mem_total_kb);
}

TEST_CASE("loadavg: total threads") {
  CHECK(parse_loadavg_threads("0.10 0.20 0.30 2/57 1234\n") == 57u);
  CHECK_FALSE(parse_loadavg_threads("0.10 0.20 0.30 2/"));
  CHECK_FALSE(parse_loadavg_threads("0.10 0.20 0.30 2/5x 1"));
  CHECK_FALSE(parse_loadavg_threads(""));
  CHECK(read_loadavg_threads("fixtures/proc/basic") == 57u);
  auto m = read_meminfo("fixtures/proc/basic");
  REQUIRE(m);
  CHECK(m->mem_total_kb == 16384000u);
  CHECK_FALSE(read_meminfo("fixtures/proc/no-such-root"));
}

#include "ptmem/proc/status_memory.hpp"

TEST_CASE("status memory: strict figures, effective uid, unknown when malformed") {
  auto m = parse_status_memory(
      "Name:\tx\nUid:\t1000\t0\t0\t0\nVmSize:\t  262144 kB\nVmRSS:\t   65536 kB\nRssAnon:\t 61440 kB\n"
      "RssFile:\t 3072 kB\nRssShmem:\t 1024 kB\nVmSwap:\t 2048 kB\n");
  CHECK(m.euid == 0u);
  CHECK(m.vm_size_kb == 262144u);
  CHECK(m.vm_rss_kb == 65536u);
  CHECK(m.rss_anon_kb == 61440u);
  CHECK(m.rss_file_kb == 3072u);
  CHECK(m.rss_shmem_kb == 1024u);
  CHECK(m.vm_swap_kb == 2048u);
  auto bad = parse_status_memory("Uid:\t1000\nVmRSS:\t 12x kB\nVmSwap:\t   12");
  CHECK_FALSE(bad.euid);  // one field only
  CHECK_FALSE(bad.vm_rss_kb);
  CHECK_FALSE(bad.vm_swap_kb);  // cut before its unit
  auto cut = parse_status_memory("Uid:\t1000\t10");
  CHECK_FALSE(cut.euid);  // cut inside the euid
  auto empty = parse_status_memory("");
  CHECK_FALSE(empty.euid);
  CHECK_FALSE(empty.vm_rss_kb);
}

#include "ptmem/proc/statm.hpp"

TEST_CASE("statm: three page counts, cut lines rejected") {
  auto m = parse_statm("65536 16384 1024 10 0 500 0\n");
  REQUIRE(m);
  CHECK(m->size == 65536u);
  CHECK(m->resident == 16384u);
  CHECK(m->shared == 1024u);
  CHECK(parse_statm("1 2 3 ") == parse_statm("1 2 3 4 5 6 7\n"));
  for (const char* bad : {"", "1 2", "1 2 3", "1 2 x 4", "-1 2 3 4", "1  2 3 4"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_statm(bad));
  }
}
