#include "ptmem/track/reachability.hpp"

#include <algorithm>
#include <cstring>

namespace ptmem::track {

std::string_view to_string(LeakKind kind) {
  switch (kind) {
    case LeakKind::DefinitelyLost: return "definitely_lost";
    case LeakKind::IndirectlyLost: return "indirectly_lost";
    case LeakKind::PossiblyLost: return "possibly_lost";
    case LeakKind::StillReachable: return "still_reachable";
  }
  return "definitely_lost";
}

namespace {

// Per block, one byte: how it was reached (never, through some interior pointer, or by
// start pointers only), and for unreached blocks its part in the lost cliques.
enum : uint8_t {
  kUnreached = 0, kInterior = 1, kStart = 2,
  kLeader = 3,  ///< unreached, leads a clique: definitely lost
  kMember = 4,  ///< unreached, in some clique: indirectly lost
};

class Graph {
 public:
  explicit Graph(const AllocationTable& table) {
    starts.reserve(table.size());
    table.for_each([&](const Block& b) { starts.push_back(b.address); });
    std::sort(starts.begin(), starts.end());
    ends.reserve(starts.size());
    for (uint64_t start : starts) {
      ends.push_back(start + std::max<uint64_t>(table.find(start)->size, 1));
      high_ = std::max(high_, ends.back());
    }
    state.assign(starts.size(), kUnreached);
  }

  size_t size() const { return starts.size(); }

  /// The block |value| points into, or -1.
  long find(uint64_t value) const {
    if (starts.empty() || value < starts.front() || value >= high_) return -1;
    auto it = std::upper_bound(starts.begin(), starts.end(), value);
    size_t i = static_cast<size_t>(it - starts.begin()) - 1;
    return value < ends[i] ? static_cast<long>(i) : -1;
  }

  /// |value| was found in memory reached as |via|: raise its target's reach.
  void mark(uint64_t value, uint8_t via) {
    long found = find(value);
    if (found < 0) return;
    auto i = static_cast<size_t>(found);
    uint8_t r = std::min<uint8_t>(via, value == starts[i] ? kStart : kInterior);
    if (r > state[i]) {
      state[i] = r;
      work.push_back(static_cast<uint32_t>(i));
    }
  }

  std::vector<uint64_t> starts, ends;
  std::vector<uint8_t> state;
  std::vector<uint32_t> work;

 private:
  uint64_t high_ = 0;
};

constexpr size_t kChunk = 1 << 20;

// The scan reads millions of small pieces (each block, each gap between blocks): one
// process_vm_readv each would cost a syscall per block.  This keeps the last few windows
// of up to 1 MiB of the target's memory, each starting at a page boundary (so within the
// mapping it was asked for) and ending where that mapping does, and serves the pieces from
// them (16 MiB at most).
class WindowCache final : public TargetMemory {
 public:
  explicit WindowCache(TargetMemory& memory) : memory_(memory) {}

  size_t read(uint64_t addr, void* out, size_t len) override {
    size_t done = 0;
    while (done < len) {
      uint64_t a = addr + done;
      const Window* w = window(a);
      if (!w) break;  // not readable from here on
      uint64_t off = a - w->base;
      size_t n = static_cast<size_t>(std::min<uint64_t>(len - done, w->valid - off));
      std::memcpy(static_cast<uint8_t*>(out) + done, w->data.data() + off, n);
      done += n;
    }
    return done;
  }

 private:
  struct Window {
    uint64_t base = 0;
    size_t valid = 0;
    uint64_t used = 0;  ///< last use, for eviction
    std::vector<uint8_t> data;
  };
  static constexpr size_t kWindows = 16;
  static constexpr uint64_t kPage = 4096;

  const Window* window(uint64_t a) {
    ++clock_;
    Window* victim = nullptr;
    for (Window& w : windows_) {
      if (a >= w.base && a < w.base + w.valid) {
        w.used = clock_;
        return &w;
      }
      if (!victim || w.used < victim->used) victim = &w;
    }
    if (windows_.size() < kWindows) victim = &windows_.emplace_back();
    victim->base = a & ~(kPage - 1);
    victim->used = clock_;
    victim->data.resize(kChunk);
    victim->valid = memory_.read(victim->base, victim->data.data(), kChunk);
    return a < victim->base + victim->valid ? victim : nullptr;
  }

