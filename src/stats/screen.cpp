#include "ptmem/stats/screen.hpp"
#include "ptmem/util/eprint.hpp"

#include <algorithm>
#include <cmath>
#include <curses.h>
#include <fmt/format.h>
#include <time.h>

namespace ptmem::stats {
namespace {

double monotonic_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

constexpr int kHeaderLines = 4;  // title, system, keys, column header
constexpr short kSuspectPair = 1;

// RAII for the terminal: whatever ends the loop (q, a signal, an exception), the
// destructor gives the user back a clean terminal.
class Terminal {
 public:
  Terminal() {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    if (has_colors()) {
      start_color();
      use_default_colors();
      init_pair(kSuspectPair, COLOR_RED, -1);
    }
  }
  ~Terminal() { endwin(); }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;
};

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
  ScreenState(Sampler& sampler, const StatsOptions& o) : sampler_(sampler), o_(o), view_(o.view) {}

  // Rows that fit on the screen below the header.
  size_t body_lines() const { return LINES > kHeaderLines ? size_t(LINES - kHeaderLines) : 0; }

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

  // Sorts every row (so a new key sees them all) and fills those on screen.
  void arrange() {
    clamp_offset();
    size_t shown = std::min(body_lines(), row_limit() - std::min(offset_, row_limit()));
    sampler_.arrange(sample_.processes, {view_.key, view_.reverse, offset_, shown, view_.pss, view_.threads});
  }

  void clamp_offset() {
    size_t n = row_limit();
    if (offset_ >= n) offset_ = n ? n - 1 : 0;
  }

  void draw() {
    erase();
    TableLayout layout(view_);
    int width = COLS;
    auto put = [&](int y, const std::string& line, attr_t attr = A_NORMAL) {
      if (y >= LINES) return;
      std::string_view v = line;
      v = hscroll_ < v.size() ? v.substr(hscroll_) : std::string_view();
      attrset(attr);
      mvaddnstr(y, 0, v.data(), std::min<int>(width, int(v.size())));
      attrset(A_NORMAL);
    };
    std::string title = layout.title_line(sample_);
    if (paused_) title += "  [paused]";
    put(0, title, A_BOLD);
    put(1, layout.system_line(sample_));
    put(2, "q quit  p pause  t threads  R reverse  sort: r rss P pss u uss a anon s swap v vsz "
           "f fds T thr g growth F faults i pid n name  < > cycle  arrows scroll");
    std::string header = layout.column_header();
    header.resize(std::max<size_t>(header.size(), size_t(width) + hscroll_), ' ');
    put(3, header, A_REVERSE);
    int y = kHeaderLines;
    auto& rows = sample_.processes;
    for (size_t i = offset_; i < row_limit() && y < LINES; ++i) {
      const auto& r = rows[i];
      attr_t attr = A_NORMAL;
      if (r.trend.suspect()) attr = A_BOLD | (has_colors() ? COLOR_PAIR(kSuspectPair) : A_NORMAL);
      put(y++, layout.process_line(r), attr);
      if (view_.threads)
        for (auto& t : r.threads) {
          if (y >= LINES) break;
          put(y++, layout.thread_line(t), A_DIM);
        }
    }
    refresh();
  }

  // Returns false when the user asked to quit.
  bool handle_key(int ch, bool& sample_now) {
    size_t page = std::max<size_t>(body_lines(), 1);
    size_t n = row_limit();
    const auto& keys = sort_key_names();
    size_t k = static_cast<size_t>(view_.key);
    switch (ch) {
      case 'q': case 'Q': return false;
      case 'p': paused_ = !paused_; break;
      case ' ': sample_now = true; break;
      case 't': view_.threads = !view_.threads; arrange(); break;
      case 'R': view_.reverse = !view_.reverse; arrange(); break;
      case '<': view_.key = static_cast<SortKey>((k + keys.size() - 1) % keys.size()); arrange(); break;
      case '>': view_.key = static_cast<SortKey>((k + 1) % keys.size()); arrange(); break;
      case KEY_UP: if (offset_ > 0) --offset_; arrange(); break;
      case KEY_DOWN: if (offset_ + 1 < n) ++offset_; arrange(); break;
      case KEY_PPAGE: offset_ = offset_ > page ? offset_ - page : 0; arrange(); break;
      case KEY_NPAGE: offset_ = std::min(offset_ + page, n ? n - 1 : 0); arrange(); break;
      case KEY_HOME: offset_ = 0; arrange(); break;
      case KEY_END: offset_ = n > page ? n - page : 0; arrange(); break;
      case KEY_LEFT: hscroll_ = hscroll_ >= 8 ? hscroll_ - 8 : 0; break;
      case KEY_RIGHT: hscroll_ += 8; break;
      case KEY_RESIZE: arrange(); break;
      default:
        if (auto key = key_for(ch)) {
          view_.key = *key;
          if (needs_smaps(*key)) view_.pss = true;  // show the column it sorts by
          arrange();
        }
        break;
    }
    return true;
  }

  bool paused() const { return paused_; }

 private:
  Sampler& sampler_;
  const StatsOptions& o_;
  View view_;
  Sample sample_;
  size_t offset_ = 0, hscroll_ = 0;
  bool paused_ = false;
};

}  // namespace

int run_full_screen(Sampler& sampler, const StatsOptions& o, util::LineAppender* file,
                    const SampleWriter* file_writer) {
  Terminal terminal;
  ScreenState view(sampler, o);
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
    timeout(ms);
    int ch = getch();
    bool sample_now = false;
    if (ch != ERR) {
      if (!view.handle_key(ch, sample_now)) break;
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
    endwin();
    util::eprint("ptmem: cannot write '{}'\n", o.output);
    return 1;
  }
  return 0;
}

}  // namespace ptmem::stats
