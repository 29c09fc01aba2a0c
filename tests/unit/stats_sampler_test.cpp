#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "ptmem/stats/sampler.hpp"

using namespace ptmem::stats;
namespace fs = std::filesystem;

namespace {

const ProcessRow* find(const Sample& s, pid_t pid) {
  for (auto& r : s.processes)
    if (r.pid == pid) return &r;
  return nullptr;
}

// A writable copy of the basic fixture, for sweeps that see files change.
struct FixtureCopy {
  fs::path dir;
  FixtureCopy() {
    char tmpl[] = "/tmp/ptmem-sampler-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    dir = tmpl;
    fs::copy("fixtures/proc/basic", dir, fs::copy_options::recursive);
  }
  ~FixtureCopy() { fs::remove_all(dir); }
  // In place (not by rename): the sampler keeps the file open, as with real /proc.
  void write(const std::string& rel, const std::string& text) {
    std::ofstream out(dir / rel, std::ios::trunc);
    out << text;
  }
};

std::string stat_line(uint64_t minflt, uint64_t ticks, uint64_t starttime = 12345) {
  return "100 (server) S 1 100 100 0 -1 4194560 " + std::to_string(minflt) + " 0 7 0 " +
         std::to_string(ticks) + " 0 0 0 20 0 2 0 " + std::to_string(starttime) +
         " 268435456 16384 18446744073709551615 1 1 0\n";
}

std::string status_text(uint64_t rss_kb) {
  return "Name:\tserver\nState:\tS (sleeping)\nPid:\t100\nPPid:\t1\nUid:\t0\t0\t0\t0\nVmSize:\t  262144 kB\n"
         "VmRSS:\t" + std::to_string(rss_kb) + " kB\nRssAnon:\t" + std::to_string(rss_kb) +
         " kB\nRssFile:\t0 kB\nRssShmem:\t0 kB\nVmSwap:\t0 kB\nThreads:\t2\n";
}

}  // namespace

TEST_CASE("sampler: one sweep of the fixture tree, exact figures and unknowns") {
  SamplerConfig c;
  c.root = "fixtures/proc/basic";
  Sampler sampler(c);
  CHECK_FALSE(sampler.procfs());
  Sample s = sampler.sweep();
  CHECK(s.index == 1);
  CHECK(s.system.mem_total_bytes == 16384000ull * 1024);
  CHECK(s.system.mem_available_bytes == 8192000ull * 1024);
  CHECK(s.system.swap_used_bytes == 1048576ull * 1024);
  CHECK(s.system.processes == 7u);  // every numeric directory, kernel thread included
  CHECK(s.system.threads == 57u);   // from loadavg
  // 300 (no stat), 400 (kernel thread) and 500 (truncated stat) have no row.
  CHECK(s.processes.size() == 4);
  CHECK_FALSE(find(s, 300));
  CHECK_FALSE(find(s, 400));
  CHECK_FALSE(find(s, 500));

  const ProcessRow* p = find(s, 100);
  REQUIRE(p);
  CHECK(p->ppid == 1);
  CHECK(p->user == "root");
  CHECK(p->name == "server");
  CHECK(p->thread_count == 2u);
  CHECK(p->fds == 4u);
  CHECK(p->vsz_bytes == 262144ull * 1024);
  CHECK(p->rss_bytes == 65536ull * 1024);
  CHECK(p->anon_bytes == 61440ull * 1024);
  CHECK(p->file_bytes == 3072ull * 1024);
  CHECK(p->shmem_bytes == 1024ull * 1024);
  CHECK(p->swap_bytes == 2048ull * 1024);
  CHECK(p->mem_percent == doctest::Approx(0.4));
  CHECK_FALSE(p->rss_growth_bytes_per_s);  // first sweep: no rate yet
  CHECK_FALSE(p->minflt_per_s);
  CHECK_FALSE(p->pss_bytes);               // only arrange() reads smaps_rollup
  CHECK(p->command.empty());               // nor the command line

  const ProcessRow* odd = find(s, 200);
  REQUIRE(odd);
  CHECK(odd->name == "my (odd) name");
  CHECK(odd->user == "nobody");
  CHECK(odd->vsz_bytes == 8388608u);  // from stat: status has no memory lines
  CHECK(odd->rss_bytes == 256ull * uint64_t(::sysconf(_SC_PAGESIZE)));
  CHECK_FALSE(odd->anon_bytes);
  CHECK_FALSE(odd->swap_bytes);
  CHECK_FALSE(odd->fds);  // no fd directory

  const ProcessRow* broken = find(s, 600);
  REQUIRE(broken);
  CHECK_FALSE(broken->uid);  // no Uid line: unknown, not root
  CHECK(broken->user.empty());
  CHECK(broken->vsz_bytes == 4194304u);
  CHECK(broken->rss_bytes == 100ull * uint64_t(::sysconf(_SC_PAGESIZE)));
  CHECK_FALSE(broken->anon_bytes);  // "-5 kB"
  CHECK(broken->file_bytes == 200ull * 1024);
  CHECK(broken->shmem_bytes == 0u);
  CHECK_FALSE(broken->swap_bytes);  // truncated "12"
  CHECK(broken->fds == 1u);

  const ProcessRow* zombie = find(s, 700);
  REQUIRE(zombie);
  CHECK(zombie->state == 'Z');
  CHECK(zombie->user == "daemon");
  CHECK(zombie->rss_bytes == 0u);
}

