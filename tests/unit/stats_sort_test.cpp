#include <doctest/doctest.h>

#include "ptmem/stats/sort.hpp"

using namespace ptmem::stats;

namespace {

ProcessRow row(pid_t pid, std::optional<uint64_t> rss, std::string name = "p") {
  ProcessRow r;
  r.pid = pid;
  r.rss_bytes = rss;
  r.name = std::move(name);
  return r;
}

std::vector<pid_t> pids(const std::vector<ProcessRow>& rows) {
  std::vector<pid_t> out;
  for (auto& r : rows) out.push_back(r.pid);
  return out;
}

}  // namespace

TEST_CASE("sort: every documented key parses and names itself") {
  for (auto name : sort_key_names()) {
    auto k = parse_sort_key(name);
    REQUIRE(k);
    CHECK(sort_key_name(*k) == name);
  }
  CHECK(sort_key_names().size() == 12);
  CHECK_FALSE(parse_sort_key("RSS"));
  CHECK_FALSE(parse_sort_key(""));
  CHECK(needs_smaps(SortKey::pss));
  CHECK(needs_smaps(SortKey::uss));
  CHECK_FALSE(needs_smaps(SortKey::rss));
}

TEST_CASE("sort: sizes largest first, unknown last either way, ties by pid") {
  std::vector<ProcessRow> rows{row(5, 100), row(3, std::nullopt), row(4, 300), row(2, 100), row(1, 200)};
  sort_rows(rows, SortKey::rss, false);
  CHECK(pids(rows) == std::vector<pid_t>{4, 1, 2, 5, 3});
  sort_rows(rows, SortKey::rss, true);
  CHECK(pids(rows) == std::vector<pid_t>{2, 5, 1, 4, 3});
}

TEST_CASE("sort: pid and name ascending by default") {
  std::vector<ProcessRow> rows{row(5, 1, "b"), row(3, 1, "a"), row(4, 1, "c"), row(1, 1, "a")};
  sort_rows(rows, SortKey::pid, false);
  CHECK(pids(rows) == std::vector<pid_t>{1, 3, 4, 5});
  sort_rows(rows, SortKey::name, false);
  CHECK(pids(rows) == std::vector<pid_t>{1, 3, 5, 4});
  sort_rows(rows, SortKey::name, true);
  CHECK(pids(rows) == std::vector<pid_t>{4, 5, 1, 3});
}

TEST_CASE("sort: faults add minor and major rates; growth may be negative") {
  std::vector<ProcessRow> rows(3);
  for (int i = 0; i < 3; ++i) rows[i].pid = i + 1;
  rows[0].minflt_per_s = 10, rows[0].majflt_per_s = 5;
  rows[1].minflt_per_s = 12, rows[1].majflt_per_s = 0;
  rows[2].minflt_per_s = 1;  // major unknown: the sum is unknown
  sort_rows(rows, SortKey::faults, false);
  CHECK(pids(rows) == std::vector<pid_t>{1, 2, 3});
  rows[0].rss_growth_bytes_per_s = -100;
  rows[1].rss_growth_bytes_per_s = 50;
  rows[2].rss_growth_bytes_per_s = 0;
  sort_rows(rows, SortKey::growth, false);
  CHECK(pids(rows) == std::vector<pid_t>{2, 3, 1});
}
