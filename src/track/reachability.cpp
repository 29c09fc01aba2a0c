#include "ptmem/track/reachability.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <time.h>

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

// --- BlockIndex ---------------------------------------------------------------------------

void BlockIndex::Free::operator()(uint32_t* p) const { std::free(p); }

namespace {

// A segment's starts are 32-bit offsets from its base; a gap of more than this many
// granules between two starts also begins a new segment, so no segment spends more than
// this many index entries per block on empty address space.
constexpr uint64_t kMaxSpan = uint64_t{1} << 32;
constexpr uint64_t kMaxGapGranules = 16;

/// Calls f(first, last, base) for each segment of the sorted |starts| at granule |shift|.
template <typename F>
void for_each_segment(const uint64_t* starts, size_t n, unsigned shift, F&& f) {
  size_t first = 0;
  while (first < n) {
    const uint64_t base = starts[first] >> shift << shift;
    size_t last = first;
    while (last + 1 < n && starts[last + 1] - base < kMaxSpan &&
           starts[last + 1] - starts[last] <= (kMaxGapGranules << shift))
      ++last;
    f(first, last, base);
    first = last + 1;
  }
}

uint64_t granules_for(const uint64_t* starts, size_t n, unsigned shift) {
  uint64_t total = 0;
  for_each_segment(starts, n, shift, [&](size_t, size_t last, uint64_t base) {
    total += ((starts[last] - base) >> shift) + 1;
  });
  return total;
}

}  // namespace

BlockIndex::BlockIndex(const AllocationTable& table) : n_(table.size()) {
  if (n_ >= kNone) throw std::length_error("too many live blocks to scan");
  if (n_ == 0) return;
  // Full-width starts, sorted, then narrowed in place (below).  Each is sorted with its
  // size in its low 16 bits (user addresses have 47 bits), so the sizes come out in index
  // order with no lookup per block; 0xffff stands for "this size or more: ask the table".
  constexpr uint64_t kSizeBits = 16, kSizeMask = (uint64_t{1} << kSizeBits) - 1;
  auto* starts = static_cast<uint64_t*>(std::malloc(n_ * sizeof(uint64_t)));
  if (!starts) throw std::bad_alloc();
  offsets_.reset(reinterpret_cast<uint32_t*>(starts));
  size_t k = 0;
  bool packable = true;
  table.for_each([&](const Block& b) {
    if (k >= n_) return;
    packable = packable && (b.address >> (64 - kSizeBits)) == 0;
    starts[k++] = b.address << kSizeBits | std::min<uint64_t>(b.size, kSizeMask);
  });
  if (!packable) {  // not a user-space address: fall back to plain starts, sizes by lookup
    k = 0;
    table.for_each([&](const Block& b) {
      if (k < n_) starts[k++] = b.address;
    });
  }
  std::sort(starts, starts + n_);
  sizes_.assign(n_, 0);
  for (size_t i = 0; i < n_; ++i) {
    const uint64_t address = packable ? starts[i] >> kSizeBits : starts[i];
    uint64_t size = packable ? starts[i] & kSizeMask : kSizeMask;
    if (size == kSizeMask)
      if (auto b = table.find(address)) size = b->size;
    starts[i] = address;
    if (size < kNone) {
      sizes_[i] = static_cast<uint32_t>(size);
    } else {
      sizes_[i] = kNone;
      big_sizes_.emplace_back(static_cast<uint32_t>(i), size);
    }
    const uint64_t span = std::max<uint64_t>(size, 1);
    high_ = std::max(high_, address > ~uint64_t{0} - span ? ~uint64_t{0} : address + span);
  }
  low_ = starts[0];

  // The smallest granule with at most about one index entry per 4 blocks (4 bytes per
  // block would be too many; a few starts per granule cost one short binary search).
  const uint64_t budget = std::max<uint64_t>(n_ / 4, 64);
  unsigned shift = 12;
  if (granules_for(starts, n_, shift) > budget) {
    while (shift < 40 && granules_for(starts, n_, shift) > budget) ++shift;
  } else {
    while (shift > 4 && granules_for(starts, n_, shift - 1) <= budget) --shift;
  }
  shift_ = shift;
  granules_.resize(granules_for(starts, n_, shift));
  size_t below = 0;  // blocks starting before the granule being filled
  for_each_segment(starts, n_, shift, [&](size_t first, size_t last, uint64_t base) {
    Segment s;
    s.base = base;
    s.first = static_cast<uint32_t>(first);
    s.last = static_cast<uint32_t>(last);
    s.granule_at = segments_.empty() ? 0 : segments_.back().granule_at + segments_.back().granules;
    s.granules = ((starts[last] - base) >> shift) + 1;
    for (uint64_t g = 0; g < s.granules; ++g) {
      const uint64_t at = base + (g << shift);
      while (below < n_ && starts[below] < at) ++below;
      granules_[s.granule_at + g] = below == 0 ? kNone : static_cast<uint32_t>(below - 1);
    }
    segments_.push_back(s);
    segment_bases_.push_back(base);
  });
  // Narrow: offset i is written at byte 4i, at or below the start i it replaces (byte
  // 8i), and below every start still to be read.
  for (const Segment& s : segments_)
    for (size_t i = s.first; i <= s.last; ++i) {
      uint64_t start;
      std::memcpy(&start, reinterpret_cast<const char*>(starts) + i * 8, 8);
      const auto off = static_cast<uint32_t>(start - s.base);
      std::memcpy(reinterpret_cast<char*>(starts) + i * 4, &off, 4);
    }
  if (void* shrunk = std::realloc(offsets_.get(), n_ * sizeof(uint32_t))) {
    (void)offsets_.release();
    offsets_.reset(static_cast<uint32_t*>(shrunk));
  }

}

