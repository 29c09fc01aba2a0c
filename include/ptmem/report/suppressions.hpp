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
  /// valgrind: the match-leak-kinds (definitely_lost ... still_reachable names); empty = any.
  std::vector<std::string> kinds;
  struct FrameMatch {
    enum class Kind { Fun, Obj, Ellipsis } kind = Kind::Fun;
    std::string pattern;  ///< glob: '*' and '?'
  };
  std::vector<FrameMatch> frames;  ///< valgrind: innermost first
};

class Suppressions {
 public:
  /// Reads a file, valgrind or LSan format (told apart by content).  On a malformed file:
  /// nullopt and |error| says "FILE:LINE: what".
  bool load_file(const std::string& path, std::string* error);
  /// Parses text as if read from |name|.
  bool load_text(const std::string& text, const std::string& name, std::string* error);
  void add_defaults();
  const std::vector<Suppression>& all() const { return all_; }

  /// The first suppression matching this leak site, or null.
  const Suppression* match(const Leak& leak) const;

  /// Takes suppressed sites out of report.leaks (and its children's), moves their totals
  /// out of summary.leaked_* and summary.by_kind into suppressed_* and suppressions_used.
  void apply(Report& report) const;

 private:
  std::vector<Suppression> all_;
};

/// A valgrind suppression entry (Memcheck:Leak, match-leak-kinds, fun:/obj: frames) for a
/// leak site, as --gen-suppressions prints it.
std::string valgrind_suppression(const Leak& leak, const std::string& name);

}  // namespace ptmem::report
