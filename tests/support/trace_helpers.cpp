#include "trace_helpers.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace ptmem::test {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A test writing to the stdin of a child that already died must get EPIPE (write_stdin then
// throws and the test fails cleanly) instead of SIGPIPE killing the whole test binary.  A
// handler rather than SIG_IGN: handlers reset at exec, so children keep the default.
void on_sigpipe(int) {}
[[maybe_unused]] const bool sigpipe_handled = [] {
  struct sigaction sa {};
  sa.sa_handler = on_sigpipe;
  sigemptyset(&sa.sa_mask);
  return ::sigaction(SIGPIPE, &sa, nullptr) == 0;
}();

bool is_source_root(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "samples" / "trace_common.h", ec);
}

fs::path source_root() {
  static const fs::path root = [] {
    if (const char* env = std::getenv("PTMEM_SOURCE_DIR"); env && *env) return fs::path(env);
    std::vector<fs::path> candidates{fs::current_path(), fs::current_path().parent_path()};
    if (const char* b = std::getenv("BUILD_DIR"); b && *b)
      candidates.push_back(fs::absolute(b).parent_path());
    fs::path here = fs::path(__FILE__);
    if (here.is_absolute()) candidates.push_back(here.parent_path().parent_path().parent_path());
    for (auto& c : candidates)
      if (is_source_root(c)) return fs::canonical(c);
    throw std::runtime_error("cannot find the source tree (samples/trace_common.h); set PTMEM_SOURCE_DIR");
  }();
  return root;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

const Json& empty_array() {
  static const Json a = Json::array();
  return a;
}

std::string str_field(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

const Json* site_frame(const Json& group) {
  if (!group.is_object()) return nullptr;
  auto it = group.find("stack");
  if (it == group.end() || !it->is_array() || it->empty()) return nullptr;
  return &(*it)[0];
}

long int_field(const Json& j, const char* key) {
  if (!j.is_object()) return LONG_MIN;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return LONG_MIN;
  return it->get<long>();
}

}  // namespace

std::string sample_source(const std::string& rel) { return (source_root() / "samples" / rel).string(); }

int marker_line(const std::string& rel, const std::string& marker) {
  std::ifstream in(sample_source(rel));
  if (!in) throw std::runtime_error("cannot read " + sample_source(rel));
  // Only "// @leak NAME" at the end of a code line counts; prose mentioning a marker does not.
  const std::string needle = "// " + marker;
  std::string line;
  int number = 0, found = 0, count = 0;
  while (std::getline(in, line)) {
    ++number;
    for (size_t pos = line.find(needle); pos != std::string::npos; pos = line.find(needle, pos + 1)) {
      size_t end = pos + needle.size();
      if (end == line.size() || std::isspace(static_cast<unsigned char>(line[end]))) {
        found = number;
        ++count;
      }
    }
  }
  if (count != 1)
    throw std::runtime_error("marker '" + needle + "' found " + std::to_string(count) + " times in " + rel);
  return found;
}

std::string TraceRun::describe() const {
  std::ostringstream o;
  o << "ptmem exit status " << status << "\n--- ptmem stderr ---\n" << err
    << "\n--- program stdout ---\n" << out << "\n--- report (" << report_path << ") ---\n";
  if (parsed)
    o << "leaks:\n" << leak_table(report) << "fd_leaks:\n" << fd_table(report)
      << "summary: " << (report.contains("summary") ? report["summary"].dump() : "(none)")
      << "\ntarget: " << (report.contains("target") ? report["target"].dump() : "(none)") << "\n";
  else
    o << "(not parsed: " << parse_error << ")\n";
  return o.str();
}

bool load_report(const std::string& path, Json& out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    if (error) *error = "no report file " + path;
    return false;
  }
  try {
    out = Json::parse(in);
  } catch (const std::exception& e) {
    if (error) *error = std::string("invalid JSON: ") + e.what();
    return false;
  }
  if (!out.is_object()) {
    if (error) *error = "report is not a JSON object";
    return false;
  }
  return true;
}

