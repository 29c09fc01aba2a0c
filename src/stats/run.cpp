#include "ptmem/stats/run.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include "ptmem/stats/screen.hpp"
#include "ptmem/util/output_file.hpp"
#include "ptmem/util/eprint.hpp"

namespace ptmem::stats {
namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int) { g_stop = 1; }

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the sleep between samples must wake up
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  // A closed pipe (ptmem stats | head) ends the run through a failed write instead.
  ::signal(SIGPIPE, SIG_IGN);
}

namespace {

double monotonic_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Sleeps until |deadline| (monotonic seconds) or a stop signal.
void sleep_until(double deadline) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(deadline);
  ts.tv_nsec = static_cast<long>((deadline - double(ts.tv_sec)) * 1e9);
  while (!g_stop && ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace

bool stop_requested() { return g_stop != 0; }

int run_stats(const StatsOptions& o) {
  install_stop_handlers();
  bool screen = !o.batch && ::isatty(1) && ::isatty(0) &&
                (o.format == Format::table || (!o.output.empty() && o.output != "-"));
  util::LineAppender file, out;
  std::string error;
  std::unique_ptr<SampleWriter> writer = make_writer(o.format, o.view);
  util::LineAppender* sink = nullptr;
  if (!o.output.empty() && o.output != "-") {
    if (!file.open(o.output, &error)) {
      util::eprint("ptmem: {}\n", error);
      return 1;
    }
    sink = &file;
  } else if (!screen) {
    out.open("-", &error);
    sink = &out;
  }
  if (sink && !sink->append(writer->begin())) {
    if (sink == &out) return 0;  // stdout already closed by its reader
    util::eprint("ptmem: cannot write '{}'\n", o.output);
    return 1;
  }

  Sampler sampler(o.sampler);
  if (screen) return run_full_screen(sampler, o, sink, sink ? writer.get() : nullptr);

  double interval = double(o.interval.count()) * 1e-6;
  double next = monotonic_now();
  for (uint64_t n = 0; !g_stop && (!o.count || n < *o.count); ++n) {
    if (n > 0) {
      next += interval;
      double now = monotonic_now();
      if (next < now) next = now;  // a slow sweep delays the next one; never a burst
      sleep_until(next);
      if (g_stop) break;
    }
    Sample s = sampler.sweep();
    s.interval_ms = double(o.interval.count()) / 1000.0;
    Arrangement how{o.view.key, o.view.reverse, 0, o.top.value_or(SIZE_MAX), o.view.pss, o.view.threads};
    sampler.arrange(s.processes, how);
    if (o.top && s.processes.size() > *o.top) s.processes.resize(*o.top);
    if (!sink->append(writer->render(s))) {
      if (sink == &out) return 0;  // reader went away: not an error for a monitor
      util::eprint("ptmem: cannot write '{}'\n", o.output);
      return 1;
    }
  }
  return 0;
}

}  // namespace ptmem::stats
