// Turning samples into text: the table (batch and full-screen views share its lines),
// CSV, and JSON (one object per sample per line).  Unknown figures are "-" in the table,
// empty in CSV and null in JSON.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ptmem/stats/sample.hpp"
#include "ptmem/stats/sort.hpp"

namespace ptmem::stats {

enum class Format { table, csv, json };
std::optional<Format> parse_format(std::string_view name);

/// What the output shows besides the fixed columns.
struct View {
  SortKey key = SortKey::rss;
  bool reverse = false;
  bool pss = false;      ///< PSS and USS columns / fields
  bool threads = false;  ///< thread rows under each process
};

/// "0", "512B", "4.0K", "64M", "1.5G": binary units, at most 5 characters.
std::string human_bytes(uint64_t bytes);
/// Signed per-second size rate: "+8.0M/s", "-12K/s", "0/s".
std::string human_rate(double bytes_per_s);
/// "12", "1.5k", "2.0M": counts per second, for fault rates.
std::string human_count(double per_s);

/// The fixed-width lines of the table, one function per kind of line.
class TableLayout {
 public:
  explicit TableLayout(const View& view) : view_(view) {}
  /// "ptmem stats  2026-...  sample 3  interval 1s  sort rss" and the system line.
  std::string title_line(const Sample& s) const;
  std::string system_line(const Sample& s) const;
  std::string column_header() const;
  std::string process_line(const ProcessRow& row) const;
  std::string thread_line(const ThreadRow& row) const;
  /// The TREND cell: "LEAK rss +8.0M/s 100%", "rss 0/s -", or "-" before two samples.
  static std::string trend_cell(const Trend& t);

 private:
  View view_;
};

/// One output format.  begin() is written once before the first sample (the CSV header),
/// render() once per sample; each returns whole lines.
class SampleWriter {
 public:
  virtual ~SampleWriter() = default;
  virtual std::string begin() const { return {}; }
  virtual std::string render(const Sample& s) const = 0;
};
std::unique_ptr<SampleWriter> make_writer(Format format, const View& view);

/// Unix seconds as local "YYYY-MM-DD HH:MM:SS".
std::string local_time(double unix_seconds);

}  // namespace ptmem::stats