TraceRun launch_traced(const std::vector<std::string>& program, const std::vector<std::string>& options,
                       std::chrono::milliseconds timeout, const std::vector<std::string>& env) {
  TraceRun r;
  r.report_path = temp_dir() + "/report.json";
  std::vector<std::string> argv{ptmem(), "launch", "--format", "json", "-o", r.report_path};
  argv.insert(argv.end(), kEveryLeak.begin(), kEveryLeak.end());
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  auto res = run(argv, timeout, env);
  r.status = res.status;
  r.out = res.out;
  r.err = res.err;
  r.parsed = load_report(r.report_path, r.report, &r.parse_error);
  return r;
}

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string frame_file(const Json& frame) { return base_name(str_field(frame, "file")); }
int frame_line(const Json& frame) {
  long v = int_field(frame, "line");
  return v == LONG_MIN ? -1 : static_cast<int>(v);
}
std::string frame_function(const Json& frame) { return str_field(frame, "function"); }
std::string frame_module(const Json& frame) { return base_name(str_field(frame, "module")); }

const Json& leaks_of(const Json& report) {
  if (!report.is_object()) return empty_array();
  auto it = report.find("leaks");
  return it != report.end() && it->is_array() ? *it : empty_array();
}

std::vector<Json> leaks_at(const Json& report, const std::string& file, int line) {
  std::vector<Json> out;
  for (auto& g : leaks_of(report))
    if (auto* f = site_frame(g); f && frame_file(*f) == file && frame_line(*f) == line) out.push_back(g);
  return out;
}

std::vector<Json> leaks_in_function(const Json& report, const std::string& function) {
  std::vector<Json> out;
  for (auto& g : leaks_of(report))
    if (auto* f = site_frame(g); f && frame_function(*f) == function) out.push_back(g);
  return out;
}

std::vector<Json> leaks_through(const Json& report, const std::string& file, int line) {
  std::vector<Json> out;
  for (auto& g : leaks_of(report)) {
    if (!g.contains("stack") || !g["stack"].is_array()) continue;
    for (auto& f : g["stack"])
      if (frame_file(f) == file && frame_line(f) == line) {
        out.push_back(g);
        break;
      }
  }
  return out;
}

Totals totals(const std::vector<Json>& groups) {
  Totals t;
  for (auto& g : groups) {
    ++t.groups;
    long b = int_field(g, "blocks"), s = int_field(g, "bytes");
    t.blocks += b == LONG_MIN ? 0 : b;
    t.bytes += s == LONG_MIN ? 0 : s;
  }
  return t;
}

std::string expect_site(const Json& report, const std::string& file, int line, long groups, long blocks,
                        long bytes) {
  Totals t = totals(leaks_at(report, file, line));
  if (t.groups == groups && t.blocks == blocks && t.bytes == bytes) return "";
  std::ostringstream o;
  o << file << ":" << line << ": expected " << groups << " group(s), " << blocks << " block(s), " << bytes
    << " byte(s); found " << t.groups << " group(s), " << t.blocks << " block(s), " << t.bytes << " byte(s)";
  return o.str();
}

long summary(const Json& report, const std::string& field) {
  if (!report.is_object() || !report.contains("summary")) return LONG_MIN;
  return int_field(report["summary"], field.c_str());
}

std::string leak_table(const Json& report) {
  std::ostringstream o;
  for (auto& g : leaks_of(report)) {
    o << "  " << int_field(g, "blocks") << " blocks " << int_field(g, "bytes") << " bytes:";
    if (g.contains("stack") && g["stack"].is_array())
      for (auto& f : g["stack"])
        o << " [" << frame_file(f) << ":" << frame_line(f) << " " << frame_function(f) << " "
          << frame_module(f) << "]";
    o << "\n";
  }
  return o.str();
}

std::string fd_table(const Json& report) {
  std::ostringstream o;
  for (auto& e : fd_leaks_of(report)) {
    o << "  fd " << int_field(e, "fd") << " " << str_field(e, "kind") << " " << str_field(e, "target")
      << " origin=" << str_field(e, "origin");
    if (e.contains("stack") && e["stack"].is_array() && !e["stack"].empty())
      o << " site " << frame_file(e["stack"][0]) << ":" << frame_line(e["stack"][0]);
    o << "\n";
  }
  return o.str();
}

const Json& fd_leaks_of(const Json& report) {
  if (!report.is_object()) return empty_array();
  auto it = report.find("fd_leaks");
  return it != report.end() && it->is_array() ? *it : empty_array();
}

const Json* fd_leak(const Json& report, int fd) {
  for (auto& e : fd_leaks_of(report))
    if (int_field(e, "fd") == fd) return &e;
  return nullptr;
}

