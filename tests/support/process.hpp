// Test support: processes a test starts are ended by PID when the test ends, even when an
// assertion fails (RAII), and tests synchronise with them through pipes, never sleeps.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ptmem::test {

using namespace std::chrono_literals;

/// A child process started by a test.  The destructor SIGKILLs and reaps it (by pid) if it
/// has not been waited for; SIGKILL also ends a stopped or traced process.
class Child {
 public:
  struct Options {
    std::vector<std::string> argv;
    bool capture_stdout = true;
    bool capture_stderr = true;
    bool pipe_stdin = false;
    std::vector<std::string> env;  ///< extra "NAME=value" entries
    /// Own process group, whose parent (this binary) is in another group of the session:
    /// never orphaned, so the kernel delivers job-control stops (SIGTSTP, SIGTTIN, SIGTTOU)
    /// however the test binary itself was started (CI may run it in an orphaned group,
    /// where those stops are discarded).
    bool new_process_group = false;
  };
  explicit Child(const Options& options);
  explicit Child(std::vector<std::string> argv) : Child(Options{std::move(argv)}) {}
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& other) noexcept;

  pid_t pid() const { return pid_; }
  /// Next line of stdout (without '\n'); nullopt on EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 30s);
  /// Waits for a stdout line containing |needle|; returns it, or nullopt.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds timeout = 30s);
  /// Everything left on stdout / stderr until EOF (or timeout).
  std::string read_rest_stdout(std::chrono::milliseconds timeout = 60s);
  std::string read_rest_stderr(std::chrono::milliseconds timeout = 60s);
  void write_stdin(const std::string& data);
  void close_stdin();
  void signal(int sig);
  /// Waits for exit; returns the raw wait status, or nullopt on timeout (child left alive,
  /// the destructor still kills it).
  std::optional<int> wait(std::chrono::milliseconds timeout = 60s);
  /// Exit code, or 128+signal, from a raw status.
  static int exit_code(int status);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string out_buf_, err_buf_;
  bool read_some(int fd, std::string& buf, std::chrono::milliseconds timeout);
};

struct RunResult {
  int status = -1;  ///< exit code or 128+signal; -1 on timeout
  std::string out, err;
};
/// Runs |argv| to completion with a timeout (killed by pid when it expires).
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 120s,
              const std::vector<std::string>& env = {});

/// $PTMEM (set by the Makefile), the binary under test.
std::string ptmem();
/// $SAMPLES/<name>: a sample program built by the Makefile.
std::string sample(const std::string& name);
/// The first executable |name| in $PATH ("" if none): run() execs a path, not a name.
std::string find_in_path(const std::string& name);
/// The suppression entries memcheck's --gen-suppressions=all wrote into its log: each
/// from a "{" line to the next "}" line, between its "==PID==" lines.
std::string supp_entries(const std::string& log);
/// $BUILD_DIR/<rel>.
std::string build_path(const std::string& rel);
/// A fresh temporary directory, removed with its files at exit of the test binary.
std::string temp_dir();
std::string read_text_file(const std::string& path);

}  // namespace ptmem::test
