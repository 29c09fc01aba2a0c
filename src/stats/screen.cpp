#include "ptmem/stats/screen.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <time.h>

#include "ptmem/ui/terminal.hpp"
#include "ptmem/util/eprint.hpp"

namespace ptmem::stats {
namespace {

double monotonic_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

constexpr int kHeaderLines = 4;  // title, system, keys, column header

std::optional<SortKey> key_for(int ch) {
  switch (ch) {
    case 'r': case 'm': case 'M': return SortKey::rss;
    case 'P': return SortKey::pss;
    case 'u': case 'U': return SortKey::uss;
    case 'a': return SortKey::anon;
    case 's': return SortKey::swap;
    case 'v': return SortKey::vsz;
    case 'f': return SortKey::fds;
    case 'T': return SortKey::threads;
    case 'g': return SortKey::growth;
    case 'F': return SortKey::faults;
    case 'i': return SortKey::pid;
    case 'n': return SortKey::name;
    default: return std::nullopt;
  }
}

class ScreenState {
 public:
  ScreenState(ui::Terminal& terminal, Sampler& sampler, const StatsOptions& o)
      : term_(terminal), sampler_(sampler), o_(o), view_(o.view) {}

  // Rows that fit on the screen below the header.
  size_t body_lines() const { return term_.lines() > kHeaderLines ? size_t(term_.lines() - kHeaderLines) : 0; }

  void take_sample(util::LineAppender* file, const SampleWriter* writer, bool& write_failed) {
    sample_ = sampler_.sweep();
    sample_.interval_ms = double(o_.interval.count()) / 1000.0;
    if (file && writer) {
      // The file gets what batch mode would write (the command-line order and --top),
      // whatever the keys have done to the screen.
      Sample copy = sample_;
      size_t top = o_.top.value_or(SIZE_MAX);
      sampler_.arrange(copy.processes, {o_.view.key, o_.view.reverse, 0, top, o_.view.pss, o_.view.threads});
      if (copy.processes.size() > top) copy.processes.resize(top);
      if (!file->append(writer->render(copy))) write_failed = true;
    }
    arrange();
  }

  // Rows that may be shown: all of them, or the first --top.
  size_t row_limit() const { return std::min(sample_.processes.size(), o_.top.value_or(SIZE_MAX)); }

  // Sorts every row (so a new key sees them all), keeps the selection on the process it
  // was on, and fills those on screen.
  void arrange() {
    const size_t n = row_limit();
    fill();
    if (chosen_) {
      auto& rows = sample_.processes;
      auto it = std::find_if(rows.begin(), rows.begin() + std::ptrdiff_t(n), [&](auto& r) { return r.pid == selected_pid_; });
      if (it != rows.begin() + std::ptrdiff_t(n)) sel_.select(size_t(it - rows.begin()));
    }
    sel_.clamp(n, body_lines());
    fill();
    // With thread rows a process takes several lines: scroll until the selected one shows.
    while (view_.threads && sel_.selected() > sel_.offset() && lines_to_selected() > body_lines()) {
      sel_.clamp(n, body_lines());
      sel_.scroll_to(sel_.offset() + 1);
      fill();
    }
    if (sel_.selected() < n) selected_pid_ = sample_.processes[sel_.selected()].pid;
  }

  void draw() {
    TableLayout layout(view_);
    term_.clear();
    std::string title = layout.title_line(sample_);
    if (paused_) title += "  [paused]";
    if (!message_.empty()) title += "  " + message_;
    term_.put(0, title, ui::Style::Bold);
    term_.put(1, layout.system_line(sample_));
    term_.put(2, std::string("q quit  p pause  t threads  R reverse  ") + (o_.trace ? "Enter trace  " : "") +
                     "sort: r rss P pss u uss a anon s swap v vsz f fds T thr g growth F faults i pid n name  "
                     "< > cycle  arrows select");
    term_.put(3, layout.column_header(), ui::Style::Header, hscroll_);
    int y = kHeaderLines;
    auto& rows = sample_.processes;
    for (size_t i = sel_.offset(); i < row_limit() && y < term_.lines(); ++i) {
      const auto& r = rows[i];
      term_.put(y++, layout.process_line(r), r.trend.suspect() ? ui::Style::SuspectBold : ui::Style::Normal, hscroll_,
                i == sel_.selected());
      if (view_.threads)
        for (auto& t : r.threads) {
          if (y >= term_.lines()) break;
          term_.put(y++, layout.thread_line(t), ui::Style::Dim, hscroll_);
        }
    }
    term_.show();
  }

