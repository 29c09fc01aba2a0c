#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "ptmem/stats/format.hpp"

using namespace ptmem::stats;
using nlohmann::json;

namespace {

Sample one_sample() {
  Sample s;
  s.index = 2;
  s.time = 1700000000.25;
  s.interval_ms = 500;
  s.system.mem_total_bytes = 16ull << 30;
  s.system.mem_available_bytes = 8ull << 30;
  s.system.swap_used_bytes = 0;
  s.system.processes = 120;
  s.system.threads = 300;
  ProcessRow r;
  r.pid = 4242;
  r.ppid = 1;
  r.uid = 0;
  r.user = "root";
  r.name = "grow";
  r.command = "/bin/grow --step, \"8\"";
  r.state = 'S';
  r.thread_count = 2;
  r.fds = 11;
  r.vsz_bytes = 80ull << 20;
  r.rss_bytes = 64ull << 20;
  r.anon_bytes = 63ull << 20;
  r.file_bytes = 1ull << 20;
  r.shmem_bytes = 0;
  // swap unknown
  r.mem_percent = 0.390625;
  r.rss_growth_bytes_per_s = 8.0 * (1 << 20);
  r.minflt_per_s = 2048;
  r.majflt_per_s = 0;
  r.cpu_percent = 12.3456;
  r.trend.samples = 9;
  r.trend.rss.slope_per_s = 8.0 * (1 << 20);
  r.trend.rss.rising_share = 1.0;
  r.trend.rss.rising = true;
  r.trend.fds.slope_per_s = 0.0;
  ThreadRow t;
  t.tid = 4243;
  t.name = "worker-1";
  t.state = 'S';
  t.cpu_percent = 0.0;
  t.minflt_per_s = 0.0;
  t.majflt_per_s = 0.0;
  r.threads.push_back(t);
  s.processes.push_back(r);
  return s;
}

}  // namespace

TEST_CASE("human sizes and rates") {
  CHECK(human_bytes(0) == "0");
  CHECK(human_bytes(512) == "512B");
  CHECK(human_bytes(4096) == "4.0K");
  CHECK(human_bytes(64ull << 20) == "64M");
  CHECK(human_bytes((3ull << 30) / 2) == "1.5G");
  CHECK(human_bytes(1023ull << 10) == "1023K");
  CHECK(human_bytes((1ull << 20) - 1) == "1.0M");
  CHECK(human_rate(8.0 * (1 << 20)) == "+8.0M/s");
  CHECK(human_rate(-12288) == "-12K/s");
  CHECK(human_rate(0.2) == "0/s");
  CHECK(human_count(2048) == "2048");
  CHECK(human_count(12345) == "12.3k");
}

TEST_CASE("JSON: one line per sample, the contract's field names, null for unknown") {
  View v;
  v.threads = true;
  auto text = make_writer(Format::json, v)->render(one_sample());
  CHECK(text.back() == '\n');
  CHECK(text.find('\n') == text.size() - 1);
  auto j = json::parse(text);
  CHECK(j["time"] == 1700000000.25);
  CHECK(j["interval_ms"] == 500.0);
  for (auto key : {"mem_total_bytes", "mem_available_bytes", "swap_used_bytes", "processes", "threads"})
    CHECK(j["system"].contains(key));
  CHECK(j["system"]["mem_total_bytes"] == 16ull << 30);
  auto p = j["processes"][0];
  for (auto key : {"pid", "ppid", "user", "command", "thread_count", "fds", "vsz_bytes", "rss_bytes",
                   "anon_bytes", "file_bytes", "shmem_bytes", "swap_bytes", "pss_bytes", "uss_bytes",
                   "rss_growth_bytes_per_s", "minflt_per_s", "majflt_per_s", "suspect", "threads"}) {
    CAPTURE(key);
    CHECK(p.contains(key));
  }
  CHECK(p["pid"] == 4242);
  CHECK(p["rss_bytes"] == 64ull << 20);
  CHECK(p["swap_bytes"].is_null());
  CHECK(p["pss_bytes"].is_null());
  CHECK(p["uss_bytes"].is_null());
  CHECK(p["cpu_percent"] == 12.346);
  CHECK(p["suspect"] == true);
  CHECK(p["trend"]["samples"] == 9);
  CHECK(p["trend"]["rss_slope_bytes_per_s"] == 8388608.0);
  CHECK(p["trend"]["rss_rising_share"] == 1.0);
  CHECK(p["trend"]["fds_rising_share"].is_null());
  CHECK(p["command"] == "/bin/grow --step, \"8\"");
  auto t = p["threads"][0];
  for (auto key : {"tid", "name", "state", "cpu_percent", "minflt_per_s", "majflt_per_s"}) CHECK(t.contains(key));
  CHECK(t["tid"] == 4243);
  CHECK(t["state"] == "S");
  // Without --threads there is no threads list at all.
  auto plain = json::parse(make_writer(Format::json, View{})->render(one_sample()));
  CHECK_FALSE(plain["processes"][0].contains("threads"));
}

