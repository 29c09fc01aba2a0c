#include "ptmem/stats/format.hpp"

#include <cmath>
#include <ctime>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ptmem::stats {
namespace {

using Json = nlohmann::ordered_json;

// Rates and shares are measured, not exact: three decimals are plenty and keep JSON short.
double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

template <typename T>
Json json_or_null(const std::optional<T>& v) {
  if (!v) return nullptr;
  if constexpr (std::is_floating_point_v<T>) return round3(*v);
  else return *v;
}

template <typename T>
std::string cell(const std::optional<T>& v) {
  if (!v) return "-";
  return fmt::format("{}", *v);
}

std::string bytes_cell(const std::optional<uint64_t>& v) { return v ? human_bytes(*v) : "-"; }
std::string count_cell(const std::optional<double>& v) { return v ? human_count(*v) : "-"; }

// Fixed widths keep columns aligned; a longer value is cut with '+' as top does.
std::string fit(std::string s, size_t width) {
  if (s.size() > width) s = s.substr(0, width - 1) + "+";
  return s;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

template <typename T>
std::string csv_value(const std::optional<T>& v) {
  if (!v) return {};
  if constexpr (std::is_floating_point_v<T>) return fmt::format("{}", round3(*v));
  else return fmt::format("{}", *v);
}

}  // namespace

std::optional<Format> parse_format(std::string_view name) {
  if (name == "table") return Format::table;
  if (name == "csv") return Format::csv;
  if (name == "json") return Format::json;
  return std::nullopt;
}

std::string human_bytes(uint64_t bytes) {
  if (bytes == 0) return "0";
  if (bytes < 1024) return fmt::format("{}B", bytes);
  static const char units[] = "KMGTPE";
  double v = double(bytes) / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < sizeof units - 1) {
    v /= 1024.0;
    ++u;
  }
  // One decimal below 10 ("4.0K", "9.9M"), none above ("64M", "1023K").
  if (v < 9.95) return fmt::format("{:.1f}{}", v, units[u]);
  if (v < 1023.5) return fmt::format("{:.0f}{}", v, units[u]);
  return fmt::format("1.0{}", units[u + 1]);
}

std::string human_rate(double bytes_per_s) {
  double a = std::fabs(bytes_per_s);
  if (a < 0.5) return "0/s";
  return fmt::format("{}{}/s", bytes_per_s < 0 ? '-' : '+', human_bytes(static_cast<uint64_t>(std::llround(a))));
}

std::string human_count(double per_s) {
  if (per_s < 0) return "-";
  if (per_s < 9999.5) return fmt::format("{:.0f}", per_s);
  if (per_s < 999950) return fmt::format("{:.1f}k", per_s / 1e3);
  return fmt::format("{:.1f}M", per_s / 1e6);
}

std::string local_time(double unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  tm local{};
  ::localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
  return buf;
}

std::string TableLayout::title_line(const Sample& s) const {
  double ms = s.interval_ms;
  std::string interval = ms >= 1000 && std::fmod(ms, 1000) == 0 ? fmt::format("{}s", ms / 1000)
                         : ms >= 1 ? fmt::format("{}ms", ms) : fmt::format("{}us", ms * 1000);
  return fmt::format("ptmem stats  {}  sample {}  interval {}  sort {}{}", local_time(s.time),
                     s.index, interval, sort_key_name(view_.key), view_.reverse ? " (reversed)" : "");
}

std::string TableLayout::system_line(const Sample& s) const {
  size_t suspects = 0;
  for (auto& p : s.processes) suspects += p.trend.suspect();
  return fmt::format("mem total {}  available {}  swap used {}  processes {}  threads {}  shown {}  suspects {}",
                     bytes_cell(s.system.mem_total_bytes), bytes_cell(s.system.mem_available_bytes),
                     bytes_cell(s.system.swap_used_bytes), cell(s.system.processes),
                     cell(s.system.threads), s.processes.size(), suspects);
}

std::string TableLayout::column_header() const {
  std::string h = fmt::format("{:>7} {:<8} {:>4} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>9} {:>8} {:>8}",
                              "PID", "USER", "THR", "FDS", "VSZ", "RSS", "ANON", "FILE", "SHMEM",
                              "SWAP", "%MEM", "GROWTH/s", "MINFLT/s", "MAJFLT/s");
  if (view_.pss) h += fmt::format(" {:>6} {:>6}", "PSS", "USS");
  h += fmt::format(" {:<22} {}", "TREND", "COMMAND");
  return h;
}

