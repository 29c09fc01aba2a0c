#include <doctest/doctest.h>

#include "ptmem/stats/filter.hpp"

using namespace ptmem::stats;

TEST_CASE("filter: pid list") {
  Filter f;
  CHECK(f.wants_pid(1));
  f.pids = {10, 20};
  CHECK(f.wants_pid(20));
  CHECK_FALSE(f.wants_pid(15));
}

TEST_CASE("filter: regex searched in name and command line") {
  Filter f;
  CHECK(f.matches_name("x", "y"));
  std::string error;
  f.name = compile_name_pattern("^post(gres|master)", &error);
  REQUIRE(f.name);
  CHECK(f.matches_name("postgres", "/usr/lib/postgresql/15/bin/postgres -D /var"));
  CHECK(f.matches_name("pg", "postmaster -D x"));
  CHECK_FALSE(f.matches_name("nginx", "nginx: worker process"));
  CHECK_FALSE(compile_name_pattern("(unclosed", &error));
  CHECK(error.find("(unclosed") != std::string::npos);
}

TEST_CASE("filter: users by name or uid") {
  std::string error;
  CHECK(resolve_user("root", &error) == 0u);
  CHECK(resolve_user("65534", &error) == 65534u);
  CHECK(resolve_user("nobody", &error) == 65534u);
  CHECK_FALSE(resolve_user("no-such-user-here", &error));
  CHECK(error == "no such user 'no-such-user-here'");
  CHECK_FALSE(resolve_user("", &error));
  CHECK(user_name(0) == "root");
  CHECK(user_name(4242421) == "4242421");
}