uint64_t BlockIndex::span(size_t i) const {
  const uint32_t size = sizes_[i];
  if (size != kNone) return size ? size : 1;
  auto it = std::lower_bound(big_sizes_.begin(), big_sizes_.end(), std::pair<uint32_t, uint64_t>{
                                 static_cast<uint32_t>(i), 0});
  return it != big_sizes_.end() && it->first == i ? std::max<uint64_t>(it->second, 1) : 1;
}

size_t BlockIndex::segment_of(size_t i) const {
  if (segments_.size() == 1) return 0;
  auto it = std::upper_bound(segments_.begin(), segments_.end(), i,
                             [](size_t v, const Segment& s) { return v < s.first; });
  return static_cast<size_t>(it - segments_.begin()) - 1;
}

size_t BlockIndex::segment_at(uint64_t value) const {
  if (segments_.size() == 1) return 0;
  auto it = std::upper_bound(segment_bases_.begin(), segment_bases_.end(), value);
  return static_cast<size_t>(it - segment_bases_.begin()) - 1;
}

uint32_t BlockIndex::candidate(uint64_t value) const {
  // Callers ensure n_ > 0 and value >= low_, so some segment's base is <= value.
  const Segment& s = segments_[segment_at(value)];
  const uint64_t rel = value - s.base;
  const uint64_t g = rel >> shift_;
  if (g >= s.granules) return s.last;  // past its last start, before the next segment
  // Every start in (lo, hi] lies in granule g of this segment.
  const uint32_t lo = granules_[s.granule_at + g];
  const uint32_t hi = g + 1 < s.granules ? granules_[s.granule_at + g + 1] : s.last;
  if (hi == kNone) return kNone;
  const uint32_t* from = offsets_.get() + (lo == kNone ? 0 : size_t{lo} + 1);
  const uint32_t* to = offsets_.get() + size_t{hi} + 1;
  const uint32_t* it = std::upper_bound(from, to, rel, [](uint64_t r, uint32_t o) { return r < o; });
  if (it == from) return lo;  // none in this granule: the last block before it, if any
  return static_cast<uint32_t>(it - offsets_.get() - 1);
}

