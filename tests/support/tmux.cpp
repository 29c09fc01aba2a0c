#include "tmux.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <unistd.h>

namespace ptmem::test {

using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// Child and run() exec a path, not a name: look tmux up in $PATH.
std::string Tmux::path() {
  std::string found = find_in_path("tmux");
  return found.empty() ? "/usr/bin/tmux" : found;
}

Tmux::Tmux() : socket_("ptmem-test-" + std::to_string(::getpid()) + "-" + std::to_string(++count_)) {
  // remain-on-exit keeps the pane after its command exits, so the restored screen can be
  // inspected.
  conf_ = temp_dir() + "/tmux.conf";
  std::ofstream(conf_) << "set -g remain-on-exit on\nset -g default-terminal screen\n";
}

Tmux::~Tmux() {
  run({path(), "-L", socket_, "kill-server"}, 10s);
  if (server_pid_ > 0) ::kill(server_pid_, SIGKILL);
  if (pane_pid_ > 0) ::kill(pane_pid_, SIGKILL);
}

RunResult Tmux::cmd(std::vector<std::string> args) {
  std::vector<std::string> argv{path(), "-L", socket_, "-f", conf_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, 10s);
}

void Tmux::new_session(const std::string& command) {
  auto r = cmd({"new-session", "-d", "-x", "200", "-y", "30", "-s", "t", command});
  REQUIRE(r.status == 0);
  server_pid_ = std::stoi(cmd({"display-message", "-p", "-t", "t", "#{pid}"}).out);
  pane_pid_ = std::stoi(cmd({"display-message", "-p", "-t", "t", "#{pane_pid}"}).out);
}

void Tmux::start(const std::string& command) {
  new_session(command + "; echo ptmem-exit=$?; exec sleep 600");
}

void Tmux::start_shell() {
  new_session("env PS1='sh$ ' bash --norc --noprofile -i");
  REQUIRE(shows("sh$"));  // capture-pane drops trailing blanks
}

std::string Tmux::screen() { return cmd({"capture-pane", "-p", "-t", "t"}).out; }

void Tmux::keys(const std::string& k) { REQUIRE(cmd({"send-keys", "-t", "t", k}).status == 0); }

void Tmux::type(const std::string& line) {
  REQUIRE(cmd({"send-keys", "-t", "t", "-l", line}).status == 0);
  keys("Enter");
}

bool Tmux::shows(const std::string& text) {
  return eventually([&] { return screen().find(text) != std::string::npos; });
}

bool Tmux::printed(const std::string& text) {
  return eventually([&] { return cmd({"capture-pane", "-p", "-S", "-", "-t", "t"}).out.find(text) != std::string::npos; });
}

size_t Tmux::count(const std::string& text) {
  auto s = screen();
  size_t n = 0;
  for (size_t at = s.find(text); at != std::string::npos; at = s.find(text, at + text.size())) ++n;
  return n;
}

// The pane runs "COMMAND; echo ptmem-exit=$?; exec sleep 600": tmux may drop the last
// output of a pane whose process exits, so the pane is kept alive (the destructor kills
// the sleep by the pane's pid) and the exit status is read from the screen.
std::optional<int> Tmux::exit_status() {
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

}  // namespace ptmem::test