std::string TableLayout::trend_cell(const Trend& t) {
  if (t.samples < 2) return "-";
  // Show the figure that is rising; RSS otherwise.
  bool fds = t.fds.rising && !t.rss.rising;
  const SeriesTrend& s = fds ? t.fds : t.rss;
  std::string slope;
  if (!s.slope_per_s) slope = "-";
  else if (fds) slope = fmt::format("{:+.1f}/s", *s.slope_per_s);
  else slope = human_rate(*s.slope_per_s);
  std::string share = s.rising_share ? fmt::format("{:.0f}%", *s.rising_share * 100) : "-";
  const char* what = fds ? "fds" : (t.rss.rising && t.fds.rising ? "rss+fds" : "rss");
  return fmt::format("{}{} {} {}", t.suspect() ? "LEAK " : "", what, slope, share);
}

std::string TableLayout::process_line(const ProcessRow& r) const {
  std::string growth = r.rss_growth_bytes_per_s ? human_rate(*r.rss_growth_bytes_per_s) : "-";
  std::string mem = r.mem_percent ? fmt::format("{:.1f}", *r.mem_percent) : "-";
  std::string line = fmt::format(
      "{:>7} {:<8} {:>4} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>9} {:>8} {:>8}", r.pid,
      fit(r.user.empty() ? "-" : r.user, 8), cell(r.thread_count), cell(r.fds), bytes_cell(r.vsz_bytes),
      bytes_cell(r.rss_bytes), bytes_cell(r.anon_bytes), bytes_cell(r.file_bytes),
      bytes_cell(r.shmem_bytes), bytes_cell(r.swap_bytes), mem, growth, count_cell(r.minflt_per_s),
      count_cell(r.majflt_per_s));
  if (view_.pss) line += fmt::format(" {:>6} {:>6}", bytes_cell(r.pss_bytes), bytes_cell(r.uss_bytes));
  line += fmt::format(" {:<22} {}", trend_cell(r.trend), r.command.empty() ? r.name : r.command);
  return line;
}

std::string TableLayout::thread_line(const ThreadRow& t) const {
  std::string cpu = t.cpu_percent ? fmt::format("{:.1f}%", *t.cpu_percent) : "-";
  return fmt::format("{:>7} `- tid {:<7} {}  cpu {:>6}  minflt/s {:>6}  majflt/s {:>6}  {}", "", t.tid,
                     t.state, cpu, count_cell(t.minflt_per_s), count_cell(t.majflt_per_s), t.name);
}

namespace {

class TableWriter : public SampleWriter {
 public:
  explicit TableWriter(const View& v) : layout_(v), view_(v) {}
  std::string render(const Sample& s) const override {
    std::string out = layout_.title_line(s) + "\n" + layout_.system_line(s) + "\n" +
                      layout_.column_header() + "\n";
    for (auto& p : s.processes) {
      out += layout_.process_line(p);
      out += '\n';
      if (view_.threads)
        for (auto& t : p.threads) out += layout_.thread_line(t) + "\n";
    }
    out += '\n';  // one blank line between samples
    return out;
  }

 private:
  TableLayout layout_;
  View view_;
};

class CsvWriter : public SampleWriter {
 public:
  explicit CsvWriter(const View& v) : view_(v) {}
  std::string begin() const override {
    return "time,kind,pid,tid,ppid,user,state,thread_count,fds,vsz_bytes,rss_bytes,anon_bytes,"
           "file_bytes,shmem_bytes,swap_bytes,mem_percent,pss_bytes,uss_bytes,"
           "rss_growth_bytes_per_s,minflt_per_s,majflt_per_s,cpu_percent,suspect,"
           "rss_slope_bytes_per_s,rss_rising_share,fds_slope_per_s,fds_rising_share,name,command\n";
  }
  std::string render(const Sample& s) const override {
    std::string out;
    std::string time = fmt::format("{:.6f}", s.time);
    for (auto& p : s.processes) {
      out += fmt::format("{},process,{},,{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                         time, p.pid, p.ppid, csv_field(p.user), csv_field(std::string(1, p.state)),
                         csv_value(p.thread_count), csv_value(p.fds), csv_value(p.vsz_bytes),
                         csv_value(p.rss_bytes), csv_value(p.anon_bytes), csv_value(p.file_bytes),
                         csv_value(p.shmem_bytes), csv_value(p.swap_bytes), csv_value(p.mem_percent),
                         csv_value(p.pss_bytes), csv_value(p.uss_bytes),
                         csv_value(p.rss_growth_bytes_per_s), csv_value(p.minflt_per_s),
                         csv_value(p.majflt_per_s), csv_value(p.cpu_percent),
                         p.trend.suspect() ? "true" : "false", csv_value(p.trend.rss.slope_per_s),
                         csv_value(p.trend.rss.rising_share), csv_value(p.trend.fds.slope_per_s),
                         csv_value(p.trend.fds.rising_share), csv_field(p.name), csv_field(p.command));
      if (!view_.threads) continue;
      for (auto& t : p.threads)
        out += fmt::format("{},thread,{},{},,,{},,,,,,,,,,,,,{},{},{},,,,,,{},\n", time, p.pid, t.tid,
                           csv_field(std::string(1, t.state)), csv_value(t.minflt_per_s),
                           csv_value(t.majflt_per_s), csv_value(t.cpu_percent), csv_field(t.name));
    }
    return out;
  }

