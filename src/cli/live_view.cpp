#include "live_view.hpp"

#include <absl/container/flat_hash_map.h>
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

// "drip (trace_live.c:52)", or the module when there is no line: the site's first frame.
LiveView::Place LiveView::where(track::StackId stack) {
  if (stack == track::kNoStack) return {"(no call stack)"};
  if (!symbolizer_) symbolizer_ = std::make_unique<symbols::Symbolizer>(session_.modules());
  report::SymbolizerFrames frames(*symbolizer_);
  auto f = report::site_stack(stacks_, frames, stack, opt_.depth);
  if (f.empty()) return {"(no call stack)"};
  const auto& top = f.front();
  std::string name = top.function.empty() ? "???" : top.function;
  if (!top.file.empty())
    return {fmt::format("{} ({}:{})", name, top.file.substr(top.file.rfind('/') + 1), top.line), top.function, top.file,
            top.line};
  return {fmt::format("{} (in {})", name, top.module), top.function};
}

void LiveView::tick() {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // One pass over the tables: each site's live figures and its oldest block, each thread's.
  absl::flat_hash_map<track::StackId, report::SiteFigures> sites;
  absl::flat_hash_map<pid_t, report::SiteFigures> threads;
  auto older = [](uint64_t& oldest, uint64_t seq) {
    if (seq && (!oldest || seq < oldest)) oldest = seq;
  };
  tracker_.allocations().for_each([&](const track::Block& b) {
    auto& s = sites[b.stack];
    ++s.live_blocks;
    s.live_bytes += b.size;
    older(s.oldest_sequence, b.sequence);
    auto& th = threads[b.tid];
    ++th.live_blocks;
    th.live_bytes += b.size;
  });
  uint64_t fds_open = 0;
  tracker_.fds().for_each([&](const track::FdRecord& r) {
    if (r.fd <= 2 || r.origin == track::FdOrigin::Inherited) return;
    ++fds_open;
    if (r.stack == track::kNoStack) return;  // open before the attach: no site to watch
    auto& s = sites[r.stack];
    ++s.open_fds;
    older(s.oldest_sequence, r.sequence);
  });
  growth_.add(t, tracker_.next_sequence(), sites);
  ++ticks_;

  const track::Counters& c = tracker_.counters();
  const double dt = t - last_t_;
  const double allocs = dt > 0 ? double(c.alloc_calls - last_allocs_) / dt : 0;
  const double frees = dt > 0 ? double(c.free_calls - last_frees_) / dt : 0;
  last_t_ = t;
  last_allocs_ = c.alloc_calls;
  last_frees_ = c.free_calls;

  auto ranking = growth_.ranking();
  if (ranking.size() > opt_.top) ranking.resize(opt_.top);
  std::vector<Place> places;
  for (const auto& g : ranking) places.push_back(where(g.stack));

  if (recording_) {
    nlohmann::ordered_json j;
    j["type"] = "interval";
    j["t"] = t;
    j["pid"] = session_.outcome().pid;
    j["live_bytes"] = c.live_bytes;
    j["live_blocks"] = c.live_blocks;
    j["peak_live_bytes"] = c.peak_live_bytes;
    j["alloc_calls"] = c.alloc_calls;
    j["free_calls"] = c.free_calls;
    j["allocs_per_s"] = allocs;
    j["frees_per_s"] = frees;
    j["fds_open"] = fds_open;
    auto list = nlohmann::ordered_json::array();
    for (size_t i = 0; i < ranking.size(); ++i) {
      const auto& g = ranking[i];
      list.push_back({{"site", places[i].text},
                      {"function", places[i].function},
                      {"file", places[i].file},
                      {"line", places[i].line},
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
    for (const auto& [tid, f] : threads) {
      auto comm = proc::read_file(fmt::format("/proc/{}/task/{}/comm", session_.outcome().pid, tid), 64);
      std::string name = comm ? comm->substr(0, comm->find('\n')) : "";
      th.push_back({{"tid", tid}, {"name", name}, {"live_blocks", f.live_blocks}, {"live_bytes", f.live_bytes}});
    }
    j["threads"] = std::move(th);
    record_.append(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  // The record line first: whoever reads the block on stderr finds its line in the file.
  if (opt_.blocks) {
    std::string out = fmt::format("ptmem: [{:.1f}s] live {} in {} blocks (peak {}), {} allocs/s, {} frees/s, {} fds open\n", t,
                                  stats::human_bytes(c.live_bytes), c.live_blocks, stats::human_bytes(c.peak_live_bytes),
                                  stats::human_count(allocs), stats::human_count(frees), fds_open);
    for (size_t i = 0; i < ranking.size(); ++i) {
      const auto& g = ranking[i];
      std::string growth = g.fds_suspect && !g.bytes_suspect ? fmt::format("{:+.1f} fds/s", g.fds_per_s)
                                                               : stats::human_rate(g.bytes_per_s);
      std::string held = g.now.live_blocks || !g.now.open_fds
                             ? fmt::format("{} in {} blocks", stats::human_bytes(g.now.live_bytes), g.now.live_blocks)
                             : std::string();
      if (g.now.open_fds) held += fmt::format("{}{} fds open", held.empty() ? "" : ", ", g.now.open_fds);
      out += fmt::format("ptmem:   {:<7} {:>10} steady {:>3.0f}%  {}, oldest {:.1f}s, at {}\n",
                         g.suspect() ? "SUSPECT" : "", growth, g.steadiness * 100, held, g.oldest_seconds, places[i].text);
    }
    util::eprint("{}", out);
  }
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
