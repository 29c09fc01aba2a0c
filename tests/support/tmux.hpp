// A terminal for tests: tmux on a private socket runs a command, capture-pane shows what a
// user would see, send-keys presses keys.  A terminal gives no event to wait on, so each
// step polls the pane (every 20 ms, up to 15 s) until the expected text is there.
#pragma once
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"

namespace ptmem::test {

/// Polls |done| every 20 ms until it holds or |timeout| passes.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(15));

/// A tmux server of our own; the destructor ends it and kills its server and pane by pid.
class Tmux {
 public:
  Tmux();
  ~Tmux();
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  static std::string path();  ///< tmux as found in $PATH
  RunResult cmd(std::vector<std::string> args);
  /// Runs "COMMAND; echo ptmem-exit=$?; exec sleep 600" in a 200x30 pane.
  void start(const std::string& command);
  /// Runs an interactive bash (no rc files) with the prompt "sh$ ", for job control.
  void start_shell();
  std::string screen();
  void keys(const std::string& k);
  /// Types |line| and presses Enter.
  void type(const std::string& line);
  bool shows(const std::string& text);
  /// Like shows(), also searching the lines scrolled off the top of the pane: for output
  /// longer than the pane, whose first lines may scroll off before they are looked for.
  bool printed(const std::string& text);
  /// How many times |text| is on the screen.
  size_t count(const std::string& text);
  /// The status start() echoes after the command, read from the screen.
  std::optional<int> exit_status();

 private:
  void new_session(const std::string& command);
  static inline int count_ = 0;
  std::string socket_, conf_;
  pid_t server_pid_ = -1, pane_pid_ = -1;
};

}  // namespace ptmem::test
