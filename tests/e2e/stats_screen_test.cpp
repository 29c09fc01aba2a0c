// The full-screen view in a real terminal: tmux on a private socket runs `ptmem stats`,
// capture-pane shows what the user would see, send-keys presses keys.  A terminal gives
// no event to wait on, so each step polls the pane (every 20 ms, up to 15 s) until the
// expected text is there.  The tmux server and everything in it are ended by the guard.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>
#include <unistd.h>

#include "../support/process.hpp"

using namespace ptmem::test;

namespace {

std::string bin() { return ptmem::test::ptmem(); }

// Child and run() exec a path, not a name: look tmux up in $PATH.
std::string tmux_path() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/tmux";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "/usr/bin/tmux";
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 15s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

/// A tmux server of our own, killed (by its pid, too) when the test ends.
class Tmux {
 public:
  Tmux() : socket_("ptmem-stats-" + std::to_string(::getpid()) + "-" + std::to_string(++count_)) {
    // remain-on-exit keeps the pane after its command exits, so the restored screen can
    // be inspected.
    conf_ = temp_dir() + "/tmux.conf";
    std::ofstream(conf_) << "set -g remain-on-exit on\nset -g default-terminal screen\n";
  }
  ~Tmux() {
    run({tmux_path(), "-L", socket_, "kill-server"}, 10s);
    if (server_pid_ > 0) ::kill(server_pid_, SIGKILL);
    if (pane_pid_ > 0) ::kill(pane_pid_, SIGKILL);
  }
  RunResult cmd(std::vector<std::string> args) {
    std::vector<std::string> argv{tmux_path(), "-L", socket_, "-f", conf_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 10s);
  }
  void start(const std::string& command) {
    auto r = cmd({"new-session", "-d", "-x", "200", "-y", "30", "-s", "t", command + "; echo ptmem-exit=$?; exec sleep 600"});
    REQUIRE(r.status == 0);
    server_pid_ = std::stoi(cmd({"display-message", "-p", "-t", "t", "#{pid}"}).out);
    pane_pid_ = std::stoi(cmd({"display-message", "-p", "-t", "t", "#{pane_pid}"}).out);
  }
  std::string screen() { return cmd({"capture-pane", "-p", "-t", "t"}).out; }
  void keys(const std::string& k) { REQUIRE(cmd({"send-keys", "-t", "t", k}).status == 0); }
  /// The pane runs "COMMAND; echo ptmem-exit=$?; exec sleep 600": tmux may drop the last
  /// output of a pane whose process exits, so the pane is kept alive (the guard kills
  /// the sleep by the pane's pid) and the exit status is read from the screen.
  std::optional<int> exit_status() {
    std::optional<int> status;
    eventually([&] {
      auto text = screen();
      auto at = text.find("ptmem-exit=");
      if (at == std::string::npos) return false;
      status = std::stoi(text.substr(at + 11));
      return true;
    });
    return status;
  }
  bool shows(const std::string& text) {
    return eventually([&] { return screen().find(text) != std::string::npos; });
  }

 private:
  static inline int count_ = 0;
  std::string socket_, conf_;
  pid_t server_pid_ = -1, pane_pid_ = -1;
};

}  // namespace

TEST_CASE("stats screen: full-screen view, keys, and a clean terminal after q and Ctrl-C") {
  REQUIRE(run({tmux_path(), "-V"}).status == 0);
  Child::Options o;
  o.argv = {sample("stats_flat"), "8", "4"};
  o.pipe_stdin = true;
  Child flat(o);
  REQUIRE(flat.wait_for_line("ready pid="));
  std::string pid = std::to_string(flat.pid());
  std::string command = bin() + " stats --interval 100ms --pid " + pid;

  for (const char* how_to_quit : {"q", "C-c"}) {
    CAPTURE(how_to_quit);
    Tmux tmux;
    tmux.start(command);
    // The title, the system line, the column header and the sample's row.
    REQUIRE(tmux.shows("PID USER"));
    CHECK(tmux.shows("ptmem stats  "));
    CHECK(tmux.shows("mem total "));
    CHECK(tmux.shows(" " + pid + " root        1     7 "));  // 1 thread; 3 + 4 fds
    CHECK(tmux.shows("sort rss"));

    tmux.keys("t");  // thread rows
    CHECK(tmux.shows("`- tid " + pid));
    tmux.keys("i");  // sort by pid
    CHECK(tmux.shows("sort pid"));
    tmux.keys("R");
    CHECK(tmux.shows("sort pid (reversed)"));
    tmux.keys("p");
    CHECK(tmux.shows("[paused]"));
    // Paused: the sample number stays put.
    auto frozen = tmux.screen();
    auto title = frozen.substr(0, frozen.find('\n'));
    std::this_thread::sleep_for(350ms);  // more than 3 intervals: would have changed
    auto later = tmux.screen();
    CHECK(later.substr(0, later.find('\n')) == title);
    tmux.keys("p");
    CHECK(eventually([&] { auto s = tmux.screen(); return s.substr(0, s.find('\n')) != title; }));

    tmux.keys(how_to_quit);
    auto status = tmux.exit_status();
    // The alternate screen is gone: nothing of the view is left on the terminal.
    auto after = tmux.screen();
    CAPTURE(after);
    CHECK(status == 0);
    CHECK(after.find("PID USER") == std::string::npos);
    CHECK(after.find("ptmem stats") == std::string::npos);
  }
}

TEST_CASE("stats screen: --count ends the view by itself; --batch on a terminal appends blocks") {
  Tmux tmux;
  tmux.start(bin() + " stats --interval 50ms --count 3 --top 2");
  CHECK(tmux.exit_status() == 0);
  CHECK(tmux.screen().find("PID USER") == std::string::npos);

  Child::Options o;
  o.argv = {sample("stats_flat"), "1", "0"};
  o.pipe_stdin = true;
  Child flat(o);
  REQUIRE(flat.wait_for_line("ready pid="));
  Tmux batch;
  batch.start(bin() + " stats --batch --interval 50ms --count 2 --pid " + std::to_string(flat.pid()));
  CHECK(batch.exit_status() == 0);
  auto text = batch.screen();
  CHECK(text.find("sample 1 ") != std::string::npos);
  CHECK(text.find("sample 2 ") != std::string::npos);
}