uint32_t BlockIndex::find(uint64_t value) const {
  if (value < low_ || value >= high_) return kNone;  // also n_ == 0 (high_ == 0)
  const uint32_t i = candidate(value);
  if (i == kNone) return kNone;
  return value < end(i) ? i : kNone;
}

uint32_t BlockIndex::find_start(uint64_t address) const {
  if (n_ == 0 || address < low_) return kNone;
  const uint32_t i = candidate(address);
  return i != kNone && start(i) == address ? i : kNone;
}

void BlockIndex::drop_sizes() {
  std::vector<uint32_t>().swap(sizes_);
  std::vector<std::pair<uint32_t, uint64_t>>().swap(big_sizes_);
  high_ = 0;  // find() now finds nothing
}

size_t BlockIndex::memory_usage() const {
  return n_ * sizeof(uint32_t) + sizes_.capacity() * sizeof(uint32_t) +
         big_sizes_.capacity() * sizeof(big_sizes_[0]) + segments_.capacity() * sizeof(Segment) +
         segment_bases_.capacity() * sizeof(uint64_t) + granules_.capacity() * sizeof(uint32_t);
}

// --- the scan ------------------------------------------------------------------------------

namespace {

// This thread's CPU time: on a shared machine the wall time says little on its own.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Per block, one byte: how it was reached (never, through some interior pointer, or by
// start pointers only), and for unreached blocks its part in the lost cliques.
enum : uint8_t {
  kUnreached = 0, kInterior = 1, kStart = 2,
  kLeader = 3,  ///< unreached, leads a clique: definitely lost
  kMember = 4,  ///< unreached, in some clique: indirectly lost
};

// The scan reads millions of small pieces (each block, each gap between blocks): one
// process_vm_readv each would cost a syscall per block.  This keeps a few windows of the
// target's memory, each starting at a page boundary (so within the mapping it was asked
// for) and ending where that mapping does, and the scan reads words in place from them.
// A window is 1 MiB while windows are used well (roots, blocks laid out in the order the
// pointers lead); when they are mostly wasted (pointers all over the heap) the size halves
// down to a page, so a scattered graph costs a small read per block, not 1 MiB.
class Windows {
 public:
  Windows(TargetMemory& memory, ScanStats& stats) : memory_(memory), stats_(stats) {}

  /// Readable bytes of the target from |addr| (*got of them, within one window, at most
  /// |len|), or nullptr when |addr| cannot be read.
  const uint8_t* view(uint64_t addr, size_t len, size_t* got) {
    Window* w = find(addr);
    if (!w) return nullptr;
    const uint64_t off = addr - w->base;
    *got = static_cast<size_t>(std::min<uint64_t>(len, w->valid - off));
    w->served += *got;
    return w->data.get() + off;
  }

  /// Whether |addr| is in a window already.
  bool has(uint64_t addr) const {
    for (const Window& w : windows_)
      if (addr >= w.base && addr < w.base + w.valid) return true;
    return false;
  }
  /// Reads [addr, end) (at most a window's worth) into a window now, when the caller knows
  /// that is all it will want from here: no 1 MiB read for a few KiB.
  void prefetch(uint64_t addr, uint64_t end) {
    const uint64_t page = addr & ~(kPage - 1);
    limit_ = static_cast<size_t>(std::min<uint64_t>(((end - page + kPage - 1) & ~(kPage - 1)), kMaxWindow));
    find(addr);
    limit_ = 0;
  }

  size_t buffer_bytes() const { return windows_.size() * kMaxWindow; }

 private:
  struct Window {
    uint64_t base = 0;
    size_t valid = 0;
    size_t served = 0;  ///< bytes handed out since it was read
    uint64_t used = 0;  ///< last use, for eviction
    std::unique_ptr<uint8_t[]> data;
  };
  static constexpr size_t kWindows = 8;
  static constexpr size_t kMaxWindow = size_t{1} << 20;
  static constexpr size_t kMinWindow = 4096;
  static constexpr uint64_t kPage = 4096;

