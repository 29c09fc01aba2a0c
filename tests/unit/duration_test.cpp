#include <doctest/doctest.h>

#include "ptmem/util/duration.hpp"

using ptmem::util::Duration;
using ptmem::util::parse_duration;

TEST_CASE("durations with units") {
  CHECK(parse_duration("500ms") == Duration(500'000));
  CHECK(parse_duration("250us") == Duration(250));
  CHECK(parse_duration("2s") == Duration(2'000'000));
  CHECK(parse_duration("1.5s") == Duration(1'500'000));
  CHECK(parse_duration("3") == Duration(3'000'000));
  CHECK(parse_duration("2m") == Duration(120'000'000));
}

TEST_CASE("bad durations are errors with a reason") {
  std::string error;
  for (const char* bad : {"", "0", "0ms", "-1s", "abc", "10x", "ms", "1e400s", "1.2.3s"}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(parse_duration(bad, &error));
    CHECK_FALSE(error.empty());
  }
}
