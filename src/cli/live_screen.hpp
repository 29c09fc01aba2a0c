// The live view full-screen (issue #9): `ptmem attach` on a terminal, or opened from
// `ptmem stats` on the selected process.  It draws LiveView's frame each interval and reads
// keys between the trace's events (Session::on_poll), so the trace never waits for it:
//   q  detach and report        s  next sort key (growth, live, blocks, fds, rate, age)
//   p  pause the display        t  sites / threads
//   Enter  the selected site's full call stack   arrows, PgUp/PgDn, Home/End  select
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "live_view.hpp"
#include "ptmem/ui/terminal.hpp"

namespace ptmem::cli {

class LiveScreen {
 public:
  /// |title|: the first line ("ptmem attach 1234 (server)").
  LiveScreen(ui::Terminal& terminal, LiveView& view, std::string title);
  /// A new frame: redraw (unless paused or reading a stack).
  void tick();
  /// Reads the keys typed since the last call; q asks the session to stop.
  void poll();
  /// The trace is ending (q, a signal, the target's exit): say so while it detaches.
  void ending();

  enum class Sort { Growth, Live, Blocks, Fds, Rate, Age };

 private:
  void draw();
  void arrange();
  size_t body_lines() const;

  ui::Terminal& term_;
  LiveView& view_;
  std::string title_;
  Sort sort_ = Sort::Growth;
  bool paused_ = false, threads_ = false, ending_ = false;
  std::vector<report::SiteGrowth> sites_;  // the frame's, in the chosen order
  ui::Selection sel_;
  track::StackId selected_stack_ = track::kNoStack;
  bool chosen_ = false;  // the user moved the selection: it follows its site from then on
  size_t hscroll_ = 0;
  std::unique_ptr<ui::Pager> stack_;  // Enter: the selected site's stack, until left
};

}  // namespace ptmem::cli