TEST_CASE("sampler: arrange sorts, then reads PSS, command and threads for shown rows only") {
  SamplerConfig c;
  c.root = "fixtures/proc/basic";
  Sampler sampler(c);
  Sample s = sampler.sweep();
  Arrangement how;
  how.key = SortKey::rss;
  how.count = 2;
  how.pss = true;
  how.threads = true;
  sampler.arrange(s.processes, how);
  REQUIRE(s.processes.size() == 4);
  CHECK(s.processes[0].pid == 100);
  CHECK(s.processes[1].pid == 200);
  CHECK(s.processes[2].pid == 600);
  CHECK(s.processes[3].pid == 700);
  auto& p = s.processes[0];
  CHECK(p.command == "/usr/sbin/server --port 8080");
  CHECK(p.pss_bytes == 50000ull * 1024);
  CHECK(p.uss_bytes == 61440ull * 1024);
  REQUIRE(p.threads.size() == 2);
  CHECK(p.threads[0].tid == 100);
  CHECK(p.threads[1].tid == 101);
  CHECK(p.threads[1].name == "worker 1");
  CHECK(p.threads[1].state == 'R');
  CHECK_FALSE(p.threads[1].cpu_percent);  // first reading
  CHECK(s.processes[1].command == "[my (odd) name]");
  CHECK(s.processes[1].pss_read);
  CHECK_FALSE(s.processes[1].pss_bytes);  // no smaps_rollup: unknown
  CHECK_FALSE(s.processes[2].pss_read);   // not shown: not read
  CHECK(s.processes[2].command.empty());
}

TEST_CASE("sampler: sorting by PSS reads only what can reach the top") {
  SamplerConfig c;
  c.root = "fixtures/proc/basic";
  Sampler sampler(c);
  Sample s = sampler.sweep();
  Arrangement how;
  how.key = SortKey::pss;
  how.count = 1;
  sampler.arrange(s.processes, how);
  CHECK(s.processes[0].pid == 100);
  CHECK(s.processes[0].pss_bytes == 50000ull * 1024);
  // 100's PSS (48.8 MiB) beats every other RSS (<= 1 MiB): no other rollup was read.
  for (size_t i = 1; i < s.processes.size(); ++i) CHECK_FALSE(s.processes[i].pss_read);
}

TEST_CASE("sampler: filters by pid, user and name") {
  SamplerConfig c;
  c.root = "fixtures/proc/basic";
  c.filter.pids = {200, 600, 999};
  CHECK(Sampler(c).sweep().processes.size() == 2);
  c.filter.pids.clear();
  c.filter.uid = 65534;
  auto s = Sampler(c).sweep();
  REQUIRE(s.processes.size() == 1);
  CHECK(s.processes[0].pid == 200);
  c.filter.uid.reset();
  c.filter.name = compile_name_pattern("port 80", nullptr);  // matches the command line
  s = Sampler(c).sweep();
  REQUIRE(s.processes.size() == 1);
  CHECK(s.processes[0].pid == 100);
}

