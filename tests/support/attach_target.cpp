#include "attach_target.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
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

std::vector<Mapping> maps_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::vector<Mapping> out;
  std::string line;
  while (std::getline(in, line)) {
    Mapping m;
    char range[64], perms[8], dev[16];
    unsigned long inode = 0;
    int used = 0;
    if (std::sscanf(line.c_str(), "%63s %7s %lx %15s %lu %n", range, perms, &m.offset, dev, &inode, &used) < 5) continue;
    std::sscanf(range, "%lx-%lx", &m.start, &m.end);
    m.perms = perms;
    m.path = line.substr(static_cast<size_t>(used));
    out.push_back(m);
  }
  return out;
}

std::string code_differs(pid_t pid) {
  std::ifstream mem("/proc/" + std::to_string(pid) + "/mem", std::ios::binary);
  for (const Mapping& m : maps_of(pid)) {
    if (m.perms.find('x') == std::string::npos || m.path.empty() || m.path[0] != '/') continue;
    std::ifstream file(m.path, std::ios::binary);
    std::string want(m.end - m.start, '\0'), have(m.end - m.start, '\0');
    file.seekg(static_cast<std::streamoff>(m.offset));
    file.read(want.data(), static_cast<std::streamsize>(want.size()));
    want.resize(static_cast<size_t>(file.gcount()));  // the file may end inside the last page
    mem.clear();
    mem.seekg(static_cast<std::streamoff>(m.start));
    mem.read(have.data(), static_cast<std::streamsize>(want.size()));
    have.resize(want.size());
    if (!mem) return m.path + ": unreadable";
    if (have != want) {
      size_t at = 0;
      while (at < want.size() && have[at] == want[at]) ++at;
      std::ostringstream o;
      o << m.path << " differs at file offset 0x" << std::hex << m.offset + at;
      return o.str();
    }
  }
  return "";
}

std::string leftovers(pid_t pid) {
  std::string out;
  for (const Mapping& m : maps_of(pid))
    if (m.path.find("ptmem") != std::string::npos || (m.path.empty() && m.perms.find('x') != std::string::npos))
      out += m.perms + " " + m.path + "\n";
  return out;
}

pid_t tracer_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("TracerPid:", 0) == 0) return std::stoi(line.substr(10));
  return -1;
}

std::string stopped_threads(pid_t pid) {
  std::string out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(e.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) continue;
    char state = text[close + 2];
    if (state == 'T' || state == 't') out += e.path().filename().string() + ":" + state + " ";
  }
  return out;
}

}  // namespace ptmem::test
