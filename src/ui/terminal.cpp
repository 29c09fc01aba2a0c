#include "ptmem/ui/terminal.hpp"

#include <algorithm>
#include <cstdlib>
#include <curses.h>

namespace ptmem::ui {
namespace {

constexpr short kSuspectPair = 1;

}  // namespace

struct Terminal::Impl {
  SCREEN* screen = nullptr;
};

std::unique_ptr<Terminal> Terminal::open(Stream out, std::string* error) {
  // newterm rather than initscr: the trace draws on stderr, its stdout may be the target's.
  SCREEN* screen = newterm(nullptr, out == Stream::Stderr ? stderr : stdout, stdin);
  if (!screen) {
    const char* term = std::getenv("TERM");
    *error = std::string("cannot use the terminal: TERM=") + (term ? term : "") + " is unknown";
    return nullptr;
  }
  std::unique_ptr<Terminal> t(new Terminal);
  t->impl_ = new Impl{screen};
  set_term(screen);
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
  return t;
}

Terminal::~Terminal() {
  endwin();
  delscreen(impl_->screen);
  delete impl_;
}

int Terminal::lines() const { return LINES; }
int Terminal::columns() const { return COLS; }

int Terminal::key(int timeout_ms) {
  timeout(timeout_ms);
  int ch = getch();
  return ch == ERR ? -1 : ch;
}

void Terminal::clear() { erase(); }

void Terminal::put(int y, std::string_view text, Style style, size_t hscroll, bool selected) {
  if (y < 0 || y >= LINES) return;
  attr_t attr = A_NORMAL;
  switch (style) {
    case Style::Normal: break;
    case Style::Bold: attr = A_BOLD; break;
    case Style::Dim: attr = A_DIM; break;
    case Style::Header: attr = A_REVERSE; break;
    case Style::Suspect: attr = has_colors() ? COLOR_PAIR(kSuspectPair) : A_BOLD; break;
    case Style::SuspectBold: attr = A_BOLD | (has_colors() ? COLOR_PAIR(kSuspectPair) : A_NORMAL); break;
  }
  if (selected) attr |= A_STANDOUT;
  std::string_view v = hscroll < text.size() ? text.substr(hscroll) : std::string_view();
  std::string line(v.substr(0, std::min<size_t>(v.size(), size_t(std::max(COLS, 0)))));
  // A header or the selection is a bar across the screen, not just under the text.
  if (style == Style::Header || selected) line.resize(size_t(std::max(COLS, 0)), ' ');
  attrset(attr);
  mvaddnstr(y, 0, line.data(), int(line.size()));
  attrset(A_NORMAL);
}

void Terminal::show() { refresh(); }

namespace keys {
const int up = KEY_UP, down = KEY_DOWN, page_up = KEY_PPAGE, page_down = KEY_NPAGE, home = KEY_HOME,
          end = KEY_END, left = KEY_LEFT, right = KEY_RIGHT, resize = KEY_RESIZE, enter = KEY_ENTER;
bool is_enter(int key) { return key == KEY_ENTER || key == '\n' || key == '\r'; }
}  // namespace keys

bool Selection::move(int key, size_t count, size_t page) {
  page = std::max<size_t>(page, 1);
  if (key == keys::up) selected_ = selected_ ? selected_ - 1 : 0;
  else if (key == keys::down) ++selected_;
  else if (key == keys::page_up) selected_ = selected_ > page ? selected_ - page : 0;
  else if (key == keys::page_down) selected_ += page;
  else if (key == keys::home) selected_ = 0;
  else if (key == keys::end) selected_ = count ? count - 1 : 0;
  else return false;
  clamp(count, page);
  return true;
}

void Selection::clamp(size_t count, size_t page) {
  page = std::max<size_t>(page, 1);
  if (selected_ >= count) selected_ = count ? count - 1 : 0;
  if (selected_ < offset_) offset_ = selected_;
  if (selected_ >= offset_ + page) offset_ = selected_ + 1 - page;
  // No empty screen below the last row when there are enough to fill it.
  if (count > page && offset_ > count - page) offset_ = count - page;
  if (count <= page) offset_ = 0;
}

Pager::Pager(std::string title, std::vector<std::string> text, std::string footer)
    : title_(std::move(title)), footer_(std::move(footer)), text_(std::move(text)) {}

size_t Pager::page(const Terminal& t) const { return t.lines() > 2 ? size_t(t.lines() - 2) : 1; }

void Pager::draw(Terminal& t) {
  t.clear();
  const size_t rows = page(t);
  if (text_.size() > rows && offset_ > text_.size() - rows) offset_ = text_.size() - rows;
  t.put(0, title_, Style::Bold);
  for (size_t i = 0; i < rows && offset_ + i < text_.size(); ++i) t.put(int(i + 1), text_[offset_ + i], Style::Normal, hscroll_);
  std::string where = text_.size() > rows ? "  (lines " + std::to_string(offset_ + 1) + "-" +
                                                std::to_string(std::min(offset_ + rows, text_.size())) + " of " +
                                                std::to_string(text_.size()) + ")"
                                          : "";
  t.put(t.lines() - 1, footer_ + where, Style::Header);
  t.show();
}

bool Pager::handle(int key, const Terminal& t) {
  const size_t rows = page(t);
  const size_t last = text_.size() > rows ? text_.size() - rows : 0;
  if (key == 'q' || key == 'Q' || key == keys::escape || keys::is_enter(key)) return false;
  if (key == keys::up) offset_ = offset_ ? offset_ - 1 : 0;
  else if (key == keys::down) offset_ = std::min(offset_ + 1, last);
  else if (key == keys::page_up || key == 'b') offset_ = offset_ > rows ? offset_ - rows : 0;
  else if (key == keys::page_down || key == ' ') offset_ = std::min(offset_ + rows, last);
  else if (key == keys::home || key == 'g') offset_ = 0;
  else if (key == keys::end || key == 'G') offset_ = last;
  else if (key == keys::left) hscroll_ = hscroll_ >= 8 ? hscroll_ - 8 : 0;
  else if (key == keys::right) hscroll_ += 8;
  return true;
}

}  // namespace ptmem::ui
