// `ptmem stats` on live samples and on the fixture tree.  The samples change only when
// told to and report the Unix time at which each change was complete; a test then reads
// ptmem's JSON samples until one taken after that time, so every assertion is about a
// state known to be in place.  Figures are exact (fd counts, thread names, fixture
// values) or within a few percent of what the sample touched (RSS).
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "../support/process.hpp"

using namespace ptmem::test;
using nlohmann::json;

namespace {

constexpr double MiB = 1024.0 * 1024.0;

std::string bin() { return ptmem::test::ptmem(); }

double time_in(const std::string& line) {
  auto at = line.find("t=");
  REQUIRE(at != std::string::npos);
  return std::stod(line.substr(at + 2));
}

/// samples/stats_grow.c, driven one command at a time.
class Grow {
 public:
  Grow() : child_(options()) {
    auto ready = child_.wait_for_line("ready pid=");
    REQUIRE(ready);
    ready_time = time_in(*ready);
  }
  pid_t pid() const { return child_.pid(); }
  /// Sends |command|, returns the time at which the sample reported it complete.
  double run(const std::string& command, std::vector<std::string>* before = nullptr) {
    child_.write_stdin(command + "\n");
    for (;;) {
      auto line = child_.read_line();
      REQUIRE(line);
      if (line->rfind("ok ", 0) == 0) return time_in(*line);
      REQUIRE(line->rfind("error", 0) != 0);
      if (before) before->push_back(*line);
    }
  }
  double ready_time = 0;