  Window* find(uint64_t a) {
    ++clock_;
    Window* victim = nullptr;
    for (Window& w : windows_) {
      if (a >= w.base && a < w.base + w.valid) {
        w.used = clock_;
        return &w;
      }
      if (!victim || w.used < victim->used) victim = &w;
    }
    if (windows_.size() < kWindows) {
      victim = &windows_.emplace_back();
      victim->data.reset(new uint8_t[kMaxWindow]);
    }
    // A miss just past (or just below) a window is a walk along memory: big windows pay.
    // A jump elsewhere while the evicted window served little is a scattered walk.
    bool near = false;
    for (const Window& w : windows_) {
      const uint64_t end = w.base + w.valid;
      near |= w.valid && ((a >= end && a - end < kMaxWindow) || (a < w.base && w.base - a < kMaxWindow));
    }
    if (near) size_ = std::min(size_ * 2, kMaxWindow);
    else if (victim->valid && victim->served < victim->valid / 16) size_ = std::max(size_ / 2, kMinWindow);
    victim->used = clock_;
    victim->served = 0;
    // Just below a window (a walk downwards: a list built by pushing on its head), the new
    // window ends where that one begins, so it serves the next steps down too.
    const uint64_t page = a & ~(kPage - 1);
    for (const Window& w : windows_)
      if (!limit_ && &w != victim && w.valid && w.base > page && w.base - page < size_ && w.base - size_ <= page) {
        victim->base = w.base - size_;
        victim->valid = memory_.read(victim->base, victim->data.get(), size_);
        ++stats_.reads;
        if (a < victim->base + victim->valid && a >= victim->base) return victim;
        break;  // not readable that far down: read from a's page up
      }
    victim->base = page;
    victim->valid = memory_.read(victim->base, victim->data.get(), limit_ ? limit_ : size_);
    ++stats_.reads;
    return a < victim->base + victim->valid ? victim : nullptr;
  }

  TargetMemory& memory_;
  ScanStats& stats_;
  std::vector<Window> windows_;
  size_t size_ = kMaxWindow;
  size_t limit_ = 0;  ///< when not 0, the size of the read prefetch() asks for
  uint64_t clock_ = 0;
};

/// Calls |f(word)| for every aligned 8-byte word of [start, end) that can be read (up to
/// the first unreadable byte); returns the bytes read.
template <typename F>
uint64_t for_each_word(Windows& memory, uint64_t start, uint64_t end, F&& f) {
  start = (start + 7) & ~uint64_t{7};
  const uint64_t from = start;
  while (start < end && end - start >= 8) {
    size_t got = 0;
    const uint8_t* p = memory.view(start, static_cast<size_t>(std::min<uint64_t>(end - start, SIZE_MAX)), &got);
    got &= ~size_t{7};
    if (!p || got == 0) break;  // the rest is not readable
    for (size_t off = 0; off < got; off += 8) {
      uint64_t word;
      std::memcpy(&word, p + off, 8);
      f(word);
    }
    start += got;
  }
  return start - from;
}

class Graph {
 public:
  explicit Graph(const BlockIndex& index) : index(index), state(index.size(), kUnreached) {}

  /// |value| was found in memory reached as |via|: raise its target's reach.
  void mark(uint64_t value, uint8_t via) {
    const uint32_t i = index.find(value);
    if (i == BlockIndex::kNone) return;
    uint8_t r = std::min<uint8_t>(via, value == index.start(i) ? kStart : kInterior);
    if (r > state[i]) {
      state[i] = r;
      work.push_back(i);
      peak_work = std::max(peak_work, work.capacity());
    }
  }

  const BlockIndex& index;
  std::vector<uint8_t> state;
  std::vector<uint32_t> work;
  size_t peak_work = 0;
};

}  // namespace