  TargetMemory& memory_;
  std::vector<Window> windows_;
  uint64_t clock_ = 0;
};

/// Calls |f(word)| for every aligned 8-byte word of [start, end) that |memory| can read.
template <typename F>
void for_each_word(TargetMemory& memory, uint64_t start, uint64_t end, std::vector<uint8_t>& buf, F&& f) {
  start = (start + 7) & ~uint64_t{7};
  while (start + 8 <= end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(end - start, kChunk)) & ~size_t{7};
    size_t got = memory.read(start, buf.data(), want) & ~size_t{7};
    for (size_t off = 0; off < got; off += 8) {
      uint64_t word;
      std::memcpy(&word, buf.data() + off, 8);
      f(word);
    }
    if (got < want) return;  // the rest is not readable
    start += got;
  }
}

}  // namespace

Reachability Reachability::scan(const AllocationTable& blocks, std::span<const MemoryRange> roots,
                                std::span<const uint64_t> root_values, TargetMemory& target) {
  WindowCache memory(target);
  Reachability result;
  Graph g(blocks);
  std::vector<uint8_t> buf(kChunk);
  const size_t n = g.size();

  for (uint64_t v : root_values) g.mark(v, kStart);
  // Root ranges, minus the live blocks inside them (their words are edges, not roots).
  std::vector<MemoryRange> sorted(roots.begin(), roots.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.start < b.start; });
  size_t next = 0;  // first block not entirely below the range being scanned
  for (const MemoryRange& range : sorted) {
    while (next < n && g.ends[next] <= range.start) ++next;
    uint64_t at = range.start;
    for (size_t i = next; at < range.end; ++i) {
      uint64_t stop = i < n ? std::min(g.starts[i], range.end) : range.end;
      if (stop > at) {
        result.root_bytes_ += stop - at;
        for_each_word(memory, at, stop, buf, [&](uint64_t w) { g.mark(w, kStart); });
      }
      if (i >= n) break;
      at = std::max(at, g.ends[i]);
    }
  }
  // Through the blocks reached, as far as pointers lead.
  while (!g.work.empty()) {
    size_t i = g.work.back();
    g.work.pop_back();
    uint8_t via = g.state[i];
    for_each_word(memory, g.starts[i], g.ends[i], buf, [&](uint64_t w) { g.mark(w, via); });
  }
  // Unreached blocks, memcheck's way: each unreached block not yet in a clique leads one,
  // made of the unreached blocks it leads to, which are lost only indirectly (a leaked
  // list's nodes); a former leader reached from a later clique joins it.  A lost cycle
  // thus has one definitely lost block, and every indirect loss is explained by a definite
  // one.
  std::vector<uint32_t>& stack = g.work;
  for (size_t i = 0; i < n; ++i) {
    if (g.state[i] != kUnreached) continue;
    g.state[i] = kLeader;
    stack.assign(1, static_cast<uint32_t>(i));
    while (!stack.empty()) {
      size_t k = stack.back();
      stack.pop_back();
      for_each_word(memory, g.starts[k], g.ends[k], buf, [&](uint64_t w) {
        long found = g.find(w);
        if (found < 0 || static_cast<size_t>(found) == i) return;
        uint8_t& st = g.state[static_cast<size_t>(found)];
        if (st == kUnreached || st == kLeader) {  // free, or the leader of an earlier clique
          st = kMember;
          stack.push_back(static_cast<uint32_t>(found));
        }
      });
    }
  }
  result.kinds_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    uint8_t st = g.state[i];
    result.kinds_[i] = st == kStart      ? LeakKind::StillReachable
                       : st == kInterior ? LeakKind::PossiblyLost
                       : st == kMember   ? LeakKind::IndirectlyLost
                                         : LeakKind::DefinitelyLost;
  }
  result.starts_ = std::move(g.starts);
  return result;
}

LeakKind Reachability::kind_of(uint64_t address) const {
  auto it = std::lower_bound(starts_.begin(), starts_.end(), address);
  if (it == starts_.end() || *it != address) return LeakKind::DefinitelyLost;
  return kinds_[static_cast<size_t>(it - starts_.begin())];
}

}  // namespace ptmem::track
