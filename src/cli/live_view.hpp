// What `ptmem launch/attach` says while it traces (issue #9): every --interval, the totals
// and rates, the call sites holding the most memory or fds with their growth (a steady
// grower named a suspect), one compact block on stderr, and one JSON line in --record's
// file.  It reads the tables between events; the engine knows nothing of it.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "ptmem/ptrace/session.hpp"
#include "ptmem/report/growth.hpp"
#include "ptmem/symbols/symbolizer.hpp"
#include "ptmem/track/stack_table.hpp"
#include "ptmem/track/tracker.hpp"
#include "ptmem/util/output_file.hpp"

namespace ptmem::cli {

class LiveView {
 public:
  struct Options {
    bool blocks = true;    ///< a compact block on stderr per interval
    std::string record;    ///< --record FILE ("" none)
    size_t depth = 16;
    size_t top = 5;        ///< sites per block
  };
  LiveView(Options o, const track::Tracker& tracker, const track::StackTable& stacks,
           const ptrace::Session& session);
  /// Opens --record's file (truncating it).  False with |error| set.
  bool open(std::string* error);
  /// One interval: figures, growth, the block and the record line.
  void tick();
  /// The final report as the record's last line.
  void finish(const std::string& report_json);
  /// The growth figures of |stack| as of the last tick (zeros before any).
  report::SiteGrowth growth_of(track::StackId stack) const { return growth_.of(stack); }
  bool active() const { return ticks_ > 0; }

 private:
  /// A site as the block names it ("drip (trace_live.c:52)") and its first frame.
  struct Place {
    std::string text, function, file;
    int line = 0;
  };
  Place where(track::StackId stack);

  Options opt_;
  const track::Tracker& tracker_;
  const track::StackTable& stacks_;
  const ptrace::Session& session_;
  report::SiteGrowthTracker growth_;
  util::LineAppender record_;
  bool recording_ = false;
  std::unique_ptr<symbols::Symbolizer> symbolizer_;  // made at the first tick that needs it
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double last_t_ = 0;
  uint64_t last_allocs_ = 0, last_frees_ = 0;
  uint64_t ticks_ = 0;
};

}  // namespace ptmem::cli
