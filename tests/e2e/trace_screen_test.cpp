// The live view full-screen, in a real terminal (tests/support/tmux.hpp): `ptmem attach` on a
// terminal, and `ptmem stats`' Enter, which traces the selected process on its own screen.
// trace_live leaks 4 KiB every 100 ms at @leak live-drip amid four threads of balanced
// traffic; the test reads the screen and presses keys, each step waiting for what it
// expects to appear.
#include <doctest/doctest.h>

#include <csignal>
#include <sys/ptrace.h>
#include <fmt/format.h>
#include <sstream>
#include <thread>

#include "../support/attach_target.hpp"
#include "../support/process.hpp"
#include "../support/tmux.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;
using namespace std::chrono_literals;

namespace {

const std::string kLive = "trace_live.c";

std::string first_line(const std::string& screen) { return screen.substr(0, screen.find('\n')); }

// The line of the screen that contains |text| ("" when none).
std::string line_with(const std::string& screen, const std::string& text) {
  std::istringstream in(screen);
  for (std::string line; std::getline(in, line);)
    if (line.find(text) != std::string::npos) return line;
  return "";
}

size_t widest_line(const std::string& screen) {
  std::istringstream in(screen);
  size_t widest = 0;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    widest = std::max(widest, line.size());
  }
  return widest;
}

struct Target {
  std::unique_ptr<Child> child;
  std::string seen;
  Target() {
    Child::Options o;
    o.argv = {sample("trace_live"), "leak"};
    o.pipe_stdin = true;
    child = std::make_unique<Child>(o);
    REQUIRE(expect_line(*child, "ready ", seen));
  }
  std::string pid() const { return std::to_string(child->pid()); }
  // Untraced, and still answering: it ends on "quit" with status 0.
  void check_unharmed() {
    CHECK(tracer_of(child->pid()) == 0);
    CHECK(stopped_threads(child->pid()) == "");
    CHECK(code_differs(child->pid()) == "");
    child->write_stdin("quit\n");
    auto st = child->wait(30s);
    REQUIRE(st);
    CHECK(WIFEXITED(*st));
    CHECK(WEXITSTATUS(*st) == 0);
  }
};

}  // namespace

TEST_CASE("trace screen: attach on a terminal is full-screen; s, p, t, Enter, resize, q") {
  REQUIRE(run({Tmux::path(), "-V"}).status == 0);
  Target target;
  const std::string drip = fmt::format("drip ({}:{})", kLive, marker_line(kLive, "@leak live-drip"));
  const std::string report = temp_dir() + "/report.json";
  Tmux tmux;
  std::string command = ptmem::test::ptmem() + " attach --interval 100ms --show-kinds all --format json -o " + report + " " + target.pid();
  tmux.start(command);
  REQUIRE(tmux.shows("ptmem attach " + target.pid() + " (trace_live)"));
  CHECK(tmux.shows("q detach and report  s sort  p pause"));
  // The drip is named a suspect once the window has 10 intervals, first in the growth order.
  REQUIRE(eventually([&] { return line_with(tmux.screen(), drip).find("SUSPECT") != std::string::npos; }));
  auto rows = tmux.screen();
  CAPTURE(rows);
  CHECK(line_with(rows, "SITE").find("GROWTH") != std::string::npos);
  CHECK(line_with(rows, "SUSPECT").find(drip) != std::string::npos);  // the only suspect
  CHECK(tmux.count("SUSPECT") == 1);
  CHECK(line_with(rows, drip).find("+") != std::string::npos);        // growing: "+40K/s"

  // Enter: the selected site (the first row, the drip) and its whole call stack.
  tmux.keys("Enter");
  REQUIRE(tmux.shows(drip + ": "));
  CHECK(tmux.shows("q, Enter or Esc: back to the sites"));
  // Its frames, each "  0xADDRESS  function (file:line)".
  CHECK(eventually([&] { return line_with(tmux.screen(), "  0x").find(fmt::format("{}:{})", kLive, marker_line(kLive, "@leak live-drip"))) != std::string::npos; }));
  tmux.keys("q");  // back to the sites, still tracing
  REQUIRE(tmux.shows("STEADY  OLDEST  SITE"));

  // s cycles the order; t shows the threads holding memory (the drip's thread).
  tmux.keys("s");
  CHECK(tmux.shows("sort live"));
  tmux.keys("s");
  CHECK(tmux.shows("sort blocks"));
  tmux.keys("t");
  REQUIRE(tmux.shows("TID  NAME"));
  // "   TID  trace_live   40K   10": the drip's thread holds its blocks.
  CHECK(eventually([&] { return line_with(tmux.screen(), "  trace_live ").find("K ") != std::string::npos; }));
  tmux.keys("t");
  CHECK(tmux.shows("STEADY  OLDEST  SITE"));

  // p freezes the display (the trace goes on): the clock in the title stays put.
  tmux.keys("p");
  REQUIRE(tmux.shows("[paused]"));
  auto title = first_line(tmux.screen());
  std::this_thread::sleep_for(350ms);  // more than 3 intervals: it would have changed
  CHECK(first_line(tmux.screen()) == title);
  tmux.keys("p");
  CHECK(eventually([&] { return first_line(tmux.screen()) != title && !tmux.shows("[paused]"); }));

  // A smaller terminal: the view redraws to its width.
  REQUIRE(tmux.cmd({"resize-window", "-t", "t", "-x", "90", "-y", "15"}).status == 0);
  CHECK(eventually([&] { auto s = tmux.screen(); return widest_line(s) <= 90 && s.find("drip (") != std::string::npos; }));

  // q: detach and report; the screen is gone, what ptmem said is on the terminal.
  tmux.keys("q");
  auto status = tmux.exit_status();
  auto after = tmux.screen();
  CAPTURE(after);
  CHECK(status == 0);
  CHECK(tmux.printed("ptmem: attached to process " + target.pid()));
  CHECK(tmux.printed("ptmem: detached from process " + target.pid()));
  CHECK(after.find("STEADY  OLDEST") == std::string::npos);
  target.check_unharmed();

  // The report knows the drip as the growing site.
  auto json = Json::parse(read_text_file(report));
  bool found = false;
  for (auto& leak : json["leaks"])
    for (auto& f : leak["stack"])
      if (f["function"] == "drip" && f["line"] == marker_line(kLive, "@leak live-drip")) {
        found = true;
        CHECK(leak["growth"]["suspect"] == true);
      }
  CHECK(found);
}

