#include "ptmem/stats/sampler.hpp"

#include <absl/container/flat_hash_map.h>
#include <algorithm>
#include <charconv>
#include <dirent.h>
#include <linux/magic.h>
#include <queue>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "ptmem/proc/cmdline.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/proc/meminfo.hpp"
#include "ptmem/proc/process_files.hpp"
#include "ptmem/proc/smaps_rollup.hpp"
#include "ptmem/proc/stat.hpp"
#include "ptmem/proc/statm.hpp"
#include "ptmem/proc/status_memory.hpp"

namespace ptmem::stats {
namespace {

constexpr unsigned kFilesPerProcess = 4;  // stat, statm, status, fd directory
// status costs the kernel about three times what statm does (measured.md: 8.5 vs 4.1 ms
// per 1000 processes), so it is re-read only when statm moved, and at least every
// kStatusRefresh sweeps for what statm cannot show (swap, uid, the file/shmem split).
constexpr unsigned kStatusRefresh = 8;
constexpr size_t kReservedFds = 128;      // output, terminal, smaps and thread reads

double seconds(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

bool parse_pid(const char* s, pid_t& out) {
  std::string_view v = s;
  if (v.empty() || v[0] < '1' || v[0] > '9') return false;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out, 10);
  return ec == std::errc() && p == v.data() + v.size();
}

std::optional<uint64_t> kb_to_bytes(const std::optional<uint64_t>& kb) {
  if (!kb) return std::nullopt;
  return *kb * 1024;
}

// Per-second rate of a counter; unknown when the counter went backwards (a pid that was
// reused under us) or no time passed.
std::optional<double> rate(uint64_t now, uint64_t before, double dt) {
  if (dt <= 0 || now < before) return std::nullopt;
  return double(now - before) / dt;
}

}  // namespace

Clock real_clock() { return {seconds(CLOCK_REALTIME), seconds(CLOCK_MONOTONIC)}; }

struct Sampler::Tracked {
  Tracked(std::string dir, bool keep, size_t window) : files(std::move(dir), keep), kept(keep), window(window) {}
  proc::ProcessFiles files;
  bool kept;
  uint64_t generation = 0;
  std::optional<uint64_t> starttime;
  // The previous reading, for per-second rates.
  bool has_prev = false;
  double prev_time = 0;
  std::optional<uint64_t> prev_rss;
  uint64_t prev_minflt = 0, prev_majflt = 0, prev_ticks = 0;
  // The last status read, and the statm it went with.
  bool have_status = false;
  proc::StatusMemory status;
  std::optional<proc::Statm> statm_at_status;
  unsigned status_age = 0;
  TrendWindow window;
  // Command line, re-read only when the name changes (after an execve).
  bool command_read = false;
  std::string command_comm, command;
  // --name result, cached for the same reason.
  std::optional<bool> name_match;
  std::string name_match_comm;
  struct ThreadPrev {
    double time;
    uint64_t minflt, majflt, ticks;
    uint64_t generation;
  };
  absl::flat_hash_map<pid_t, ThreadPrev> threads;
  uint64_t thread_generation = 0;
};

struct Sampler::Impl {
  absl::flat_hash_map<pid_t, std::unique_ptr<Tracked>> tracked;
  absl::flat_hash_map<uid_t, std::string> users;
};

Sampler::Sampler(SamplerConfig config) : config_(std::move(config)), impl_(std::make_unique<Impl>()) {
  struct statfs fs{};
  procfs_ = ::statfs(config_.root.c_str(), &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
  page_size_ = ::sysconf(_SC_PAGESIZE);
  if (page_size_ <= 0) page_size_ = 4096;
  long ticks = ::sysconf(_SC_CLK_TCK);
  clock_ticks_ = ticks > 0 ? double(ticks) : 100.0;
  if (config_.fd_budget == 0) {
    // Keeping 3 files per process open needs more than the usual soft limit of 1024 on a
    // busy machine; the hard limit is ours to take.
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      if (rl.rlim_cur < rl.rlim_max) {
        rlimit raised = rl;
        raised.rlim_cur = std::min<rlim_t>(rl.rlim_max, 1 << 20);
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
      }
      size_t soft = rl.rlim_cur == RLIM_INFINITY ? (1 << 20) : size_t(rl.rlim_cur);
      config_.fd_budget = soft > kReservedFds ? soft - kReservedFds : 0;
    }
  }
}

Sampler::~Sampler() = default;

size_t Sampler::tracked() const { return impl_->tracked.size(); }

size_t Sampler::held_fds() const {
  size_t n = 0;
  for (auto& [pid, t] : impl_->tracked) n += t->files.held_fds();
  return n;
}

Sampler::Tracked& Sampler::track(pid_t pid, bool& created) {
  auto& slot = impl_->tracked[pid];
  created = !slot;
  if (!slot) {
    bool keep = (kept_processes_ + 1) * kFilesPerProcess <= config_.fd_budget;
    if (keep) ++kept_processes_;
    slot = std::make_unique<Tracked>(config_.root + "/" + std::to_string(pid), keep, config_.trend.window);
  }
  return *slot;
}

const std::string& Sampler::user_of(uid_t uid) {
  auto it = impl_->users.find(uid);
  if (it == impl_->users.end()) it = impl_->users.emplace(uid, user_name(uid)).first;
  return it->second;
}

const std::string& Sampler::command_of(Tracked& t, pid_t pid, const std::string& comm) {
  if (!t.command_read || t.command_comm != comm) {
    auto cmd = proc::read_cmdline(pid, config_.root);
    t.command = cmd && !cmd->empty() ? std::move(*cmd) : "[" + comm + "]";
    t.command_comm = comm;
    t.command_read = true;
  }
  return t.command;
}

Sample Sampler::sweep() {
  Sample s;
  Clock now = config_.clock();
  s.index = ++generation_;
  s.time = now.unix_seconds;
  s.monotonic = now.monotonic_seconds;
  const std::string& root = config_.root;
  const Filter& filter = config_.filter;

  if (auto mi = proc::read_meminfo(root)) {
    s.system.mem_total_bytes = kb_to_bytes(mi->mem_total_kb);
    s.system.mem_available_bytes = kb_to_bytes(mi->mem_available_kb);
    s.system.swap_used_bytes = kb_to_bytes(mi->swap_used_kb());
  }
  s.system.threads = proc::read_loadavg_threads(root);

  pids_.clear();
  if (DIR* dir = ::opendir(root.c_str())) {
    while (auto* e = ::readdir(dir)) {
      pid_t pid;
      if (parse_pid(e->d_name, pid)) pids_.push_back(pid);
    }
    ::closedir(dir);
  }
  s.system.processes = pids_.size();
  s.processes.reserve(filter.pids.empty() ? pids_.size() : filter.pids.size());

  auto& tracked = impl_->tracked;
  for (pid_t pid : pids_) {
    if (!filter.wants_pid(pid)) continue;
    bool created = false;
    Tracked* t = &track(pid, created);
    auto r = t->files.read_stat(buf_);
    if (r == proc::ReadResult::gone && !created) {
      // The process we knew has exited; the pid is listed again, so it was reused.
      if (t->kept) --kept_processes_;
      tracked.erase(pid);
      t = &track(pid, created);
      r = t->files.read_stat(buf_);
    }
    if (r != proc::ReadResult::ok) continue;  // gone mid-sweep, or hidden from us
    auto st = proc::parse_stat(buf_.view());
    if (!st) continue;  // without stat we know nothing true about it
    if (t->starttime && *t->starttime != st->starttime) {
      // Same pid, another process (seen when files are not kept open): fresh history.
      if (t->kept) --kept_processes_;
      tracked.erase(pid);
      t = &track(pid, created);
    }
    t->starttime = st->starttime;
    t->generation = generation_;
    if (st->kernel_thread()) {
      t->files.drop_memory_files();
      continue;
    }
    if (filter.name) {
      if (!t->name_match || t->name_match_comm != st->comm) {
        t->name_match = filter.matches_name(st->comm, command_of(*t, pid, st->comm));
        t->name_match_comm = st->comm;
      }
      if (!*t->name_match) {
        t->files.drop_memory_files();
        continue;
      }
    }

    ProcessRow row;
    row.pid = pid;
    row.ppid = st->ppid;
    row.name = st->comm;
    row.state = st->state;
    if (st->num_threads > 0) row.thread_count = static_cast<uint32_t>(st->num_threads);

    std::optional<proc::Statm> statm;
    // A failed statm read only means "re-read status", which tells whether it is gone.
    if (t->files.read_statm(buf_) == proc::ReadResult::ok) statm = proc::parse_statm(buf_.view());
    bool stale = !t->have_status || !statm || statm != t->statm_at_status ||
                 ++t->status_age >= kStatusRefresh;
    if (stale) {
      auto sr = t->files.read_status(buf_);
      if (sr == proc::ReadResult::gone) continue;
      t->have_status = sr == proc::ReadResult::ok;
      t->status = t->have_status ? proc::parse_status_memory(buf_.view()) : proc::StatusMemory{};
      // Staggered by pid, so the periodic re-reads of idle processes spread over sweeps.
      t->status_age = t->statm_at_status ? 0 : unsigned(pid) % kStatusRefresh;
      t->statm_at_status = statm;
    }
    const proc::StatusMemory& m = t->status;
    row.uid = m.euid;
    row.vsz_bytes = kb_to_bytes(m.vm_size_kb);
    row.rss_bytes = kb_to_bytes(m.vm_rss_kb);
    row.anon_bytes = kb_to_bytes(m.rss_anon_kb);
    row.file_bytes = kb_to_bytes(m.rss_file_kb);
    row.shmem_bytes = kb_to_bytes(m.rss_shmem_kb);
    row.swap_bytes = kb_to_bytes(m.vm_swap_kb);
    // stat carries VSZ and RSS too (without the split): use it when status said nothing.
    if (!row.vsz_bytes) row.vsz_bytes = st->vsize;
    if (!row.rss_bytes && st->rss_pages >= 0) row.rss_bytes = uint64_t(st->rss_pages) * uint64_t(page_size_);
    if (row.uid) row.user = user_of(*row.uid);
    if (filter.uid && row.uid != filter.uid) continue;
    row.fds = t->files.fd_count(procfs_);

    if (row.rss_bytes && s.system.mem_total_bytes && *s.system.mem_total_bytes > 0)
      row.mem_percent = 100.0 * double(*row.rss_bytes) / double(*s.system.mem_total_bytes);
    uint64_t ticks = st->utime + st->stime;
    if (t->has_prev) {
      double dt = now.monotonic_seconds - t->prev_time;
      if (dt > 0 && row.rss_bytes && t->prev_rss)
        row.rss_growth_bytes_per_s = (double(*row.rss_bytes) - double(*t->prev_rss)) / dt;
      row.minflt_per_s = rate(st->minflt, t->prev_minflt, dt);
      row.majflt_per_s = rate(st->majflt, t->prev_majflt, dt);
      if (auto r = rate(ticks, t->prev_ticks, dt)) row.cpu_percent = 100.0 * *r / clock_ticks_;
    }
    t->has_prev = true;
    t->prev_time = now.monotonic_seconds;
    t->prev_rss = row.rss_bytes;
    t->prev_minflt = st->minflt;
    t->prev_majflt = st->majflt;
    t->prev_ticks = ticks;

    auto as_double = [](const auto& v) -> std::optional<double> {
      if (!v) return std::nullopt;
      return double(*v);
    };
    t->window.push(now.monotonic_seconds, as_double(row.rss_bytes), as_double(row.fds));
    row.trend = t->window.evaluate(config_.trend);
    s.processes.push_back(std::move(row));
  }

  // Forget processes that exited (or left the listing): closes their files.
  for (auto it = tracked.begin(); it != tracked.end();) {
    if (it->second->generation != generation_) {
      if (it->second->kept) --kept_processes_;
      tracked.erase(it++);
    } else {
      ++it;
    }
  }
  return s;
}

void Sampler::read_smaps(ProcessRow& row) {
  row.pss_read = true;
  auto rollup = proc::read_smaps_rollup(row.pid, config_.root);
  if (!rollup) return;
  if (rollup->pss_kb) row.pss_bytes = *rollup->pss_kb * 1024;
  if (auto uss = rollup->uss_kb()) row.uss_bytes = *uss * 1024;
}

void Sampler::read_threads(ProcessRow& row, double now) {
  row.threads_read = true;
  row.threads.clear();
  auto it = impl_->tracked.find(row.pid);
  Tracked* t = it == impl_->tracked.end() ? nullptr : it->second.get();
  uint64_t gen = t ? ++t->thread_generation : 0;
  for (pid_t tid : proc::list_tasks(row.pid, config_.root)) {
    auto st = proc::read_task_stat(row.pid, tid, config_.root);
    if (!st) continue;  // the thread exited since the listing
    ThreadRow tr;
    tr.tid = tid;
    tr.name = st->comm;
    tr.state = st->state;
    uint64_t ticks = st->utime + st->stime;
    if (t) {
      auto [prev, fresh] = t->threads.try_emplace(tid, Tracked::ThreadPrev{now, st->minflt, st->majflt, ticks, gen});
      if (!fresh) {
        double dt = now - prev->second.time;
        if (auto r = rate(ticks, prev->second.ticks, dt)) tr.cpu_percent = 100.0 * *r / clock_ticks_;
        tr.minflt_per_s = rate(st->minflt, prev->second.minflt, dt);
        tr.majflt_per_s = rate(st->majflt, prev->second.majflt, dt);
        prev->second = {now, st->minflt, st->majflt, ticks, gen};
      }
    }
    row.threads.push_back(std::move(tr));
  }
  if (t) {
    for (auto p = t->threads.begin(); p != t->threads.end();) {
      if (p->second.generation != gen) t->threads.erase(p++);
      else ++p;
    }
  }
}

void Sampler::arrange(std::vector<ProcessRow>& rows, const Arrangement& how) {
  size_t end = how.first >= rows.size() ? rows.size() : std::min(rows.size(), how.first + std::min(how.count, rows.size()));
  bool want_smaps = how.pss || needs_smaps(how.key);
  if (needs_smaps(how.key)) {
    if (how.reverse) {
      for (auto& r : rows)
        if (!r.pss_read) read_smaps(r);
    } else {
      // Exact top-|end| by PSS (or USS) without reading every process: both are <= RSS.
      sort_rows(rows, SortKey::rss, false);
      std::priority_queue<double, std::vector<double>, std::greater<double>> best;  // min-heap
      for (auto& r : rows) {
        if (best.size() >= end && end > 0 && r.rss_bytes && double(*r.rss_bytes) < best.top()) continue;
        if (!r.pss_read) read_smaps(r);
        if (auto v = sort_value(r, how.key)) {
          best.push(*v);
          if (best.size() > end) best.pop();
        }
      }
    }
  }
  sort_rows(rows, how.key, how.reverse);
  double now = config_.clock().monotonic_seconds;
  for (size_t i = how.first; i < end; ++i) {
    auto& row = rows[i];
    auto it = impl_->tracked.find(row.pid);
    if (it != impl_->tracked.end()) row.command = command_of(*it->second, row.pid, row.name);
    else if (row.command.empty()) row.command = "[" + row.name + "]";
    if (want_smaps && !row.pss_read) read_smaps(row);
    if (how.threads) read_threads(row, now);
  }
}

}  // namespace ptmem::stats