TEST_CASE("sampler: rates and trend across sweeps, history reset on pid reuse") {
  FixtureCopy tree;
  double now = 10.0;
  SamplerConfig c;
  c.root = tree.dir.string();
  c.filter.pids = {100};
  c.trend.window = 10;
  c.clock = [&] { return Clock{1700000000.0 + now, now}; };
  Sampler sampler(c);
  tree.write("100/stat", stat_line(5000, 300));
  tree.write("100/status", status_text(65536));
  auto s1 = sampler.sweep();
  REQUIRE(s1.processes.size() == 1);
  CHECK(s1.time == 1700000010.0);

  now = 12.0;  // two seconds later: +1 MiB RSS, +500 minor faults, +50 ticks
  tree.write("100/stat", stat_line(5500, 350));
  tree.write("100/status", status_text(65536 + 1024));
  auto s2 = sampler.sweep();
  REQUIRE(s2.processes.size() == 1);
  auto& p = s2.processes[0];
  CHECK(p.rss_growth_bytes_per_s == doctest::Approx(524288.0));
  CHECK(p.minflt_per_s == doctest::Approx(250.0));
  CHECK(p.majflt_per_s == doctest::Approx(0.0));
  CHECK(p.cpu_percent == doctest::Approx(25.0 * 100.0 / double(::sysconf(_SC_CLK_TCK))));
  CHECK_FALSE(p.trend.suspect());  // two samples

  for (int i = 2; i < 6; ++i) {
    now += 2.0;
    tree.write("100/status", status_text(65536 + 1024 * uint64_t(i)));
    s2 = sampler.sweep();
  }
  REQUIRE(s2.processes.size() == 1);
  CHECK(s2.processes[0].trend.samples == 6);
  CHECK(s2.processes[0].trend.rss.rising);
  CHECK(s2.processes[0].trend.rss.slope_per_s == doctest::Approx(524288.0));
  CHECK(s2.processes[0].trend.suspect());

  // Another process under the same pid (new start time): no rate, no inherited trend.
  now += 2.0;
  tree.write("100/stat", stat_line(10, 1, 99999));
  auto s3 = sampler.sweep();
  REQUIRE(s3.processes.size() == 1);
  CHECK_FALSE(s3.processes[0].minflt_per_s);
  CHECK(s3.processes[0].trend.samples == 1);
  CHECK_FALSE(s3.processes[0].trend.suspect());

  // Vanished: no row, and its files are closed.
  fs::remove(tree.dir / "100" / "stat");
  fs::remove_all(tree.dir / "100");
  now += 2.0;
  CHECK(sampler.sweep().processes.empty());
  CHECK(sampler.tracked() == 0);
  CHECK(sampler.held_fds() == 0);
}

TEST_CASE("sampler: over the fd budget, files are opened per sweep instead of kept") {
  SamplerConfig c;
  c.root = "fixtures/proc/basic";
  c.fd_budget = 4;  // room for one process
  Sampler sampler(c);
  auto s = sampler.sweep();
  CHECK(s.processes.size() == 4);
  CHECK(sampler.held_fds() <= 4);
  CHECK(sampler.tracked() == 5);  // every process with a valid stat, kernel thread included
}

TEST_CASE("sampler: status is re-read when statm moves, and at least every 8th sweep") {
  FixtureCopy tree;
  double now = 1.0;
  SamplerConfig c;
  c.root = tree.dir.string();
  c.filter.pids = {100};
  c.clock = [&] { return Clock{now, now}; };
  Sampler sampler(c);
  tree.write("100/statm", "65536 16384 1024 10 0 500 0\n");
  tree.write("100/status", status_text(65536));
  auto rss = [&] {
    now += 1.0;
    auto s = sampler.sweep();
    REQUIRE(s.processes.size() == 1);
    return *s.processes[0].rss_bytes / 1024;
  };
  CHECK(rss() == 65536u);
  tree.write("100/status", status_text(70000));  // statm unchanged: status not re-read yet
  CHECK(rss() == 65536u);
  tree.write("100/statm", "65536 17500 1024 10 0 500 0\n");  // statm moved: re-read
  CHECK(rss() == 70000u);
  tree.write("100/status", status_text(80000));
  // 100 % 8 == 4: the first refresh came 4 sweeps after the first read; since then 0.
  int sweeps = 0;
  while (rss() == 70000u) ++sweeps;
  CHECK(sweeps == 7);  // re-read on the 8th sweep after the last read
}
