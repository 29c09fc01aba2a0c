#include "live_screen.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>

#include "ptmem/stats/format.hpp"

namespace ptmem::cli {
namespace {

constexpr int kHeaderLines = 4;  // title, totals, keys, column header

constexpr std::array<const char*, 6> kSortNames = {"growth", "live", "blocks", "fds", "rate", "age"};

}  // namespace

LiveScreen::LiveScreen(ui::Terminal& terminal, LiveView& view, std::string title)
    : term_(terminal), view_(view), title_(std::move(title)) {
  draw();
}

size_t LiveScreen::body_lines() const {
  return term_.lines() > kHeaderLines ? size_t(term_.lines() - kHeaderLines) : 0;
}

// The frame's sites in the chosen order (the frame's own order, growth, first), the
// selection kept on the site it was on.
void LiveScreen::arrange() {
  sites_ = view_.frame().sites;
  auto by = [&](auto value) {
    std::stable_sort(sites_.begin(), sites_.end(), [&](const auto& a, const auto& b) { return value(a) > value(b); });
  };
  switch (sort_) {
    case Sort::Growth: break;
    case Sort::Live: by([](const report::SiteGrowth& g) { return double(g.now.live_bytes); }); break;
    case Sort::Blocks: by([](const report::SiteGrowth& g) { return double(g.now.live_blocks); }); break;
    case Sort::Fds: by([](const report::SiteGrowth& g) { return double(g.now.open_fds); }); break;
    case Sort::Rate: by([](const report::SiteGrowth& g) { return g.bytes_per_s + g.fds_per_s; }); break;
    case Sort::Age: by([](const report::SiteGrowth& g) { return g.oldest_seconds; }); break;
  }
  const size_t n = threads_ ? view_.frame().threads.size() : sites_.size();
  if (!threads_ && chosen_) {
    auto it = std::find_if(sites_.begin(), sites_.end(), [&](auto& g) { return g.stack == selected_stack_; });
    if (it != sites_.end()) sel_.select(size_t(it - sites_.begin()));
  }
  sel_.clamp(n, body_lines());
  if (!threads_ && sel_.selected() < sites_.size()) selected_stack_ = sites_[sel_.selected()].stack;
}

void LiveScreen::tick() {
  if (paused_ || ending_) return;
  arrange();
  if (!stack_) draw();
}

void LiveScreen::ending() {
  ending_ = true;
  stack_.reset();
  draw();
}

void LiveScreen::draw() {
  const LiveView::Frame& f = view_.frame();
  const track::Counters& c = f.counters;
  term_.clear();
  std::string title = fmt::format("{}  [{:.1f}s]  sort {}", title_, f.t, kSortNames[size_t(sort_)]);
  if (paused_) title += "  [paused]";
  if (ending_) title += "  detaching, then the report...";
  term_.put(0, title, ui::Style::Bold);
  if (!view_.active())
    term_.put(1, "waiting for the first interval");
  else
    term_.put(1, fmt::format("live {} in {} blocks (peak {})  {} allocs/s  {} frees/s  {} fds open  {} threads hold memory",
                             stats::human_bytes(c.live_bytes), c.live_blocks, stats::human_bytes(c.peak_live_bytes),
                             stats::human_count(f.allocs_per_s), stats::human_count(f.frees_per_s), f.fds_open,
                             f.threads.size()));
  term_.put(2, "q detach and report  s sort  p pause  t sites/threads  Enter stack  arrows select");
  int y = kHeaderLines;
  if (threads_) {
    term_.put(3, fmt::format("{:>8}  {:<16} {:>8} {:>10}", "TID", "NAME", "LIVE", "BLOCKS"), ui::Style::Header, hscroll_);
    for (size_t i = sel_.offset(); i < f.threads.size() && y < term_.lines(); ++i) {
      const auto& t = f.threads[i];
      term_.put(y++, fmt::format("{:>8}  {:<16} {:>8} {:>10}", t.tid, t.name, stats::human_bytes(t.live_bytes), t.live_blocks),
                ui::Style::Normal, hscroll_, i == sel_.selected());
    }
  } else {
    term_.put(3, fmt::format("{:<7} {:>8} {:>9} {:>5} {:>12} {:>6} {:>7}  {}", "", "LIVE", "BLOCKS", "FDS", "GROWTH",
                             "STEADY", "OLDEST", "SITE"),
              ui::Style::Header, hscroll_);
    for (size_t i = sel_.offset(); i < sites_.size() && y < term_.lines(); ++i) {
      const auto& g = sites_[i];
      std::string line = fmt::format("{:<7} {:>8} {:>9} {:>5} {:>12} {:>5.0f}% {:>6.1f}s  {}", g.suspect() ? "SUSPECT" : "",
                                     stats::human_bytes(g.now.live_bytes), g.now.live_blocks, g.now.open_fds,
                                     LiveView::growth_text(g), g.steadiness * 100, g.oldest_seconds, view_.where(g.stack).text);
      term_.put(y++, line, g.suspect() ? ui::Style::SuspectBold : ui::Style::Normal, hscroll_, i == sel_.selected());
    }
  }
  term_.show();
}

void LiveScreen::poll() {
  for (int ch; (ch = term_.key(0)) >= 0;) {
    if (stack_) {
      if (!stack_->handle(ch, term_)) stack_.reset();
      if (stack_) stack_->draw(term_);
      else draw();
      continue;
    }
    if (ending_) continue;
    const size_t n = threads_ ? view_.frame().threads.size() : sites_.size();
    if (sel_.move(ch, n, body_lines())) {
      chosen_ = true;
      if (!threads_ && sel_.selected() < sites_.size()) selected_stack_ = sites_[sel_.selected()].stack;
    } else if (ch == 'q' || ch == 'Q') {
      ptrace::Session::stop();
      ending();
      continue;
    } else if (ch == 's') {
      sort_ = Sort((size_t(sort_) + 1) % kSortNames.size());
      arrange();
    } else if (ch == 'p') {
      paused_ = !paused_;
      if (!paused_) arrange();
    } else if (ch == 't') {
      threads_ = !threads_;
      sel_ = {};
      chosen_ = false;
      arrange();
    } else if (ch == ui::keys::left) {
      hscroll_ = hscroll_ >= 8 ? hscroll_ - 8 : 0;
    } else if (ch == ui::keys::right) {
      hscroll_ += 8;
    } else if (ch == ui::keys::resize) {
      sel_.clamp(n, body_lines());
    } else if (ui::keys::is_enter(ch) && !threads_ && sel_.selected() < sites_.size()) {
      const auto& g = sites_[sel_.selected()];
      std::string held = fmt::format("{} in {} blocks", stats::human_bytes(g.now.live_bytes), g.now.live_blocks);
      if (g.now.open_fds) held += fmt::format(", {} fds open", g.now.open_fds);
      stack_ = std::make_unique<ui::Pager>(fmt::format("{}: {}, growing {}", view_.where(g.stack).text, held, LiveView::growth_text(g)),
                                           view_.stack_lines(g.stack), "q, Enter or Esc: back to the sites");
      stack_->draw(term_);
      continue;
    }
    draw();
  }
}

}  // namespace ptmem::cli
