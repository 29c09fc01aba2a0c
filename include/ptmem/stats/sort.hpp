// Row order: --sort KEY, --reverse.  Sizes and rates sort largest first, pid and name
// smallest first; --reverse flips that.  Rows whose key is unknown always go last, so an
// unreadable process never hides a real one at the top.  Ties go by pid.
#pragma once
#include <optional>
#include <string_view>
#include <vector>

#include "ptmem/stats/sample.hpp"

namespace ptmem::stats {

enum class SortKey { rss, pss, uss, anon, swap, vsz, fds, threads, growth, faults, pid, name };

/// The --sort spellings, in the order the help lists them.
const std::vector<std::string_view>& sort_key_names();
std::optional<SortKey> parse_sort_key(std::string_view name);
std::string_view sort_key_name(SortKey key);
/// PSS and USS come from smaps_rollup, read only on demand.
inline bool needs_smaps(SortKey k) { return k == SortKey::pss || k == SortKey::uss; }

/// The numeric value a row sorts by (name excluded); nullopt when unknown.
std::optional<double> sort_value(const ProcessRow& row, SortKey key);

void sort_rows(std::vector<ProcessRow>& rows, SortKey key, bool reverse);

}  // namespace ptmem::stats
