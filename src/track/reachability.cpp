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

// How a block was reached: never, through some interior pointer, or by start pointers only.
enum Reach : uint8_t { kUnreached = 0, kInterior = 1, kStart = 2 };

struct Node {
  uint64_t start, end;  ///< [start, end); a zero-size block spans one byte for matching
  Reach reach = kUnreached;
  bool pointed_by_lost = false;
};

class Graph {
 public:
  explicit Graph(const AllocationTable& table) {
    nodes_.reserve(table.size());
    table.for_each([&](const Block& b) { nodes_.push_back({b.address, b.address + std::max<uint64_t>(b.size, 1)}); });
    std::sort(nodes_.begin(), nodes_.end(), [](const Node& a, const Node& b) { return a.start < b.start; });
    if (!nodes_.empty()) {
      low_ = nodes_.front().start;
      for (const Node& n : nodes_) high_ = std::max(high_, n.end);
    }
  }

  /// The block |value| points into, or -1.
  long find(uint64_t value) const {
    if (value < low_ || value >= high_) return -1;
    auto it = std::upper_bound(nodes_.begin(), nodes_.end(), value,
                               [](uint64_t v, const Node& n) { return v < n.start; });
    if (it == nodes_.begin()) return -1;
    --it;
    return value < it->end ? static_cast<long>(it - nodes_.begin()) : -1;
  }

  /// |value| was found in memory reached as |via|: raise its target's reach.
  void mark(uint64_t value, Reach via) {
    long i = find(value);
    if (i < 0) return;
    Node& n = nodes_[static_cast<size_t>(i)];
    Reach r = std::min(via, value == n.start ? kStart : kInterior);
    if (r > n.reach) {
      n.reach = r;
      work_.push_back(static_cast<size_t>(i));
    }
  }

  std::vector<Node>& nodes() { return nodes_; }
  std::vector<size_t>& work() { return work_; }

 private:
  std::vector<Node> nodes_;
  std::vector<size_t> work_;
  uint64_t low_ = 0, high_ = 0;
};

constexpr size_t kChunk = 1 << 20;

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
                                std::span<const uint64_t> root_values, TargetMemory& memory) {
  Reachability result;
  Graph g(blocks);
  std::vector<uint8_t> buf(kChunk);
  auto& nodes = g.nodes();

  for (uint64_t v : root_values) g.mark(v, kStart);
  // Root ranges, minus the live blocks inside them (their words are edges, not roots).
  std::vector<MemoryRange> sorted(roots.begin(), roots.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.start < b.start; });
  size_t next = 0;  // first block not entirely below the range being scanned
  for (const MemoryRange& range : sorted) {
    while (next < nodes.size() && nodes[next].end <= range.start) ++next;
    uint64_t at = range.start;
    for (size_t i = next; at < range.end; ++i) {
      uint64_t stop = i < nodes.size() ? std::min(nodes[i].start, range.end) : range.end;
      if (stop > at) {
        result.root_bytes_ += stop - at;
        for_each_word(memory, at, stop, buf, [&](uint64_t w) { g.mark(w, kStart); });
      }
      if (i >= nodes.size()) break;
      at = std::max(at, nodes[i].end);
    }
  }
  // Through the blocks reached, as far as pointers lead.
  while (!g.work().empty()) {
    size_t i = g.work().back();
    g.work().pop_back();
    Reach via = nodes[i].reach;
    for_each_word(memory, nodes[i].start, nodes[i].end, buf, [&](uint64_t w) { g.mark(w, via); });
  }
  // Unreached blocks, memcheck's way: each unreached block not yet owned leads a clique of
  // the unreached blocks it leads to, which are lost only indirectly (a leaked list's
  // nodes); a former leader reached from a later clique joins it.  A lost cycle thus has
  // one definitely lost block, and every indirect loss is explained by a definite one.
  constexpr long kNone = -1;
  std::vector<long> clique(nodes.size(), kNone);
  std::vector<size_t> stack;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].reach != kUnreached || clique[i] != kNone) continue;
    clique[i] = static_cast<long>(i);
    stack.assign(1, i);
    while (!stack.empty()) {
      size_t k = stack.back();
      stack.pop_back();
      for_each_word(memory, nodes[k].start, nodes[k].end, buf, [&](uint64_t w) {
        long j = g.find(w);
        if (j < 0 || static_cast<size_t>(j) == i || nodes[static_cast<size_t>(j)].reach != kUnreached) return;
        long& owner = clique[static_cast<size_t>(j)];
        if (owner == kNone || owner == j) {  // free, or the leader of an earlier clique
          owner = static_cast<long>(i);
          stack.push_back(static_cast<size_t>(j));
        }
      });
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i)
    nodes[i].pointed_by_lost = nodes[i].reach == kUnreached && clique[i] != static_cast<long>(i);
  result.kinds_.reserve(nodes.size());
  for (const Node& n : nodes) {
    LeakKind k = n.reach == kStart      ? LeakKind::StillReachable
                 : n.reach == kInterior ? LeakKind::PossiblyLost
                 : n.pointed_by_lost    ? LeakKind::IndirectlyLost
                                        : LeakKind::DefinitelyLost;
    result.kinds_[n.start] = k;
  }
  return result;
}

LeakKind Reachability::kind_of(uint64_t address) const {
  auto it = kinds_.find(address);
  return it == kinds_.end() ? LeakKind::DefinitelyLost : it->second;
}

}  // namespace ptmem::track
