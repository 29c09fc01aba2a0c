#include <doctest/doctest.h>

#include "ptmem/proc/stat.hpp"

using ptmem::proc::parse_stat;

namespace {
const char* kServer =
    "100 (server) S 1 100 100 0 -1 4194560 5000 0 7 0 250 50 0 0 20 0 2 0 12345 268435456 16384 "
    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
}

TEST_CASE("stat: every field the sampler uses") {
  auto s = parse_stat(kServer);
  REQUIRE(s);
  CHECK(s->pid == 100);
  CHECK(s->comm == "server");
  CHECK(s->state == 'S');
  CHECK(s->ppid == 1);
  CHECK(s->flags == 4194560);
  CHECK_FALSE(s->kernel_thread());
  CHECK(s->minflt == 5000);
  CHECK(s->majflt == 7);
  CHECK(s->utime == 250);
  CHECK(s->stime == 50);
  CHECK(s->num_threads == 2);
  CHECK(s->starttime == 12345);
  CHECK(s->vsize == 268435456);
  CHECK(s->rss_pages == 16384);
}

TEST_CASE("stat: the name runs to the last parenthesis") {
  auto s = parse_stat("7 (a) b (c)) R 1 7 7 0 -1 2097216 1 0 2 0 3 4 0 0 20 0 1 0 99 0 0 5");
  REQUIRE(s);
  CHECK(s->comm == "a) b (c)");
  CHECK(s->state == 'R');
  CHECK(s->kernel_thread());
  CHECK(s->minflt == 1);
  CHECK(s->majflt == 2);
  CHECK(s->starttime == 99);
  CHECK(s->rss_pages == 0);
}

TEST_CASE("stat: truncated or malformed records are rejected, never half-read") {
  for (const char* bad : {"", "100", "100 (server", "100 server) S 1", "100 (x) S 1 100 100 0 -1 4194560 12",
                          "100 (x) S 1 100 100 0 -1 4194560 5000 0 7 0 250 50 0 0 20 0 2 0 12345 268435456",
                          "100 (x) S 1 100 100 0 -1 4194560 5x00 0 7 0 250 50 0 0 20 0 2 0 12345 1 2",
                          "100 (x) SS 1 100 100 0 -1 4194560 5000 0 7 0 250 50 0 0 20 0 2 0 12345 1 2",
                          "abc (x) S 1 100 100 0 -1 4194560 5000 0 7 0 250 50 0 0 20 0 2 0 12345 1 2",
                          ") (x S 1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_stat(bad));
  }
}

TEST_CASE("stat: every prefix of a good record either parses to the same figures or fails") {
  std::string full = kServer;
  auto whole = parse_stat(full);
  REQUIRE(whole);
  for (size_t n = 0; n < full.size(); ++n) {
    auto s = parse_stat(std::string_view(full).substr(0, n));
    if (!s) continue;
    // A prefix that parses must end after the rss field: the figures cannot differ.
    CAPTURE(n);
    CHECK(s->rss_pages == whole->rss_pages);
    CHECK(s->vsize == whole->vsize);
  }
}

TEST_CASE("stat: fixture files through the reader") {
  auto s = ptmem::proc::read_stat(100, "fixtures/proc/basic");
  REQUIRE(s);
  CHECK(s->comm == "server");
  auto t = ptmem::proc::read_task_stat(100, 101, "fixtures/proc/basic");
  REQUIRE(t);
  CHECK(t->comm == "worker 1");
  CHECK(t->state == 'R');
  CHECK_FALSE(ptmem::proc::read_stat(300, "fixtures/proc/basic"));  // no stat file
  CHECK_FALSE(ptmem::proc::read_stat(500, "fixtures/proc/basic"));  // truncated
}