TEST_CASE("JSON: invalid UTF-8 in a name does not throw") {
  auto s = one_sample();
  s.processes[0].command = "bad \xff\xfe bytes";
  auto text = make_writer(Format::json, View{})->render(s);
  CHECK(json::parse(text)["processes"][0]["command"].get<std::string>().find("bad ") == 0);
}

TEST_CASE("CSV: header once, quoted fields, empty for unknown") {
  View v;
  v.threads = true;
  auto w = make_writer(Format::csv, v);
  auto header = w->begin();
  CHECK(header.rfind("time,kind,pid,tid,", 0) == 0);
  auto body = w->render(one_sample());
  auto nl = body.find('\n');
  std::string line = body.substr(0, nl);
  CHECK(line.rfind("1700000000.250000,process,4242,,1,root,S,2,11,83886080,67108864,", 0) == 0);
  // swap unknown: an empty field between shmem (0) and mem_percent.
  CHECK(line.find(",67108864,66060288,1048576,0,,0.391,") != std::string::npos);
  CHECK(line.find(",true,") != std::string::npos);
  CHECK(line.ends_with(",grow,\"/bin/grow --step, \"\"8\"\"\""));
  auto columns = std::count(header.begin(), header.end(), ',');
  // Quoted command has 1 comma inside quotes, not a column separator.
  CHECK(std::count(line.begin(), line.end(), ',') == columns + 1);
  std::string thread = body.substr(nl + 1, body.find('\n', nl + 1) - nl - 1);
  CHECK(thread.rfind("1700000000.250000,thread,4242,4243,", 0) == 0);
  CHECK(std::count(thread.begin(), thread.end(), ',') == columns);
  CHECK(thread.ends_with(",worker-1,"));
}

TEST_CASE("table: unknown is '-', suspect rows say LEAK with slope and share") {
  View v;
  v.pss = true;
  TableLayout layout(v);
  auto s = one_sample();
  auto line = layout.process_line(s.processes[0]);
  CHECK(line.find("   4242 root        2    11    80M    64M    63M   1.0M      0      -   0.4   +8.0M/s     2048        0      -      - LEAK rss +8.0M/s 100%") == 0);
  CHECK(line.ends_with(" /bin/grow --step, \"8\""));
  auto header = layout.column_header();
  CHECK(header.find("PSS") != std::string::npos);
  CHECK(header.find("PID USER") != std::string::npos);
  Trend young;
  young.samples = 1;
  CHECK(TableLayout::trend_cell(young) == "-");
  Trend flat;
  flat.samples = 5;
  flat.rss.slope_per_s = 0.0;
  CHECK(TableLayout::trend_cell(flat) == "rss 0/s -");
  Trend fds;
  fds.samples = 6;
  fds.fds.slope_per_s = 2.0;
  fds.fds.rising_share = 1.0;
  fds.fds.rising = true;
  CHECK(TableLayout::trend_cell(fds) == "LEAK fds +2.0/s 100%");
  auto block = make_writer(Format::table, View{})->render(s);
  CHECK(block.find("mem total 16G  available 8.0G  swap used 0  processes 120  threads 300  shown 1  suspects 1") !=
        std::string::npos);
  CHECK(block.substr(block.size() - 2) == "\n\n");
}