 private:
  static Child::Options options() {
    Child::Options o;
    o.argv = {sample("stats_grow")};
    o.pipe_stdin = true;
    return o;
  }
  Child child_;
};

/// `ptmem stats ... --format json` for one pid, read sample by sample.
class Stats {
 public:
  explicit Stats(std::vector<std::string> extra) : child_(std::move(extra)) {}
  static std::vector<std::string> args(pid_t pid, std::vector<std::string> more = {},
                                       const std::string& interval = "50ms",
                                       const std::string& window = "10") {
    std::vector<std::string> a{bin(), "stats", "--batch", "--format", "json", "--pid",
                               std::to_string(pid), "--interval", interval, "--window", window,
                               "--count", "1000"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  /// The first sample taken after Unix time |t|.
  json after(double t) {
    for (;;) {
      auto line = child_.read_line(20s);
      REQUIRE(line);
      auto j = json::parse(*line);
      if (j["time"].get<double>() > t) return j;
    }
  }
  /// The row of |pid| in a sample (which must have exactly that row).
  static json row(const json& sample, pid_t pid) {
    REQUIRE(sample["processes"].size() == 1);
    auto r = sample["processes"][0];
    REQUIRE(r["pid"] == pid);
    return r;
  }

 private:
  Child child_;
};

std::string fixture_root() {
  for (const char* p : {"tests/fixtures/proc/basic", "fixtures/proc/basic", "../tests/fixtures/proc/basic"})
    if (std::filesystem::exists(std::string(p) + "/meminfo")) return std::filesystem::absolute(p);
  FAIL("fixture tree not found");
  return {};
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("stats live: a growing sample: RSS as touched, exact fds, flagged as growing") {
  Grow grow;
  // One step right after each sample: with 200 ms between samples every step lands in
  // its own interval, so the window sees a rise at (nearly) every sample even on a busy
  // machine; a late step only makes one flat step, which the rules tolerate.  The window
  // (8 samples) is shorter than the 12 steps, so samples taken before the first step
  // (the test may be slow to start on a loaded machine) have left it at the end: the
  // suspicion rule wants rises in both halves of the window.
  Stats stats(Stats::args(grow.pid(), {}, "200ms", "8"));
  auto first = Stats::row(stats.after(grow.ready_time), grow.pid());
  CHECK(first["fds"] == 3);  // stdin, stdout, stderr: nothing else
  CHECK(first["thread_count"] == 1);
  CHECK(first["suspect"] == false);
  CHECK(first["command"] == sample("stats_grow"));
  CHECK(first["rss_growth_bytes_per_s"].is_null());  // no previous sample yet
  CHECK(first["pss_bytes"].is_null());                // not asked for
  CHECK(first["uss_bytes"].is_null());
  double rss0 = first["rss_bytes"].get<double>(), anon0 = first["anon_bytes"].get<double>();

  json last;
  for (int step = 1; step <= 12; ++step) {
    grow.run("alloc 8");
    last = stats.after(grow.run("open 1"));
  }
  auto r = Stats::row(last, grow.pid());
  CAPTURE(r.dump());
  CHECK(r["rss_bytes"].get<double>() - rss0 == doctest::Approx(96 * MiB).epsilon(0.03));
  CHECK(r["anon_bytes"].get<double>() - anon0 == doctest::Approx(96 * MiB).epsilon(0.03));
  CHECK(r["fds"] == 3 + 12);
  CHECK(r["suspect"] == true);
  CHECK(r["trend"]["rss_rising"] == true);
  CHECK(r["trend"]["fds_rising"] == true);
  CHECK(r["trend"]["rss_rising_share"] == 1.0);  // it never went down
  CHECK(r["trend"]["fds_rising_share"] == 1.0);
  CHECK(r["trend"]["rss_slope_bytes_per_s"].get<double>() > 0);
  CHECK(r["trend"]["samples"] == 8);  // the window is full
  CHECK(r["vsz_bytes"].get<double>() >= r["rss_bytes"].get<double>());
  CHECK(r["swap_bytes"] == 0);
  CHECK(r["majflt_per_s"].is_number());
  CHECK(last["system"]["mem_total_bytes"].get<double>() > 0);
  CHECK(last["interval_ms"] == 200.0);
}

TEST_CASE("stats live: a flat sample is not flagged; its figures hold still") {
  Child::Options o;
  o.argv = {sample("stats_flat"), "16", "5"};
  o.pipe_stdin = true;
  Child flat(o);
  auto ready = flat.wait_for_line("ready pid=");
  REQUIRE(ready);
  Stats stats(Stats::args(flat.pid()));
  json s = stats.after(time_in(*ready));
  double rss = Stats::row(s, flat.pid())["rss_bytes"].get<double>();
  for (int i = 0; i < 14; ++i) {
    s = stats.after(s["time"].get<double>());
    auto r = Stats::row(s, flat.pid());
    CHECK(r["fds"] == 3 + 5);
    CHECK(r["anon_bytes"].get<double>() == doctest::Approx(16 * MiB).epsilon(0.03));
    CHECK(r["rss_bytes"].get<double>() == rss);
    CHECK(r["rss_growth_bytes_per_s"] == 0.0);
    CHECK(r["suspect"] == false);
  }
  auto r = Stats::row(s, flat.pid());
  CHECK(r["trend"]["samples"] == 10);
  CHECK(r["trend"]["rss_slope_bytes_per_s"] == 0.0);
  CHECK(r["trend"]["rss_rising_share"].is_null());  // never moved
}

TEST_CASE("stats live: memory that goes up and down is not flagged") {
  Grow grow;
  Stats stats(Stats::args(grow.pid()));
  json s;
  for (int i = 0; i < 6; ++i) {
    stats.after(grow.run("alloc 8"));
    s = stats.after(grow.run("free"));
    CHECK(Stats::row(s, grow.pid())["suspect"] == false);
  }
  auto r = Stats::row(s, grow.pid());
  CAPTURE(r.dump());
  CHECK(r["trend"]["rss_rising"] == false);
  CHECK(r["trend"]["rss_rising_share"].get<double>() == doctest::Approx(0.5).epsilon(0.25));
}

TEST_CASE("stats live: --threads lists every thread with its name, state and rates") {
  Grow grow;
  std::vector<std::string> tid_lines;
  double t = grow.run("threads 3", &tid_lines);
  REQUIRE(tid_lines.size() == 3);
  std::set<long> expected{grow.pid()};
  for (auto& l : tid_lines) expected.insert(std::stol(l.substr(4)));
  Stats stats(Stats::args(grow.pid(), {"--threads"}));
  auto s = stats.after(t);
  s = stats.after(s["time"].get<double>());  // a second reading: rates are known
  auto r = Stats::row(s, grow.pid());
  CAPTURE(r.dump());
  CHECK(r["thread_count"] == 4);
  CHECK(r["fds"] == 5);  // 0, 1, 2 and the threads' pipe
  REQUIRE(r["threads"].size() == 4);
  std::set<long> seen;
  std::set<std::string> names;
  for (auto& th : r["threads"]) {
    seen.insert(th["tid"].get<long>());
    names.insert(th["name"].get<std::string>());
    if (th["tid"] != grow.pid()) {
      CHECK(th["state"] == "S");           // blocked on the pipe
      CHECK(th["cpu_percent"] == 0.0);     // and using no CPU
      CHECK(th["minflt_per_s"] == 0.0);
      CHECK(th["majflt_per_s"] == 0.0);
    }
  }
  CHECK(seen == expected);
  CHECK(names == std::set<std::string>{"stats_grow", "worker-1", "worker-2", "worker-3"});
}

TEST_CASE("stats live: --pss reads PSS and USS for the rows shown") {
  Grow grow;
  double t = grow.run("alloc 16");
  Stats stats(Stats::args(grow.pid(), {"--pss"}));
  auto r = Stats::row(stats.after(t), grow.pid());
  CAPTURE(r.dump());
  REQUIRE(r["pss_bytes"].is_number());
  REQUIRE(r["uss_bytes"].is_number());
  double rss = r["rss_bytes"], pss = r["pss_bytes"], uss = r["uss_bytes"];
  CHECK(uss >= 16 * MiB);  // the touched block is private to it
  CHECK(uss <= pss);
  CHECK(pss <= rss);
}

TEST_CASE("stats: filters, sort, --top and the other formats") {
  Child::Options o;
  o.argv = {sample("stats_flat"), "4", "2"};
  o.pipe_stdin = true;
  Child flat(o);
  REQUIRE(flat.wait_for_line("ready pid="));
  std::string pid = std::to_string(flat.pid());

  auto top = run({bin(), "stats", "--format", "json", "--count", "1", "--top", "3"});
  REQUIRE(top.status == 0);
  auto j = json::parse(top.out);
  REQUIRE(j["processes"].size() == 3);
  CHECK(j["processes"][0]["rss_bytes"] >= j["processes"][1]["rss_bytes"]);
  CHECK(j["processes"][1]["rss_bytes"] >= j["processes"][2]["rss_bytes"]);
  CHECK(j["system"]["processes"].get<int>() > 3);

  auto by_pid = run({bin(), "stats", "--format", "json", "--count", "1", "--sort", "pid", "--reverse"});
  REQUIRE(by_pid.status == 0);
  auto rows = json::parse(by_pid.out)["processes"];
  REQUIRE(rows.size() > 2);
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1]["pid"] > rows[i]["pid"]);

  auto named = run({bin(), "stats", "--format", "json", "--count", "1", "--name", "^stats_flat$", "--user", "root"});
  REQUIRE(named.status == 0);
  bool found = false;
  auto named_rows = json::parse(named.out)["processes"];
  for (auto& r : named_rows) {
    CHECK(r["name"] == "stats_flat");
    CHECK(r["user"] == "root");
    found |= r["pid"] == flat.pid();
  }
  CHECK(found);

  auto csv = run({bin(), "stats", "--format", "csv", "--count", "2", "--interval", "20ms", "--pid", pid});
  REQUIRE(csv.status == 0);
  CHECK(count_lines(csv.out) == 3);  // header, then one row per sample
  CHECK(csv.out.rfind("time,kind,pid,", 0) == 0);
  CHECK(csv.out.find(",process," + pid + ",,") != std::string::npos);

  auto table = run({bin(), "stats", "--count", "2", "--interval", "20ms", "--pid", pid});
  REQUIRE(table.status == 0);
  std::istringstream lines(table.out);
  std::string line;
  int titles = 0, rows_seen = 0;
  while (std::getline(lines, line)) {
    titles += line.rfind("ptmem stats  ", 0) == 0;
    if (line.find(" " + pid + " root ") != std::string::npos) {
      ++rows_seen;
      CHECK(line.find(sample("stats_flat") + " 4 2") != std::string::npos);
    }
  }
  CHECK(titles == 2);
  CHECK(rows_seen == 2);
}

TEST_CASE("stats: -o FILE holds whole JSON lines while the run goes on, and nothing on stdout") {
  Grow grow;
  auto dir = temp_dir();
  std::string file = dir + "/samples.json";
  Child stats({bin(), "stats", "--batch", "--format", "json", "--pid", std::to_string(grow.pid()),
               "--interval", "20ms", "--count", "1000", "-o", file});
  // Read the file while ptmem appends to it, as often as we can for up to 20 s. Every
  // sample is appended with one write(2), but Linux raises a file's size page by page
  // during a write, so a read that races a write may end inside the newest line. What
  // must hold: everything up to the last newline is whole samples in order, and a tail
  // without a newline is the start of the line that the next reads show complete.
  size_t lines = 0;
  std::map<size_t, std::string> partial;  // line number -> unfinished tail seen
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (lines < 10 && std::chrono::steady_clock::now() < deadline) {
    auto text = read_text_file(file);
    size_t end = text.rfind('\n');
    if (end == std::string::npos) end = 0; else ++end;
    std::istringstream in(text.substr(0, end));
    std::string line;
    lines = 0;
    while (std::getline(in, line)) {
      auto j = json::parse(line);
      CHECK(j["sample"] == ++lines);
      auto it = partial.find(lines);
      if (it != partial.end()) {
        CHECK(line.starts_with(it->second));
        partial.erase(it);
      }
    }
    if (end < text.size()) {
      CHECK(text[end] == '{');
      partial[lines + 1] = text.substr(end);
    }
    if (text.empty()) std::this_thread::sleep_for(1ms);
  }
  CHECK(lines >= 10);
  stats.signal(SIGTERM);
  auto st = stats.wait(10s);
  REQUIRE(st);
  CHECK(Child::exit_code(*st) == 0);
  CHECK(stats.read_rest_stdout(1s).empty());

  auto done = run({bin(), "stats", "--format", "json", "--pid", std::to_string(grow.pid()),
                   "--interval", "20ms", "--count", "3", "-o", file});
  REQUIRE(done.status == 0);
  CHECK(done.out.empty());
  CHECK(count_lines(read_text_file(file)) == 3);  // truncated at start, 3 samples
}

TEST_CASE("stats: SIGINT ends a batch run cleanly") {
  Child stats({bin(), "stats", "--batch", "--format", "json", "--interval", "50ms", "--top", "1"});
  REQUIRE(stats.read_line());
  stats.signal(SIGINT);
  auto st = stats.wait(10s);
  REQUIRE(st);
  CHECK(Child::exit_code(*st) == 0);
}

TEST_CASE("stats: the fixture tree end to end, exact figures and unknowns as null") {
  auto root = fixture_root();
  auto r = run({bin(), "stats", "--proc-root", root, "--format", "json", "--count", "1", "--pss", "--threads"});
  REQUIRE(r.status == 0);
  auto j = json::parse(r.out);
  CHECK(j["system"]["mem_total_bytes"] == 16384000ull * 1024);
  CHECK(j["system"]["swap_used_bytes"] == 1048576ull * 1024);
  CHECK(j["system"]["processes"] == 7);
  CHECK(j["system"]["threads"] == 57);
  auto rows = j["processes"];
  REQUIRE(rows.size() == 4);
  auto p = rows[0];
  CHECK(p["pid"] == 100);
  CHECK(p["command"] == "/usr/sbin/server --port 8080");
  CHECK(p["rss_bytes"] == 65536ull * 1024);
  CHECK(p["pss_bytes"] == 50000ull * 1024);
  CHECK(p["uss_bytes"] == 61440ull * 1024);
  CHECK(p["fds"] == 4);
  CHECK(p["threads"].size() == 2);
  CHECK(p["threads"][1]["name"] == "worker 1");
  json broken;
  for (auto& row : rows)
    if (row["pid"] == 600) broken = row;
  REQUIRE(broken.is_object());
  CHECK(broken["user"].is_null());
  CHECK(broken["anon_bytes"].is_null());
  CHECK(broken["swap_bytes"].is_null());
  CHECK(broken["pss_bytes"].is_null());
  CHECK(broken["file_bytes"] == 200 * 1024);
}

TEST_CASE("stats: bad options are a one-line error with status 2") {
  std::vector<std::vector<std::string>> bad{
      {"--interval", "0"},     {"--interval", "-5ms"}, {"--interval", "abc"},  {"--interval", "10x"},
      {"--sort", "bogus"},     {"--format", "xml"},    {"--top", "0"},         {"--count", "0"},
      {"--pid", "abc"},        {"--pid", "1,x"},       {"--user", "no-such-user-ptmem"},
      {"--name", "(unclosed"}, {"--window", "2"},      {"--no-such-option"},   {"--proc-root", "/no/such/dir"},
      {"-o", "/no/such/dir/file"}};
  for (auto& args : bad) {
    std::vector<std::string> argv{bin(), "stats", "--count", "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, 30s);
    CAPTURE(args[0]);
    CAPTURE(r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.rfind("ptmem: ", 0) == 0);
  }
  auto help = run({bin(), "stats", "--help"});
  CHECK(help.status == 0);
  for (const char* opt : {"--sort", "--reverse", "--top", "--pid", "--user", "--name", "--interval", "--count",
                          "--batch", "--format", "--output", "--threads", "--pss", "--window"})
    CHECK(help.out.find(opt) != std::string::npos);
}

TEST_CASE("stats: figures another user may not read are null, never 0") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test drops from root to nobody with setpriv");
  REQUIRE(std::filesystem::exists("/usr/bin/setpriv"));
  Child::Options o;
  o.argv = {sample("stats_flat"), "2", "3"};
  o.pipe_stdin = true;
  Child flat(o);  // owned by root
  REQUIRE(flat.wait_for_line("ready pid="));
  auto r = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin(), "stats",
                "--format", "json", "--count", "2", "--interval", "20ms", "--pid",
                std::to_string(flat.pid()), "--pss", "--threads"});
  REQUIRE(r.status == 0);
  auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  auto row = Stats::row(json::parse(last), flat.pid());
  CAPTURE(row.dump());
  CHECK(row["fds"].is_null());        // /proc/PID/fd needs ptrace access
  CHECK(row["pss_bytes"].is_null());  // so does smaps_rollup
  CHECK(row["uss_bytes"].is_null());
  CHECK(row["trend"]["fds_slope_per_s"].is_null());
  CHECK(row["user"] == "root");       // status and stat are world-readable
  CHECK(row["rss_bytes"].get<double>() >= 2 * MiB);
  CHECK(row["threads"].size() == 1);
  CHECK(row["minflt_per_s"] == 0.0);
}
