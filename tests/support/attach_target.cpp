#include "attach_target.hpp"

#include <cstdio>
#include <cstring>
#include <sys/wait.h>
#include <thread>

#include "trace_helpers.hpp"

namespace ptmem::test {

using namespace std::chrono_literals;

unsigned long sum_squares(long n) {
  unsigned long s = 0;
  for (long i = 0; i < n; i++) s += static_cast<unsigned long>(i) * static_cast<unsigned long>(i) % 1000003ul;
  return s;
}

Child start(const std::vector<std::string>& argv) {
  Child::Options o;
  o.argv = argv;
  o.pipe_stdin = true;
  return Child(o);
}


bool sum_ok(Child& t, long n, std::string& seen) {
  std::string prefix = "sum " + std::to_string(n) + " ";
  t.write_stdin("sum " + std::to_string(n) + "\n");
  auto line = expect_line(t, prefix, seen);
  return line && *line == prefix + std::to_string(sum_squares(n));
}


long rounds(Child& t, std::string& seen) {
  t.write_stdin("check\n");
  auto line = expect_line(t, "check ", seen);
  long bad = -1, r = -1;
  if (!line || std::sscanf(line->c_str(), "check bad=%ld rounds=%ld", &bad, &r) != 2 || bad != 0) return -1;
  return r;
}


std::string fate(Child& t) {
  auto st = t.wait(2s);
  if (!st) return "still running";
  if (WIFSIGNALED(*st)) return std::string("killed by signal ") + strsignal(WTERMSIG(*st));
  return "exited with status " + std::to_string(WEXITSTATUS(*st));
}



std::string progresses(Child& t, long after, std::string& seen) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  try {
    while (std::chrono::steady_clock::now() < deadline) {
      long r = rounds(t, seen);
      if (r < 0) return "no good answer to check; target " + fate(t);
      if (r > after) return "";
      std::this_thread::sleep_for(10ms);  // polling the target's counter, not waiting for luck
    }
  } catch (const std::exception& e) {
    return std::string(e.what()) + "; target " + fate(t);
  }
  return "no progress in 20 s";
}

bool exited_zero(Child& t) {
  auto st = t.wait(30s);
  return st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0;
}

pid_t ready_pid(const std::optional<std::string>& line) {
  return line ? static_cast<pid_t>(std::stol(line->substr(line->find(' ') + 1))) : -1;
}


}  // namespace ptmem::test
