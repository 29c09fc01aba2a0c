// `ptmem launch` on a terminal, driven through an interactive bash in tmux
// (tests/support/tmux.hpp): the keys a user presses reach the program as they would
// without ptmem, and the shell's job control (Ctrl-Z, bg, fg) stops and continues the
// program and ptmem together.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "../support/process.hpp"
#include "../support/tmux.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

namespace {

/// The PIDs the test learned from the screen, killed by pid however the test ends (the
/// tmux guard then ends the shell).
struct Killer {
  std::vector<pid_t> pids;
  ~Killer() {
    for (pid_t p : pids) ::kill(p, SIGKILL);
  }
};

pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(stat.substr(paren + 2));
  char state;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

/// Every thread of |pid| is stopped (T, or t while traced).
bool all_threads_stopped(pid_t pid) {
  std::error_code ec;
  bool any = false;
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    char s = proc_state(std::stoi(e.path().filename().string()));
    if (s != 'T' && s != 't') return false;
    any = true;
  }
  return any;
}

/// For a failure's message: the terminal's foreground group (tpgid), and each thread's state,
/// pending and blocked signals and wait channel.
std::string states(pid_t program, pid_t tracer) {
  std::ostringstream o;
  for (pid_t pid : {tracer, program}) {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      std::ifstream st(e.path() / "stat"), status(e.path() / "status"), wchan(e.path() / "wchan");
      std::string stat((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>()), line, w;
      std::getline(wchan, w);
      o << e.path().string() << ": " << stat.substr(stat.rfind(')') + 2, 40) << " wchan=" << w;
      while (std::getline(status, line))
        if (line.rfind("SigPnd", 0) == 0 || line.rfind("ShdPnd", 0) == 0 || line.rfind("SigBlk", 0) == 0 ||
            line.rfind("TracerPid", 0) == 0)
          o << " " << line;
      o << "\n";
    }
  }
  return o.str();
}

}  // namespace

TEST_CASE("trace terminal: Ctrl-Z, bg and fg stop and continue the program with ptmem; Ctrl-C reaches the program") {
  Tmux tmux;
  tmux.start_shell();
  tmux.type(ptmem::test::ptmem() + " launch -- " + sample("trace_attach_target"));
  REQUIRE(tmux.shows("ready "));
  std::smatch m;
  auto text = tmux.screen();
  REQUIRE(std::regex_search(text, m, std::regex("ready (\\d+)")));
  pid_t program = std::stoi(m[1]);
  pid_t tracer = parent_of(program);
  Killer killer{{program, tracer}};
  REQUIRE(tracer > 0);
  CHECK(tmux.shows("ptmem: tracing " + std::to_string(program)));

  // The program has the terminal: what the user types is its input.
  tmux.type("check");
  CHECK(tmux.shows("check bad=0 rounds="));

  // Ctrl-Z stops the program (every thread), then ptmem, so the shell gets the terminal
  // back; what is typed now goes to the shell, not to the stopped program.
  tmux.keys("C-z");
  REQUIRE(tmux.shows("Stopped"));
  CHECK(wait_for_state(tracer, "T", 10s));
  CHECK(all_threads_stopped(program));
  tmux.type("echo shell-$((6*7))");
  CHECK(tmux.shows("shell-42"));
  CHECK(all_threads_stopped(program));

  // bg continues both; the program reads the terminal from the background, so the kernel
  // stops it with SIGTTIN, and ptmem with it, as the shell reports.  The shell's report is
  // the sign that this second stop happened (until then the states seen may be the first
  // stop's); ptmem stops only once every thread of the program has.
  tmux.type("bg");
  CHECK(eventually([&] {  // bash learns of the stop through its SIGCHLD handler
    tmux.type("jobs -l");
    return eventually([&] { return tmux.screen().find("Stopped (tty input)") != std::string::npos; }, 500ms);
  }));
  CHECK(wait_for_state(tracer, "T", 10s));
  CHECK(all_threads_stopped(program));

  // fg gives the terminal back to the program, which answers again and never saw the
  // shell's lines.
  tmux.type("clear");
  CHECK(eventually([&] { return tmux.count("Stopped") == 0; }));
  tmux.type("fg");
  tmux.type("check");
  CHECK(tmux.shows("check bad=0 rounds="));
  CHECK(tmux.count("unknown command") == 0);

  // Ctrl-C goes to the program, which dies of it; ptmem reports that and exits 128+2.
  // The report is about as long as the pane: its first line may scroll off.
  tmux.keys("C-c");
  bool killed = tmux.printed("was killed by SIGINT");
  INFO("after Ctrl-C (tpgid is the 8th field):\n" << states(program, tracer) << "screen:\n" << tmux.screen());
  CHECK(killed);
  CHECK(tmux.shows("ptmem: SUMMARY"));
  tmux.type("echo exit=$?");
  CHECK(tmux.shows("exit=130"));
  CHECK(eventually([&] { return proc_state(tracer) == 0; }));  // ptmem is gone, reaped
}
