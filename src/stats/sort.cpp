#include "ptmem/stats/sort.hpp"

#include <algorithm>

namespace ptmem::stats {
namespace {

template <typename T>
std::optional<double> as_double(const std::optional<T>& v) {
  if (!v) return std::nullopt;
  return static_cast<double>(*v);
}

}  // namespace

const std::vector<std::string_view>& sort_key_names() {
  static const std::vector<std::string_view> names{"rss",     "pss",    "uss",    "anon",
                                                   "swap",    "vsz",    "fds",    "threads",
                                                   "growth",  "faults", "pid",    "name"};
  return names;
}

std::optional<SortKey> parse_sort_key(std::string_view name) {
  const auto& names = sort_key_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<SortKey>(i);
  return std::nullopt;
}

std::string_view sort_key_name(SortKey key) { return sort_key_names()[static_cast<size_t>(key)]; }

std::optional<double> sort_value(const ProcessRow& r, SortKey key) {
  switch (key) {
    case SortKey::rss: return as_double(r.rss_bytes);
    case SortKey::pss: return as_double(r.pss_bytes);
    case SortKey::uss: return as_double(r.uss_bytes);
    case SortKey::anon: return as_double(r.anon_bytes);
    case SortKey::swap: return as_double(r.swap_bytes);
    case SortKey::vsz: return as_double(r.vsz_bytes);
    case SortKey::fds: return as_double(r.fds);
    case SortKey::threads: return as_double(r.thread_count);
    case SortKey::growth: return r.rss_growth_bytes_per_s;
    case SortKey::faults:
      if (!r.minflt_per_s || !r.majflt_per_s) return std::nullopt;
      return *r.minflt_per_s + *r.majflt_per_s;
    case SortKey::pid: return static_cast<double>(r.pid);
    case SortKey::name: return std::nullopt;
  }
  return std::nullopt;
}

void sort_rows(std::vector<ProcessRow>& rows, SortKey key, bool reverse) {
  bool ascending = (key == SortKey::pid || key == SortKey::name) != reverse;
  if (key == SortKey::name) {
    std::sort(rows.begin(), rows.end(), [&](const ProcessRow& a, const ProcessRow& b) {
      if (a.name != b.name) return ascending ? a.name < b.name : a.name > b.name;
      return a.pid < b.pid;
    });
    return;
  }
  // Decorate once: the comparator runs n log n times, the extraction only n.
  using Keyed = std::pair<std::optional<double>, size_t>;
  std::vector<Keyed> keys;
  keys.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) keys.emplace_back(sort_value(rows[i], key), i);
  std::sort(keys.begin(), keys.end(), [&](const Keyed& a, const Keyed& b) {
    if (a.first.has_value() != b.first.has_value()) return a.first.has_value();
    if (a.first && *a.first != *b.first) return ascending ? *a.first < *b.first : *a.first > *b.first;
    return rows[a.second].pid < rows[b.second].pid;
  });
  std::vector<ProcessRow> sorted;
  sorted.reserve(rows.size());
  for (auto& k : keys) sorted.push_back(std::move(rows[k.second]));
  rows = std::move(sorted);
}

}  // namespace ptmem::stats
