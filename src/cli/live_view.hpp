// What `ptmem launch/attach` says while it traces (issue #9): every --interval, the totals
// and rates, the call sites holding the most memory or fds with their growth (a steady
// grower named a suspect), and what each thread holds.  One Frame per interval, read from
// the tables between events (the engine knows nothing of it), then shown as a compact
// block on stderr, a JSON line in --record's file, and/or the full-screen view
// (live_screen.hpp).
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "ptmem/ptrace/session.hpp"
#include "ptmem/report/growth.hpp"
#include "ptmem/report/symbolizer_frames.hpp"
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
    size_t top = 5;        ///< sites per block and per record line
  };
  /// The figures of one interval.
  struct Frame {
    double t = 0;  ///< seconds since the trace began
    track::Counters counters;
    double allocs_per_s = 0, frees_per_s = 0;
    uint64_t fds_open = 0;  ///< opened while traced or before the attach, not inherited at launch
    std::vector<report::SiteGrowth> sites;  ///< every site in the window, suspects first
    struct Thread {
      pid_t tid = 0;
      std::string name;
      uint64_t live_blocks = 0, live_bytes = 0;
    };
    std::vector<Thread> threads;  ///< threads holding live blocks, most bytes first
  };
  /// A site as the views name it ("drip (trace_live.c:52)") and its first frame.
  struct Place {
    std::string text, function, file;
    int line = 0;
  };

  LiveView(Options o, const track::Tracker& tracker, const track::StackTable& stacks,
           const ptrace::Session& session);
  /// Opens --record's file (truncating it).  False with |error| set.
  bool open(std::string* error);
  /// One interval: the frame, then the block and the record line.
  void tick();
  /// The final report as the record's last line.
  void finish(const std::string& report_json);
  /// The growth figures of |stack| as of the last tick (zeros before any).
  report::SiteGrowth growth_of(track::StackId stack) const { return growth_.of(stack); }
  bool active() const { return ticks_ > 0; }

  const Frame& frame() const { return frame_; }
  /// Where |stack| allocates (symbolized once, then remembered: a stack never changes).
  const Place& where(track::StackId stack);
  /// The stack's frames, one line each, as the report prints them.
  std::vector<std::string> stack_lines(track::StackId stack);
  /// A site's growth as the views print it: "+40K/s", or "+5.0 fds/s" for a site of fds.
  static std::string growth_text(const report::SiteGrowth& g);
  pid_t pid() const { return session_.outcome().pid; }

 private:
  report::SymbolizerFrames frames();
  void refresh_oldest();
  void write_record();
  void write_block();

  Options opt_;
  const track::Tracker& tracker_;
  const track::StackTable& stacks_;
  const ptrace::Session& session_;
  report::SiteGrowthTracker growth_;
  util::LineAppender record_;
  bool recording_ = false;
  std::unique_ptr<symbols::Symbolizer> symbolizer_;  // made at the first site named
  absl::flat_hash_map<track::StackId, Place> places_;
  // Each site's oldest live block, from a walk over every block.  The walk is the one cost
  // that grows with the live blocks, so above kWalkPerTick blocks it is made every few
  // intervals; in between, a site's oldest block is the one last seen (or, for a site with
  // no live block then, no older than that walk).
  static constexpr uint64_t kWalkPerTick = 1'000'000;
  absl::flat_hash_map<track::StackId, uint64_t> oldest_;
  uint64_t walk_sequence_ = 0, ticks_since_walk_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double last_t_ = 0;
  uint64_t last_allocs_ = 0, last_frees_ = 0;
  uint64_t ticks_ = 0;
  Frame frame_;
};

}  // namespace ptmem::cli
