#include "live_view.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ptmem/proc/maps.hpp"
#include "ptmem/report/report.hpp"
#include "ptmem/report/symbolizer_frames.hpp"
#include "ptmem/stats/format.hpp"
#include "ptmem/util/eprint.hpp"

namespace ptmem::cli {

LiveView::LiveView(Options o, const track::Tracker& tracker, const track::StackTable& stacks,
                   const ptrace::Session& session)
    : opt_(std::move(o)), tracker_(tracker), stacks_(stacks), session_(session) {}

bool LiveView::open(std::string* error) {
  if (opt_.record.empty()) return true;
  recording_ = record_.open(opt_.record, error);
  return recording_;
}

// The symbolizer is made at the first site named: a trace without a live view never pays
// for reading DWARF before its report.
report::SymbolizerFrames LiveView::frames() {
  if (!symbolizer_) symbolizer_ = std::make_unique<symbols::Symbolizer>(session_.modules());
  return report::SymbolizerFrames(*symbolizer_);
}

std::string LiveView::growth_text(const report::SiteGrowth& g) {
  const bool fds = (g.fds_suspect && !g.bytes_suspect) || (!g.now.live_blocks && g.now.open_fds);
  return fds ? fmt::format("{:+.1f} fds/s", g.fds_per_s) : stats::human_rate(g.bytes_per_s);
}

// "drip (trace_live.c:52)", or the module when there is no line: the site's first frame.
const LiveView::Place& LiveView::where(track::StackId stack) {
  if (auto it = places_.find(stack); it != places_.end()) return it->second;
  Place place{"(no call stack)"};
  if (stack != track::kNoStack) {
    auto source = frames();
    auto f = report::site_stack(stacks_, source, stack, opt_.depth);
    if (!f.empty()) {
      const auto& top = f.front();
      std::string name = top.function.empty() ? "???" : top.function;
      if (!top.file.empty())
        place = {fmt::format("{} ({}:{})", name, top.file.substr(top.file.rfind('/') + 1), top.line), top.function,
                 top.file, top.line};
      else
        place = {fmt::format("{} (in {})", name, top.module), top.function};
    }
  }
  return places_.emplace(stack, std::move(place)).first->second;
}

std::vector<std::string> LiveView::stack_lines(track::StackId stack) {
  std::vector<std::string> out;
  if (stack == track::kNoStack) return {"(no call stack: the fd was open before the attach)"};
  auto source = frames();
  // Every frame recorded, not just the report's --depth.
  for (const auto& f : report::site_stack(stacks_, source, stack, 256)) {
    std::string line = fmt::format("  {:#x}  {}", f.address, f.function.empty() ? "???" : f.function);
    if (!f.file.empty()) line += fmt::format(" ({}:{})", f.file, f.line);
    else if (!f.module.empty()) line += fmt::format(" (in {})", f.module);
    if (f.inlined) line += " [inlined]";
    out.push_back(std::move(line));
  }
  if (out.empty()) out.push_back("(no frames)");
  return out;
}

void LiveView::refresh_oldest() {
  const uint64_t live = tracker_.counters().live_blocks;
  ++ticks_since_walk_;
  if (ticks_ > 0 && live > kWalkPerTick * ticks_since_walk_) return;
  ticks_since_walk_ = 0;
  oldest_.clear();
  walk_sequence_ = tracker_.next_sequence();
  tracker_.allocations().for_each([&](const track::Block& b) {
    auto [it, added] = oldest_.try_emplace(b.stack, b.sequence);
    if (!added && b.sequence < it->second) it->second = b.sequence;
  });
}

void LiveView::tick() {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // Each site's live figures come from the tracker's counters (no walk over the blocks);
  // only the age of its oldest block needs one (refresh_oldest).
  refresh_oldest();
  absl::flat_hash_map<track::StackId, report::SiteFigures> sites;
  const auto& by_stack = tracker_.allocated_by_stack();
  for (track::StackId id = 0; id < by_stack.size(); ++id) {
    if (!by_stack[id].live_blocks) continue;
    auto& s = sites[id];
    s.live_blocks = by_stack[id].live_blocks;
    s.live_bytes = by_stack[id].live_bytes;
    auto it = oldest_.find(id);
    s.oldest_sequence = it != oldest_.end() ? it->second : walk_sequence_;
  }
  uint64_t fds_open = 0;
  tracker_.fds().for_each([&](const track::FdRecord& r) {
    if (r.fd <= 2 || r.origin == track::FdOrigin::Inherited) return;
    ++fds_open;
    if (r.stack == track::kNoStack) return;  // open before the attach: no site to watch
    auto& s = sites[r.stack];
    ++s.open_fds;
    if (r.sequence && (!s.oldest_sequence || r.sequence < s.oldest_sequence)) s.oldest_sequence = r.sequence;
  });
  growth_.add(t, tracker_.next_sequence(), sites);
  ++ticks_;

  Frame f;
  f.t = t;
  f.counters = tracker_.counters();
  const double dt = t - last_t_;
  f.allocs_per_s = dt > 0 ? double(f.counters.alloc_calls - last_allocs_) / dt : 0;
  f.frees_per_s = dt > 0 ? double(f.counters.free_calls - last_frees_) / dt : 0;
  last_t_ = t;
  last_allocs_ = f.counters.alloc_calls;
  last_frees_ = f.counters.free_calls;
  f.fds_open = fds_open;
  f.sites = growth_.ranking();
  for (const auto& [tid, live] : tracker_.live_by_thread()) {
    if (!live.blocks) continue;
    Frame::Thread th{tid, {}, live.blocks, live.bytes};
    if (auto comm = proc::read_file(fmt::format("/proc/{}/task/{}/comm", pid(), tid), 64); comm && !comm->empty())
      th.name = comm->substr(0, comm->find('\n'));
    else if (auto it = tracker_.thread_names().find(tid); it != tracker_.thread_names().end())
      th.name = it->second;  // ended: named at its exit
    f.threads.push_back(std::move(th));
  }
  std::sort(f.threads.begin(), f.threads.end(), [](const Frame::Thread& a, const Frame::Thread& b) {
    return a.live_bytes != b.live_bytes ? a.live_bytes > b.live_bytes : a.tid < b.tid;
  });
  frame_ = std::move(f);

  // The record line first: whoever reads the block on stderr finds its line in the file.
  if (recording_) write_record();
  if (opt_.blocks) write_block();
}

void LiveView::write_record() {
  const Frame& f = frame_;
  const track::Counters& c = f.counters;
  nlohmann::ordered_json j;
  j["type"] = "interval";
  j["t"] = f.t;
  j["pid"] = pid();
  j["live_bytes"] = c.live_bytes;
  j["live_blocks"] = c.live_blocks;
  j["peak_live_bytes"] = c.peak_live_bytes;
  j["alloc_calls"] = c.alloc_calls;
  j["free_calls"] = c.free_calls;
  j["allocs_per_s"] = f.allocs_per_s;
  j["frees_per_s"] = f.frees_per_s;
  j["fds_open"] = f.fds_open;
  auto list = nlohmann::ordered_json::array();
  for (size_t i = 0; i < f.sites.size() && i < opt_.top; ++i) {
    const auto& g = f.sites[i];
    const Place& p = where(g.stack);
    list.push_back({{"site", p.text},
                    {"function", p.function},
                    {"file", p.file},
                    {"line", p.line},
                    {"live_bytes", g.now.live_bytes},
                    {"live_blocks", g.now.live_blocks},
                    {"open_fds", g.now.open_fds},
                    {"bytes_per_s", g.bytes_per_s},
                    {"fds_per_s", g.fds_per_s},
                    {"steadiness", g.steadiness},
                    {"suspect", g.suspect()},
                    {"oldest_seconds", g.oldest_seconds}});
  }
  j["sites"] = std::move(list);
  auto th = nlohmann::ordered_json::array();
  for (const auto& t : f.threads)
    th.push_back({{"tid", t.tid}, {"name", t.name}, {"live_blocks", t.live_blocks}, {"live_bytes", t.live_bytes}});
  j["threads"] = std::move(th);
  record_.append(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void LiveView::write_block() {
  const Frame& f = frame_;
  const track::Counters& c = f.counters;
  std::string out = fmt::format("ptmem: [{:.1f}s] live {} in {} blocks (peak {}), {} allocs/s, {} frees/s, {} fds open\n",
                                f.t, stats::human_bytes(c.live_bytes), c.live_blocks,
                                stats::human_bytes(c.peak_live_bytes), stats::human_count(f.allocs_per_s),
                                stats::human_count(f.frees_per_s), f.fds_open);
  for (size_t i = 0; i < f.sites.size() && i < opt_.top; ++i) {
    const auto& g = f.sites[i];
    std::string held = g.now.live_blocks || !g.now.open_fds
                           ? fmt::format("{} in {} blocks", stats::human_bytes(g.now.live_bytes), g.now.live_blocks)
                           : std::string();
    if (g.now.open_fds) held += fmt::format("{}{} fds open", held.empty() ? "" : ", ", g.now.open_fds);
    out += fmt::format("ptmem:   {:<7} {:>10} steady {:>3.0f}%  {}, oldest {:.1f}s, at {}\n",
                       g.suspect() ? "SUSPECT" : "", growth_text(g), g.steadiness * 100, held, g.oldest_seconds,
                       where(g.stack).text);
  }
  util::eprint("{}", out);
}

void LiveView::finish(const std::string& report_json) {
  if (!recording_) return;
  // The final report as one line: {"type": "final", "report": {...}}.
  auto report = nlohmann::ordered_json::parse(report_json, nullptr, false);
  nlohmann::ordered_json j;
  j["type"] = "final";
  j["report"] = std::move(report);
  record_.append(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace ptmem::cli
