// The full-screen terminal both views draw on (`ptmem stats`, and the live view of
// `ptmem attach`, which `stats` opens on the selected process): ncurses set up once,
// rows clipped and scrolled sideways, a selection that moves with the keys, and a pager
// for long text (a call stack, a report).  The views own what they show; this owns the
// terminal.
#pragma once
#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ptmem::ui {

/// How a row is drawn.
enum class Style { Normal, Bold, Dim, Header, Suspect, SuspectBold };

/// The terminal, in full-screen mode from construction to destruction: whatever ends a view
/// (a key, a signal, an exception), the destructor gives the user back a clean terminal.
/// Drawn on stdout (stats) or stderr (the trace, whose stdout may be the target's).
class Terminal {
 public:
  enum class Stream { Stdout, Stderr };
  /// Null, with |error| set, when the terminal cannot be used (an unknown TERM).
  static std::unique_ptr<Terminal> open(Stream out, std::string* error);
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  int lines() const;
  int columns() const;
  /// The next key within |timeout_ms| (0: do not wait), or -1.
  int key(int timeout_ms);
  void clear();
  /// Line |y| (from 0): |text| from column |hscroll| on, clipped to the width.  A Header
  /// or selected line fills the width.
  void put(int y, std::string_view text, Style style = Style::Normal, size_t hscroll = 0, bool selected = false);
  void show();

 private:
  Terminal() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

/// Key codes the views test for, without including curses.h everywhere.
namespace keys {
extern const int up, down, page_up, page_down, home, end, left, right, resize, enter;
constexpr int escape = 27;
/// Enter as a terminal sends it: KEY_ENTER, '\n' or '\r'.
bool is_enter(int key);
}  // namespace keys

/// A selected row among |count| rows, |page| of which fit on the screen: the top row shown
/// (offset) follows the selection.
class Selection {
 public:
  size_t selected() const { return selected_; }
  size_t offset() const { return offset_; }
  void select(size_t index) { selected_ = index; }
  void scroll_to(size_t offset) { offset_ = std::min(offset, selected_); }
  /// Applies a movement key; false if |key| is none.
  bool move(int key, size_t count, size_t page);
  /// Keeps the selection within |count| rows and on the |page| rows shown.
  void clamp(size_t count, size_t page);

 private:
  size_t selected_ = 0, offset_ = 0;
};

/// Long text on the whole screen: a title line, the text scrolled with the arrows and
/// pages, and a footer saying how to leave.  Driven key by key, so the loop that owns the
/// screen keeps running (the trace goes on while a stack is read).
class Pager {
 public:
  Pager(std::string title, std::vector<std::string> text, std::string footer);
  void draw(Terminal& terminal);
  /// Scrolls; false when |key| leaves the pager (q, Escape, Enter).
  bool handle(int key, const Terminal& terminal);

 private:
  size_t page(const Terminal& terminal) const;
  std::string title_, footer_;
  std::vector<std::string> text_;
  size_t offset_ = 0, hscroll_ = 0;
};

}  // namespace ptmem::ui
