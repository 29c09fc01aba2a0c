// Suppressions (issue #10): valgrind .supp files (Memcheck:Leak entries), LeakSanitizer
// `leak:` pattern files and ptmem's built-in defaults for the one-time allocations of the C
// and C++ runtimes.  They take leak sites out of a Report and count what each matched.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "ptmem/report/report.hpp"

namespace ptmem::report {

struct Suppression {
  enum class Source { Valgrind, LeakSanitizer, Default } source = Source::Valgrind;
  std::string name;  ///< valgrind: the entry's name; LSan: the pattern
  std::string file;  ///< where it was read; "<default>" for the built-in ones
  int line = 0;      ///< the line the entry starts on in |file|
  /// valgrind: the match-leak-kinds as ptmem's kind names (definitely_lost ...
  /// still_reachable; {"none"} for match-leak-kinds: none); empty = any.
  std::vector<std::string> kinds;
  struct FrameMatch {
    /// fun: function name, obj: module path, src: FILE[:LINE] (valgrind 3.20), '...': any
    /// number of frames, none included.
    enum class Kind { Fun, Obj, Ellipsis, Src } kind = Kind::Fun;
    std::string pattern;  ///< glob: '*', '?' and '\' escaping the next character
  };
  std::vector<FrameMatch> frames;  ///< valgrind and defaults: innermost first; LSan: none
};

class Suppressions {
 public:
  /// Reads a file, valgrind or LSan format (told apart by content: valgrind's first line
  /// that is not blank or a comment is '{').  On a malformed file: false, nothing of the
  /// file is added, and |error| (if not null) says "FILE:LINE: what" ("FILE: why" when it
  /// cannot be read).
  bool load_file(const std::string& path, std::string* error);
  /// Parses text as if read from |name|; same results as load_file.
  bool load_text(const std::string& text, const std::string& name, std::string* error);
  /// ptmem's built-in entries (file "<default>") for the C and C++ runtimes' one-time
  /// allocations; see default_suppressions_text().
  void add_defaults();
  const std::vector<Suppression>& all() const { return all_; }

  /// The first suppression (in load order) matching this leak site, or null.
  const Suppression* match(const Leak& leak) const;

  /// Takes suppressed sites out of report.leaks (and its children's), moves their totals
  /// out of summary.leaked_* and summary.by_kind into suppressed_* and suppressions_used.
  void apply(Report& report) const;

 private:
  // What matching needs per frame line, worked out once at load.
  struct Compiled {
    std::vector<std::string> alts;  ///< fun: a mangled pattern demangled, else ""
    std::vector<bool> runtime;      ///< the line may stand for a frame ptmem's sites omit
  };
  void add(Suppression s);
  std::vector<Suppression> all_;
  std::vector<Compiled> compiled_;  ///< parallel to all_
};

/// The valgrind-format text add_defaults() loads, for reading and for tests.
const std::string& default_suppressions_text();

/// A valgrind suppression entry (Memcheck:Leak, match-leak-kinds, fun:/obj: frames) for a
/// leak site, as memcheck's --gen-suppressions prints it, but with ptmem's demangled names
/// ('*', '?' and '\\' escaped) and no allocator line; at most 24 frames.  Loaded back, it
/// matches that site.
std::string valgrind_suppression(const Leak& leak, const std::string& name);

}  // namespace ptmem::report