  enum class Action { None, Quit, Trace };
  Action handle_key(int ch, bool& sample_now) {
    const auto& keys = sort_key_names();
    size_t k = static_cast<size_t>(view_.key);
    if (sel_.move(ch, row_limit(), body_lines())) {
      chosen_ = true;
      if (sel_.selected() < row_limit()) selected_pid_ = sample_.processes[sel_.selected()].pid;
      arrange();
      return Action::None;
    }
    switch (ch) {
      case 'q': case 'Q': return Action::Quit;
      case 'p': paused_ = !paused_; break;
      case ' ': sample_now = true; break;
      case 't': view_.threads = !view_.threads; arrange(); break;
      case 'R': view_.reverse = !view_.reverse; arrange(); break;
      case '<': view_.key = static_cast<SortKey>((k + keys.size() - 1) % keys.size()); arrange(); break;
      case '>': view_.key = static_cast<SortKey>((k + 1) % keys.size()); arrange(); break;
      default:
        if (ch == ui::keys::left) hscroll_ = hscroll_ >= 8 ? hscroll_ - 8 : 0;
        else if (ch == ui::keys::right) hscroll_ += 8;
        else if (ch == ui::keys::resize) arrange();
        else if (ui::keys::is_enter(ch) && o_.trace && selected_pid_) return Action::Trace;
        else if (auto key = key_for(ch)) {
          view_.key = *key;
          if (needs_smaps(*key)) view_.pss = true;  // show the column it sorts by
          arrange();
        }
        break;
    }
    return Action::None;
  }

  bool paused() const { return paused_; }
  pid_t selected_pid() const { return selected_pid_; }
  void set_message(std::string m) { message_ = std::move(m); }

 private:
  // Reads what the rows on screen show (smaps, threads) for those from the offset on.
  void fill() {
    size_t n = row_limit();
    size_t shown = std::min(body_lines(), n - std::min(sel_.offset(), n));
    sampler_.arrange(sample_.processes, {view_.key, view_.reverse, sel_.offset(), shown, view_.pss, view_.threads});
  }
  // Screen lines from the top row shown down to the selected row, its own line included.
  size_t lines_to_selected() const {
    size_t lines = 0;
    for (size_t i = sel_.offset(); i < sel_.selected(); ++i) lines += 1 + sample_.processes[i].threads.size();
    return lines + 1;
  }

  ui::Terminal& term_;
  Sampler& sampler_;
  const StatsOptions& o_;
  View view_;
  Sample sample_;
  ui::Selection sel_;
  pid_t selected_pid_ = 0;
  bool chosen_ = false;  // the user moved the selection: it follows its process from then on
  size_t hscroll_ = 0;
  bool paused_ = false;
  std::string message_;
};

}  // namespace

int run_full_screen(Sampler& sampler, const StatsOptions& o, util::LineAppender* file,
                    const SampleWriter* file_writer) {
  std::string error;
  auto terminal = ui::Terminal::open(ui::Terminal::Stream::Stdout, &error);
  if (!terminal) {
    util::eprint("ptmem: {}\n", error);
    return 1;
  }
  ScreenState view(*terminal, sampler, o);
  double interval = double(o.interval.count()) * 1e-6;
  bool write_failed = false;
  uint64_t taken = 0;
  view.take_sample(file, file_writer, write_failed);
  ++taken;
  double next = monotonic_now() + interval;
  view.draw();
  while (!stop_requested() && !write_failed) {
    double wait = next - monotonic_now();
    // Wake at least every 200 ms so a stop signal is noticed promptly.
    int ms = view.paused() ? 200 : int(std::clamp(std::ceil(wait * 1000.0), 0.0, 200.0));
    int ch = terminal->key(ms);
    bool sample_now = false;
    if (ch >= 0) {
      auto action = view.handle_key(ch, sample_now);
      if (action == ScreenState::Action::Quit) break;
      if (action == ScreenState::Action::Trace) {
        // The trace has the terminal and its own signal handlers until the user leaves it;
        // then the table comes back with a fresh sample.
        std::string outcome = o.trace(view.selected_pid(), *terminal);
        install_stop_handlers();
        view.set_message(outcome);
        sample_now = true;
      }
      view.draw();
    }
    if ((!view.paused() && monotonic_now() >= next) || sample_now) {
      if (o.count && taken >= *o.count) break;
      view.take_sample(file, file_writer, write_failed);
      ++taken;
      next = std::max(next + interval, monotonic_now());
      if (sample_now) next = monotonic_now() + interval;
      view.draw();
    }
  }
  if (write_failed) {
    terminal.reset();
    util::eprint("ptmem: cannot write '{}'\n", o.output);
    return 1;
  }
  return 0;
}

}  // namespace ptmem::stats
