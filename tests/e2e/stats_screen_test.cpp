// The full-screen view in a real terminal (tests/support/tmux.hpp): tmux runs
// `ptmem stats`, and the test reads the screen and presses keys.  The tmux server and
// everything in it are ended by the guard.
#include <doctest/doctest.h>

#include <csignal>
#include <thread>

#include "../support/process.hpp"
#include "../support/tmux.hpp"

using namespace ptmem::test;

namespace {

std::string bin() { return ptmem::test::ptmem(); }

}  // namespace

TEST_CASE("stats screen: full-screen view, keys, and a clean terminal after q and Ctrl-C") {
  REQUIRE(run({Tmux::path(), "-V"}).status == 0);
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