 private:
  View view_;
};

Json series_json(const Trend& t) {
  Json j;
  j["samples"] = t.samples;
  j["rss_slope_bytes_per_s"] = json_or_null(t.rss.slope_per_s);
  j["rss_rising_share"] = json_or_null(t.rss.rising_share);
  j["rss_rising"] = t.rss.rising;
  j["fds_slope_per_s"] = json_or_null(t.fds.slope_per_s);
  j["fds_rising_share"] = json_or_null(t.fds.rising_share);
  j["fds_rising"] = t.fds.rising;
  return j;
}

class JsonWriter : public SampleWriter {
 public:
  explicit JsonWriter(const View& v) : view_(v) {}
  std::string render(const Sample& s) const override {
    Json j;
    j["time"] = s.time;
    j["interval_ms"] = s.interval_ms;
    j["sample"] = s.index;
    j["sort"] = std::string(sort_key_name(view_.key));
    j["system"] = {{"mem_total_bytes", json_or_null(s.system.mem_total_bytes)},
                   {"mem_available_bytes", json_or_null(s.system.mem_available_bytes)},
                   {"swap_used_bytes", json_or_null(s.system.swap_used_bytes)},
                   {"processes", json_or_null(s.system.processes)},
                   {"threads", json_or_null(s.system.threads)}};
    Json list = Json::array();
    for (auto& p : s.processes) {
      Json r;
      r["pid"] = p.pid;
      r["ppid"] = p.ppid;
      r["user"] = p.user.empty() ? Json(nullptr) : Json(p.user);
      r["uid"] = json_or_null(p.uid);
      r["name"] = p.name;
      r["command"] = p.command.empty() ? p.name : p.command;
      r["state"] = std::string(1, p.state);
      r["thread_count"] = json_or_null(p.thread_count);
      r["fds"] = json_or_null(p.fds);
      r["vsz_bytes"] = json_or_null(p.vsz_bytes);
      r["rss_bytes"] = json_or_null(p.rss_bytes);
      r["anon_bytes"] = json_or_null(p.anon_bytes);
      r["file_bytes"] = json_or_null(p.file_bytes);
      r["shmem_bytes"] = json_or_null(p.shmem_bytes);
      r["swap_bytes"] = json_or_null(p.swap_bytes);
      r["mem_percent"] = json_or_null(p.mem_percent);
      r["pss_bytes"] = json_or_null(p.pss_bytes);
      r["uss_bytes"] = json_or_null(p.uss_bytes);
      r["rss_growth_bytes_per_s"] = json_or_null(p.rss_growth_bytes_per_s);
      r["minflt_per_s"] = json_or_null(p.minflt_per_s);
      r["majflt_per_s"] = json_or_null(p.majflt_per_s);
      r["cpu_percent"] = json_or_null(p.cpu_percent);
      r["suspect"] = p.trend.suspect();
      r["trend"] = series_json(p.trend);
      if (view_.threads) {
        Json threads = Json::array();
        for (auto& t : p.threads)
          threads.push_back({{"tid", t.tid},
                             {"name", t.name},
                             {"state", std::string(1, t.state)},
                             {"cpu_percent", json_or_null(t.cpu_percent)},
                             {"minflt_per_s", json_or_null(t.minflt_per_s)},
                             {"majflt_per_s", json_or_null(t.majflt_per_s)}});
        r["threads"] = std::move(threads);
      }
      list.push_back(std::move(r));
    }
    j["processes"] = std::move(list);
    // Names and command lines are untrusted bytes: replace invalid UTF-8, never throw.
    return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }

 private:
  View view_;
};

}  // namespace

std::unique_ptr<SampleWriter> make_writer(Format format, const View& view) {
  switch (format) {
    case Format::table: return std::make_unique<TableWriter>(view);
    case Format::csv: return std::make_unique<CsvWriter>(view);
    case Format::json: return std::make_unique<JsonWriter>(view);
  }
  return nullptr;
}

}  // namespace ptmem::stats