std::map<std::string, int> fd_lines(const std::string& program_output) {
  std::map<std::string, int> out;
  std::istringstream in(program_output);
  std::string word, name;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    int n;
    if (l >> word >> name >> n && word == "fd") out[name] = n;
  }
  return out;
}

std::vector<int> inheritable_fds() {
  std::vector<int> fds{0, 1, 2};
  for (auto& entry : fs::directory_iterator("/proc/self/fd")) {
    int fd = std::atoi(entry.path().filename().c_str());
    if (fd <= 2) continue;
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) fds.push_back(fd);
  }
  std::sort(fds.begin(), fds.end());
  return fds;
}

bool one_line(const std::string& err, const std::string& prefix) {
  std::string t = trim(err);
  return !t.empty() && t.find('\n') == std::string::npos && t.rfind(prefix, 0) == 0;
}

char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');  // the command name may contain spaces and parentheses
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

bool wait_for_state(pid_t pid, const std::string& states, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    char s = proc_state(pid);
    if (s && states.find(s) != std::string::npos) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

AttachSession::AttachSession(pid_t target, const std::vector<std::string>& options) : target_(target) {
  report_path_ = temp_dir() + "/report.json";
  Child::Options o;
  o.argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", ptmem(), "attach", "--format", "json", "-o",
            report_path_};
  o.argv.insert(o.argv.end(), kEveryLeak.begin(), kEveryLeak.end());
  o.argv.insert(o.argv.end(), options.begin(), options.end());
  o.argv.push_back(std::to_string(target));
  child_ = std::make_unique<Child>(o);
}

bool AttachSession::read_until(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    auto line = child_->read_line(left);
    if (!line) return false;
    log_ += *line + "\n";
    if (line->find("ptmem: detached from process") != std::string::npos) saw_detached_ = true;
    if (line->find(needle) != std::string::npos) return true;
  }
}

bool AttachSession::wait_attached(std::chrono::milliseconds timeout) {
  return read_until("ptmem: attached to process " + std::to_string(target_), timeout);
}

bool AttachSession::detach(int sig, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  ::kill(child_->pid(), sig);
  bool detached = saw_detached_ || read_until("ptmem: detached from process " + std::to_string(target_), timeout);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return wait_exit(std::max(left, std::chrono::milliseconds(1))) && detached;
}

bool AttachSession::wait_exit(std::chrono::milliseconds timeout) {
  if (status_ >= 0) return true;
  auto st = child_->wait(timeout);
  // The rest of ptmem's stderr (the Child buffered it while waiting).
  std::string rest = child_->read_rest_stdout(std::chrono::milliseconds(st ? 2000 : 0));
  log_ += rest;
  if (rest.find("ptmem: detached from process") != std::string::npos) saw_detached_ = true;
  if (!st) return false;
  status_ = Child::exit_code(*st);
  return true;
}

bool AttachSession::load() { return load_report(report_path_, report_, &parse_error_); }

std::string AttachSession::describe() const {
  std::ostringstream o;
  o << "ptmem attach " << target_ << ": exit status " << status_ << "\n--- ptmem stderr ---\n" << log_
    << "--- report ---\n";
  if (report_.is_object())
    o << "leaks:\n" << leak_table(report_) << "fd_leaks:\n" << fd_table(report_) << "summary: "
      << (report_.contains("summary") ? report_["summary"].dump() : "(none)") << "\ntarget: "
      << (report_.contains("target") ? report_["target"].dump() : "(none)") << "\n";
  else
    o << "(not parsed: " << parse_error_ << ")\n";
  return o.str();
}

std::optional<std::string> expect_line(Child& child, const std::string& needle, std::string& seen,
                                       std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = child.read_line(left);
    if (!line) return std::nullopt;
    seen += *line + "\n";
    if (line->find(needle) != std::string::npos) return line;
  }
}

}  // namespace ptmem::test

namespace ptmem::test {

void check_sites(const Json& report, const std::string& file, std::span<const SampleSite> sites) {
  for (const SampleSite& s : sites) {
    CAPTURE(s.marker);
    CHECK(expect_site(report, file, marker_line(file, s.marker), s.groups, s.blocks, s.bytes) == "");
  }
}

}  // namespace ptmem::test