Reachability Reachability::scan(const AllocationTable& blocks, std::span<const MemoryRange> roots,
                                std::span<const uint64_t> root_values, TargetMemory& target) {
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = thread_cpu_seconds();
  Reachability result;
  ScanStats& st = result.stats_;
  result.index_ = BlockIndex(blocks);
  const BlockIndex& ix = result.index_;
  Windows memory(target, st);
  Graph g(ix);
  const size_t n = ix.size();
  st.blocks = n;
  auto scan_block = [&](size_t i, auto&& f) {
    st.block_bytes += for_each_word(memory, ix.start(i), ix.end(i), f);
    ++st.blocks_scanned;
  };

  for (uint64_t v : root_values) g.mark(v, kStart);
  // Root ranges, minus the live blocks inside them (their words are edges, not roots).
  std::vector<MemoryRange> sorted(roots.begin(), roots.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.start < b.start; });
  size_t next = 0;  // first block not entirely below the range being scanned
  for (const MemoryRange& range : sorted) {
    while (next < n && ix.end(next) <= range.start) ++next;
    uint64_t at = range.start;
    for (size_t i = next; at < range.end; ++i) {
      uint64_t stop = i < n ? std::min(ix.start(i), range.end) : range.end;
      if (stop > at) {
        st.roots_bytes += stop - at;  // what the ranges hold outside blocks, as asked
        for_each_word(memory, at, stop, [&](uint64_t w) { g.mark(w, kStart); });
      }
      if (i >= n) break;
      at = std::max(at, ix.end(i));
    }
  }
  // Through the blocks reached, as far as pointers lead.  Starting from the lowest block
  // the roots reach, the walk tends to go up the heap in the order it was filled, which the
  // windows serve best (roots in different arrays would otherwise each sweep the heap).
  std::sort(g.work.begin(), g.work.end(), std::greater<>());  // popped lowest first
  while (!g.work.empty()) {
    size_t i = g.work.back();
    g.work.pop_back();
    uint8_t via = g.state[i];
    scan_block(i, [&](uint64_t w) { g.mark(w, via); });
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
      if (!memory.has(ix.start(k))) {
        // Unreached blocks lie among reached ones, already read: read only the run of
        // unreached blocks from here (a leaked list is usually one), not a whole window.
        size_t j = k;
        while (j + 1 < n && (g.state[j + 1] == kUnreached || g.state[j + 1] >= kLeader) &&
               ix.start(j + 1) - ix.end(j) <= 4096 && ix.end(j + 1) - ix.start(k) <= (1 << 20))
          ++j;
        memory.prefetch(ix.start(k), ix.end(j));
      }
      scan_block(k, [&](uint64_t w) {
        const uint32_t found = ix.find(w);
        if (found == BlockIndex::kNone || found == i) return;
        uint8_t& s = g.state[found];
        if (s == kUnreached || s == kLeader) {  // free, or the leader of an earlier clique
          s = kMember;
          stack.push_back(found);
        }
      });
      g.peak_work = std::max(g.peak_work, stack.capacity());
    }
  }
  st.index_bytes = ix.memory_usage() + n + g.peak_work * sizeof(uint32_t) + memory.buffer_bytes();
  // The state bytes become the kinds in place.
  for (uint8_t& s : g.state) {
    s = static_cast<uint8_t>(s == kStart      ? LeakKind::StillReachable
                             : s == kInterior ? LeakKind::PossiblyLost
                             : s == kMember   ? LeakKind::IndirectlyLost
                                              : LeakKind::DefinitelyLost);
  }
  result.kinds_ = std::move(g.state);
  std::vector<uint32_t>().swap(g.work);
  result.index_.drop_sizes();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  st.cpu_seconds = thread_cpu_seconds() - cpu0;
  return result;
}

LeakKind Reachability::kind_of(uint64_t address) const {
  const uint32_t i = index_.find_start(address);
  return i == BlockIndex::kNone ? LeakKind::DefinitelyLost : static_cast<LeakKind>(kinds_[i]);
}

}  // namespace ptmem::track
