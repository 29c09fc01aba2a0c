#include <algorithm>
#include <map>
#include <string>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "ptmem/report/report.hpp"
#include "ptmem/report/site.hpp"

namespace ptmem::report {
namespace {

// Symbolizes each stack once (blocks and fds of one site share a StackId) and applies the
// SITE rule and the depth.
class StackFrames {
 public:
  StackFrames(const track::StackTable& stacks, FrameSource& source, size_t depth)
      : stacks_(stacks), source_(source), depth_(depth) {}

  const std::vector<Frame>& get(track::StackId id) {
    auto [it, inserted] = cache_.try_emplace(id);
    if (!inserted) return it->second;
    auto stack = stacks_.get(id);
    std::vector<std::vector<Frame>> per_pc;
    per_pc.reserve(stack.pcs.size());
    for (size_t i = 0; i < stack.pcs.size(); ++i) {
      // pcs[0] is the hooked function's entry; the others are return addresses.
      per_pc.push_back(source_.frames_for(stack.pcs[i], stack.module_generation, i > 0));
    }
    it->second = site_frames(per_pc, depth_);
    return it->second;
  }

 private:
  const track::StackTable& stacks_;
  FrameSource& source_;
  size_t depth_;
  absl::flat_hash_map<track::StackId, std::vector<Frame>> cache_;
};

}  // namespace

std::vector<Frame> site_stack(const track::StackTable& stacks, FrameSource& frames, track::StackId id, size_t depth) {
  StackFrames one(stacks, frames, depth);
  return one.get(id);
}

std::string frames_key(const std::vector<Frame>& frames) {
  std::string key;
  for (const Frame& f : frames)
    key += fmt::format("{:x}|{}|{}|{}|{}|{}\n", f.address, f.module, f.function, f.file, f.line,
                       f.inlined ? 1 : 0);
  return key;
}

proc::FdKind kind_from_origin(track::FdOrigin origin) {
  using track::FdOrigin;
  using proc::FdKind;
  switch (origin) {
    case FdOrigin::Open:
    case FdOrigin::Fopen: return FdKind::File;
    case FdOrigin::Opendir: return FdKind::Directory;
    case FdOrigin::Socket:
    case FdOrigin::Accept:
    case FdOrigin::Socketpair: return FdKind::Socket;
    case FdOrigin::Pipe: return FdKind::Pipe;
    case FdOrigin::Eventfd: return FdKind::Eventfd;
    case FdOrigin::Timerfd: return FdKind::Timerfd;
    case FdOrigin::Signalfd: return FdKind::Signalfd;
    case FdOrigin::Epoll: return FdKind::Epoll;
    case FdOrigin::Inotify: return FdKind::Inotify;
    case FdOrigin::Memfd: return FdKind::Memfd;
    default: return FdKind::Other;
  }
}

Report build_report(const track::Tracker& tracker, const track::StackTable& stacks,
                    FrameSource& frames, const TargetInfo& target,
                    const std::vector<proc::FdEntry>& fds_at_end, const ReportOptions& options) {
  Report r;
  r.target = target;
  r.memory_traced = options.memory;
  r.fds_traced = options.fds;
  r.summary.counters = tracker.counters();
  StackFrames symbolized(stacks, frames, options.depth);

  if (options.memory) {
    struct Totals {
      uint64_t blocks = 0, bytes = 0;
    };
    // Groups: one per (stack, kind).
    constexpr int kUnclassified = track::kLeakKinds;  // without a scan
    const track::Reachability* reach = options.reachability;
    r.summary.classified = reach != nullptr;
    if (reach) r.summary.scan = reach->stats();
    absl::flat_hash_map<std::pair<track::StackId, int>, Totals> by_stack;
    tracker.allocations().for_each([&](const track::Block& b) {
      int kind = reach ? static_cast<int>(reach->kind_of(b.address)) : kUnclassified;
      Totals& t = by_stack[{b.stack, kind}];
      ++t.blocks;
      t.bytes += b.size;
      if (reach) {
        ++r.summary.by_kind[kind].blocks;
        r.summary.by_kind[kind].bytes += b.size;
      }
    });
    std::map<std::pair<std::string, int>, size_t> group_of;  // (frames key, kind) -> index in r.leaks
    // Keys in ascending order, so the report does not depend on hash order.
    std::vector<std::pair<track::StackId, int>> ids;
    ids.reserve(by_stack.size());
    for (const auto& [id, t] : by_stack) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    for (const auto& id : ids) {
      const Totals& t = by_stack[id];
      const std::vector<Frame>& f = symbolized.get(id.first);
      auto [it, inserted] = group_of.try_emplace({frames_key(f), id.second}, r.leaks.size());
      if (inserted) {
        std::string kind = id.second == kUnclassified
                               ? "unclassified"
                               : std::string(track::to_string(static_cast<track::LeakKind>(id.second)));
        r.leaks.push_back(Leak{kind, 0, 0, f});
      }
      Leak& leak = r.leaks[it->second];
      leak.blocks += t.blocks;
      leak.bytes += t.bytes;
      if (options.trend_of)
        if (auto g = options.trend_of(id.first)) {
          // One line reached through several stacks: their rates add up.
          SiteTrend& sum = leak.trend ? *leak.trend : leak.trend.emplace();
          sum.bytes_per_s += g->bytes_per_s;
          sum.fds_per_s += g->fds_per_s;
          sum.steadiness = std::max(sum.steadiness, g->steadiness);
          sum.suspect = sum.suspect || g->suspect;
          sum.oldest_seconds = std::max(sum.oldest_seconds, g->oldest_seconds);
        }
      r.summary.leaked_blocks += t.blocks;
      r.summary.leaked_bytes += t.bytes;
    }
    auto by_size = [](const Leak& a, const Leak& b) {
      if (a.bytes != b.bytes) return a.bytes > b.bytes;
      return a.blocks > b.blocks;
    };
    std::stable_sort(r.leaks.begin(), r.leaks.end(), by_size);
    r.summary.leak_sites = r.leaks.size();

    for (const auto& [tid, t] : tracker.live_by_thread()) {
      if (!t.blocks) continue;  // all it allocated was freed
      auto name = tracker.thread_names().find(tid);
      r.threads.push_back({tid, name == tracker.thread_names().end() ? "" : name->second, t.blocks, t.bytes});
    }
    std::sort(r.threads.begin(), r.threads.end(), [](const ThreadLive& a, const ThreadLive& b) {
      return a.bytes != b.bytes ? a.bytes > b.bytes : a.tid < b.tid;
    });

    // Every allocating site, grouped by what it prints as, like the leaks.
    std::map<std::string, size_t> site_of;
    const auto& allocated = tracker.allocated_by_stack();
    for (size_t id = 0; options.allocated_sites && id < allocated.size(); ++id) {
      if (!allocated[id].calls) continue;
      const std::vector<Frame>& f = symbolized.get(static_cast<track::StackId>(id));
      auto [it, inserted] = site_of.try_emplace(frames_key(f), r.allocated.size());
      if (inserted) r.allocated.push_back(Leak{"allocated", 0, 0, f});
      r.allocated[it->second].blocks += allocated[id].calls;
      r.allocated[it->second].bytes += allocated[id].bytes;
    }
    std::stable_sort(r.allocated.begin(), r.allocated.end(), by_size);
  }

  if (options.fds) {
    r.summary.fd_open_at_end = tracker.fds().size();
    absl::flat_hash_map<int, const proc::FdEntry*> details;
    for (const proc::FdEntry& e : fds_at_end) details[e.fd] = &e;
    for (const track::FdRecord& rec : tracker.fds().sorted()) {
      if (rec.fd <= 2 || rec.origin == track::FdOrigin::Inherited) continue;
      FdLeak leak;
      leak.fd = rec.fd;
      leak.origin = rec.origin;
      if (auto it = details.find(rec.fd); it != details.end()) {
        const proc::FdEntry& e = *it->second;
        leak.kind = e.kind;
        leak.target = e.target;
        leak.description = e.description();
        leak.flags = e.flags;
        leak.socket = e.socket;
      } else {
        leak.kind = kind_from_origin(rec.origin);
        leak.description = proc::to_string(leak.kind);
      }
      if (rec.stack != track::kNoStack) leak.stack = symbolized.get(rec.stack);
      if (rec.stack != track::kNoStack && options.trend_of) leak.trend = options.trend_of(rec.stack);
      r.fd_leaks.push_back(std::move(leak));
    }
    r.summary.fd_leaked = r.fd_leaks.size();
  }
  return r;
}

}  // namespace ptmem::report
