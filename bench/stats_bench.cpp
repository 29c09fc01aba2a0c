// `make bench-stats`: CPU per refresh of `ptmem stats` against `top -b` over the same
// processes.  Starts 1000 idle processes (forks of this program blocked in pause()), then
// runs both tools side by side, alternately, each with a short and a long --count; the
// difference divided by the extra refreshes is the CPU one refresh costs, start-up
// excluded.  Prints both medians and the ratio, then kills exactly the processes it
// started (by pid; they also die with this program through PR_SET_PDEATHSIG).
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

std::vector<pid_t> g_idle;

void kill_idle() {
  for (pid_t pid : g_idle) ::kill(pid, SIGKILL);
  for (pid_t pid : g_idle) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  g_idle.clear();
}

void on_signal(int sig) {
  for (pid_t pid : g_idle) ::kill(pid, SIGKILL);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

bool start_idle(int n) {
  pid_t parent = ::getpid();
  for (int i = 0; i < n; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) {
      std::fprintf(stderr, "bench-stats: fork failed after %d processes: %s\n", i, std::strerror(errno));
      return false;
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(0);  // the bench died before prctl
      for (;;) ::pause();
    }
    g_idle.push_back(pid);
  }
  return true;
}

// Runs |argv| with stdout to /dev/null (or to |capture| when given); returns the CPU
// (user + system) it used, in ms, or -1 on failure.
double cpu_ms(const std::vector<std::string>& argv, std::string* capture = nullptr) {
  int out[2] = {-1, -1};
  if (capture && ::pipe(out) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = capture ? out[1] : ::open("/dev/null", O_WRONLY);
    ::dup2(fd, 1);
    int null_in = ::open("/dev/null", O_RDONLY);
    ::dup2(null_in, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "bench-stats: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  if (capture) {
    ::close(out[1]);
    char buf[65536];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0) capture->append(buf, size_t(n));
    ::close(out[0]);
  }
  int status = 0;
  rusage ru{};
  while (::wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) return -1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench-stats: %s failed (status %d)\n", argv[0].c_str(), status);
    return -1;
  }
  auto ms = [](const timeval& tv) { return double(tv.tv_sec) * 1e3 + double(tv.tv_usec) / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

size_t count_lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: stats_bench PTMEM [PROCESSES [REPS]]\n");
    return 2;
  }
  std::string ptmem = argv[1];
  int processes = argc > 2 ? std::atoi(argv[2]) : 1000;
  int reps = argc > 3 ? std::atoi(argv[3]) : 3;
  constexpr int kShort = 2, kLong = 22;  // refreshes per run
  const std::string interval_s = "0.1";

  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, on_signal);
  std::printf("bench-stats: starting %d idle processes\n", processes);
  if (!start_idle(processes)) {
    kill_idle();
    return 1;
  }

  auto ptmem_argv = [&](int count) {
    return std::vector<std::string>{ptmem, "stats", "--batch", "--interval", interval_s + "s", "--count",
                                    std::to_string(count)};
  };
  auto top_argv = [&](int count) {
    return std::vector<std::string>{"top", "-b", "-d", interval_s, "-n", std::to_string(count)};
  };

  // Both must list every process: a tool that showed fewer would have less to do.
  std::string ptmem_once, top_once;
  int rc = 0;
  if (cpu_ms(ptmem_argv(1), &ptmem_once) < 0 || cpu_ms(top_argv(1), &top_once) < 0) rc = 1;
  std::printf("bench-stats: one refresh lists %zu lines (ptmem stats) and %zu lines (top -b)\n",
              count_lines(ptmem_once), count_lines(top_once));
  if (count_lines(ptmem_once) < size_t(processes) || count_lines(top_once) < size_t(processes)) {
    std::fprintf(stderr, "bench-stats: a tool did not list every process\n");
    rc = 1;
  }

  std::vector<double> ptmem_per, top_per;
  for (int r = 0; r < reps && rc == 0; ++r) {
    // Alternate the tools so both see the same machine conditions.
    double p_short = cpu_ms(ptmem_argv(kShort)), t_short = cpu_ms(top_argv(kShort));
    double p_long = cpu_ms(ptmem_argv(kLong)), t_long = cpu_ms(top_argv(kLong));
    if (p_short < 0 || t_short < 0 || p_long < 0 || t_long < 0) {
      rc = 1;
      break;
    }
    ptmem_per.push_back((p_long - p_short) / (kLong - kShort));
    top_per.push_back((t_long - t_short) / (kLong - kShort));
    std::printf("bench-stats: run %d: ptmem %.2f ms, top %.2f ms per refresh\n", r + 1, ptmem_per.back(),
                top_per.back());
  }
  kill_idle();
  std::printf("bench-stats: ended the %d processes it started\n", processes);
  if (rc != 0) return rc;

  double p = median(ptmem_per), t = median(top_per);
  std::printf("\nstats: CPU per refresh over %d idle processes (+ the rest of the machine), median of %d\n",
              processes, reps);
  std::printf("  top -b        %7.2f ms\n", t);
  std::printf("  ptmem stats   %7.2f ms\n", p);
  if (t > 0 && p > 0)
    std::printf("  ratio ptmem/top = %.2f  (ptmem uses %.1fx %s CPU per refresh)\n", p / t,
                p < t ? t / p : p / t, p < t ? "less" : "more");
  return p < t ? 0 : 1;
}