TEST_CASE("trace screen: stats' Enter traces the selected process; q detaches, shows the report, returns") {
  Target target;
  const std::string drip = fmt::format("drip ({}:{})", kLive, marker_line(kLive, "@leak live-drip"));
  // A second process, which this test traces itself: Enter on it must say who does.
  Child::Options o;
  o.argv = {sample("stats_flat"), "1", "0"};
  o.pipe_stdin = true;
  Child traced(o);
  REQUIRE(traced.wait_for_line("ready pid="));
  REQUIRE(::ptrace(PTRACE_SEIZE, traced.pid(), nullptr, nullptr) == 0);  // its parent: allowed
  Tmux tmux;
  tmux.start(ptmem::test::ptmem() + " stats --interval 100ms --pid " + target.pid() + "," + std::to_string(traced.pid()));
  REQUIRE(tmux.shows("PID USER"));
  REQUIRE(tmux.shows(" " + target.pid() + " root "));
  CHECK(tmux.shows("Enter trace"));
  // Sorted by pid, Home selects the smaller one.
  const bool target_first = target.child->pid() < traced.pid();
  auto select = [&](bool the_target) {
    tmux.keys("Home");
    if (the_target != target_first) tmux.keys("Down");
  };
  tmux.keys("i");
  REQUIRE(tmux.shows("sort pid"));
  select(true);
  tmux.keys("Enter");
  REQUIRE(tmux.shows("ptmem attach " + target.pid() + " (trace_live)"));
  CHECK(tracer_of(target.child->pid()) > 0);
  REQUIRE(eventually([&] { return line_with(tmux.screen(), drip).find("SUSPECT") != std::string::npos; }));

  // q: detach; the report in a pager, every kind shown (the drip's blocks are reachable).
  tmux.keys("q");
  REQUIRE(tmux.shows("ptmem: the report of process " + target.pid()));
  CHECK(tmux.shows("q, Enter or Esc: back to the processes"));
  CHECK(eventually([&] { return tracer_of(target.child->pid()) == 0; }));
  // The report's first lines; its sites (the drip's) lie further down the pager.
  CHECK(tmux.shows("ptmem: attached to process " + target.pid()));
  tmux.keys("End");
  CHECK(tmux.shows("still reachable:"));

  // Back to the table, which says what happened, the target untraced and running.
  tmux.keys("q");
  REQUIRE(tmux.shows("PID USER"));
  CHECK(tmux.shows("traced " + target.pid() + ": detached, report read"));

  // Enter on a process that cannot be traced says why, in the table, and stays there.
  select(false);
  tmux.keys("Enter");
  CHECK(tmux.shows("is already traced by"));
  CHECK(tmux.shows("PID USER"));

  tmux.keys("q");
  CHECK(tmux.exit_status() == 0);
  target.check_unharmed();
}
