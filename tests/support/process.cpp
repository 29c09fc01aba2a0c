#include "process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

extern char** environ;

namespace ptmem::test {
namespace {

using Clock = std::chrono::steady_clock;

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
}

}  // namespace

Child::Child(const Options& options) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (options.pipe_stdin) make_pipe(in);
  if (options.capture_stdout) make_pipe(out);
  if (options.capture_stderr) make_pipe(err);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (auto& e : options.env) env_strings.push_back(e);
  std::vector<char*> envp, argv;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = options.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // A child that died must show up as a write error, not kill the test binary.
  static const bool sigpipe_ignored = [] { ::signal(SIGPIPE, SIG_IGN); return true; }();
  (void)sigpipe_ignored;
  // Between fork and exec the child still has this binary's handlers (doctest's crash
  // handlers among them): a signal sent to the new pid in that window would run them in the
  // copy and print "test case CRASHED" for a test that did nothing wrong.  So signals stay
  // blocked over the fork, the child resets every handler to its default, and only then
  // takes what was sent.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_ = ::fork();
  if (pid_ == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // SIGPIPE too
    if (options.new_process_group) ::setpgid(0, 0);
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (in[0] >= 0) ::dup2(in[0], 0);
    if (out[1] >= 0) ::dup2(out[1], 1);
    if (err[1] >= 0) ::dup2(err[1], 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::dprintf(2, "exec %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  if (pid_ > 0 && options.new_process_group) ::setpgid(pid_, pid_);  // whichever runs first
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (in[0] >= 0) ::close(in[0]);
  if (out[1] >= 0) ::close(out[1]);
  if (err[1] >= 0) ::close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
}

Child::Child(Child&& o) noexcept
    : pid_(o.pid_), reaped_(o.reaped_), in_(o.in_), out_(o.out_), err_(o.err_),
      out_buf_(std::move(o.out_buf_)), err_buf_(std::move(o.err_buf_)) {
  o.pid_ = -1;
  o.in_ = o.out_ = o.err_ = -1;
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int st;
    while (::waitpid(pid_, &st, __WALL) < 0 && errno == EINTR) {
    }
  }
  for (int fd : {in_, out_, err_})
    if (fd >= 0) ::close(fd);
}

bool Child::read_some(int fd, std::string& buf, std::chrono::milliseconds timeout) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0) return false;
  char tmp[4096];
  ssize_t n = ::read(fd, tmp, sizeof tmp);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto nl = out_buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || !read_some(out_, out_buf_, left)) return std::nullopt;
  }
}

std::optional<std::string> Child::wait_for_line(const std::string& needle,
                                                std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = read_line(left);
    if (!line) return std::nullopt;
    if (line->find(needle) != std::string::npos) return line;
  }
}

std::string Child::read_rest_stdout(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || !read_some(out_, out_buf_, left)) break;
  }
  return std::exchange(out_buf_, {});
}

std::string Child::read_rest_stderr(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || !read_some(err_, err_buf_, left)) break;
  }
  return std::exchange(err_buf_, {});
}

void Child::write_stdin(const std::string& data) {
  if (in_ < 0) throw std::runtime_error("stdin is not a pipe");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(in_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("write to child stdin failed: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
}

void Child::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

void Child::signal(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return std::nullopt;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int st;
    pid_t r = ::waitpid(pid_, &st, WNOHANG | __WALL);
    if (r == pid_ && (WIFEXITED(st) || WIFSIGNALED(st))) {
      reaped_ = true;
      return st;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    // Drain pipes meanwhile so a chatty child never blocks on a full pipe.
    pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
    int n = ::poll(fds, 2, 10);
    if (n > 0) {
      if (fds[0].revents & POLLIN) read_some(out_, out_buf_, std::chrono::milliseconds(0));
      if (fds[1].revents & POLLIN) read_some(err_, err_buf_, std::chrono::milliseconds(0));
    }
  }
}

int Child::exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::vector<std::string>& env) {
  Child::Options o;
  o.argv = argv;
  o.env = env;
  Child c(o);
  RunResult r;
  auto st = c.wait(timeout);
  r.out = c.read_rest_stdout(std::chrono::milliseconds(st ? 2000 : 0));
  r.err = c.read_rest_stderr(std::chrono::milliseconds(st ? 2000 : 0));
  r.status = st ? Child::exit_code(*st) : -1;
  return r;
}

static std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string ptmem() { return env_or("PTMEM", "build/ptmem"); }
std::string sample(const std::string& name) { return env_or("SAMPLES", "build/samples") + "/" + name; }
std::string supp_entries(const std::string& log) {
  std::istringstream in(log);
  std::string line, out;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "{") inside = true;
    if (inside) out += line + "\n";
    if (line == "}") inside = false;
  }
  return out;
}

std::string find_in_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string dirs = env ? env : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

std::string build_path(const std::string& rel) { return env_or("BUILD_DIR", "build") + "/" + rel; }

std::string temp_dir() {
  static std::vector<std::string> dirs;
  static struct Cleanup {
    ~Cleanup() {
      for (auto& d : dirs) std::filesystem::remove_all(d);
    }
  } cleanup;
  char tmpl[] = "/tmp/ptmem-test-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dirs.emplace_back(tmpl);
  return tmpl;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ptmem::test
