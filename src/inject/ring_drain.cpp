#include "ptmem/inject/ring_drain.hpp"

#include <algorithm>
#include <cstring>
#include <x86intrin.h>

#include "ptmem/track/functions.hpp"

namespace ptmem::inject {
namespace {

// An agent has at most PTMEM_SHADOW_DEPTH calls awaiting their return per thread slot:
// more entries without returns come from a target writing its own records, and keeping
// them would let it grow ptmem's memory without bound.
constexpr size_t kMaxPending = size_t{PTMEM_MAX_THREADS} * PTMEM_SHADOW_DEPTH;

uint64_t pending_key(uint32_t slot, uint64_t seq) { return (uint64_t{slot} << 40) | (seq & ((1ull << 40) - 1)); }

// Reads the decoders make, served from what the agent copied.
class CapturedMemory final : public arch::MemoryAccess {
 public:
  CapturedMemory(const uint8_t* bytes, std::span<const std::pair<uint64_t, std::pair<uint16_t, uint16_t>>> caps)
      : bytes_(bytes), caps_(caps) {}
  bool read(uint64_t addr, void* buf, size_t len) override {
    // Newest first: freopen captures its stream's fd at entry and again at return.
    for (auto it = caps_.rbegin(); it != caps_.rend(); ++it) {
      auto& [base, where] = *it;
      auto [offset, size] = where;
      if (addr >= base && addr - base <= size && len <= size - (addr - base)) {
        std::memcpy(buf, bytes_ + offset + (addr - base), len);
        return true;
      }
    }
    return false;
  }
  bool write(uint64_t, const void*, size_t) override { return false; }

 private:
  const uint8_t* bytes_;
  std::span<const std::pair<uint64_t, std::pair<uint16_t, uint16_t>>> caps_;
};

}  // namespace

uint64_t RingDrain::now() {
  _mm_lfence();  // no earlier load of a ring may pass this stamp
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

RingDrain::RingDrain(ptmem_control* control, size_t region_bytes)
    : control_(control),
      region_bytes_(region_bytes),
      ring_bytes_(control->ring_bytes),
      threads_offset_(control->threads_offset),
      rings_offset_(control->rings_offset) {
  const uint64_t threads_bytes = uint64_t{sizeof(ptmem_thread)} * PTMEM_MAX_THREADS;
  // Rings are a power of two holding at least one record; every slot must lie in the
  // region, aligned for its type.  Each ring is checked where it is read (read_ring).
  geometry_ok_ = ring_bytes_ >= sizeof(ptmem_record) && (ring_bytes_ & (ring_bytes_ - 1)) == 0 &&
                 threads_offset_ % alignof(ptmem_thread) == 0 && threads_offset_ <= region_bytes &&
                 region_bytes - threads_offset_ >= threads_bytes && rings_offset_ % 8 == 0 &&
                 rings_offset_ <= region_bytes;
}

void RingDrain::add_captures(Call& c, const ptmem_record& r) {
  const auto* data = reinterpret_cast<const uint8_t*>(&r + 1);
  size_t from = 0;
  for (int i = 0; i < 2; ++i) {
    uint16_t len = r.cap_len[i];
    if (!len) continue;
    if (c.ncaps == 3 || from + len > PTMEM_MAX_CAPTURE || from + len > r.size - sizeof r) {
      ++counters_.bad;
      return;
    }
    const size_t used = c.bytes.size();
    c.bytes.insert(c.bytes.end(), data + from, data + from + len);
    c.caps[c.ncaps++] = {r.cap_addr[i], len, static_cast<uint16_t>(used)};
    from += len;
  }
}

void RingDrain::on_entry(uint32_t slot, const ptmem_record& r, StackSource& stacks) {
  // nhooks is in the shared region: never trusted beyond the table's size.
  if (r.hook >= control_->nhooks || r.hook >= PTMEM_MAX_HOOKS) {
    ++counters_.bad;
    return;
  }
  const ptmem_hook& h = control_->hooks[r.hook];
  auto functions = track::traced_functions();
  if (h.function >= functions.size()) {
    ++counters_.bad;
    return;
  }
  Call c;
  c.seq = r.seq;
  c.slot = slot;
  c.key = r.ts;
  c.record.fn = &functions[h.function];
  c.record.tid = r.tid;
  std::copy(std::begin(r.args), std::end(r.args), c.record.args);
  add_captures(c, r);
  const size_t caps_bytes = (size_t{r.cap_len[0]} + r.cap_len[1] + 7) & ~size_t{7};
  const size_t pcs_bytes = size_t{r.npcs} * 8;
  if (h.flags & PTMEM_HOOK_STACK) {
    const auto* data = reinterpret_cast<const uint8_t*>(&r + 1);
    if (sizeof r + caps_bytes + pcs_bytes + r.stack_len > r.size || r.npcs > PTMEM_MAX_FRAMES) {
      ++counters_.bad;
      c.record.stack = stacks.stack(r, h.address, {}, {});
    } else {
      std::span<const uint64_t> walked(reinterpret_cast<const uint64_t*>(data + caps_bytes), r.npcs);
      std::span<const uint8_t> snapshot(data + caps_bytes + pcs_bytes, r.stack_len);
      c.record.stack = stacks.stack(r, h.address, walked, snapshot);
    }
  }
  // What decode_entry reads at entry (the fd behind a FILE* or DIR*) is in the captures.
  std::pair<uint64_t, std::pair<uint16_t, uint16_t>> view[3];
  for (uint8_t i = 0; i < c.ncaps; ++i) view[i] = {c.caps[i].addr, {c.caps[i].offset, c.caps[i].len}};
  CapturedMemory mem(c.bytes.data(), std::span(view, c.ncaps));
  track::decode_entry(c.record, mem);
  if (!(h.flags & PTMEM_HOOK_RETURN)) {
    ready_.push_back(std::move(c));
  } else if (pending_.size() < kMaxPending || pending_.contains(pending_key(slot, r.seq))) {
    pending_[pending_key(slot, r.seq)] = std::move(c);
  } else {
    ++counters_.bad;  // more calls in flight than the agent's shadow stacks can hold
  }
}

void RingDrain::on_return(uint32_t slot, const ptmem_record& r) {
  auto it = pending_.find(pending_key(slot, r.seq));
  if (it == pending_.end()) {
    ++counters_.bad;
    return;
  }
  Call c = std::move(it->second);
  pending_.erase(it);
  if (r.type == PTMEM_REC_ABANDONED) {
    ++counters_.abandoned;
    c.abandoned = true;
    c.key = r.ts;
  } else {
    c.record.result = r.args[0];
    add_captures(c, r);
    if (!track::releases(c.record.fn->action)) c.key = r.ts;
  }
  ready_.push_back(std::move(c));
}

void RingDrain::read_ring(uint32_t slot, ptmem_thread& t, StackSource& stacks) {
  const uint64_t size = ring_bytes_;
  if ((region_bytes_ - rings_offset_) / size <= slot) {  // this slot's ring is not in the region
    ++counters_.bad;
    return;
  }
  const uint8_t* ring = reinterpret_cast<const uint8_t*>(control_) + rings_offset_ + slot * size;
  uint64_t head = __atomic_load_n(&t.head, __ATOMIC_ACQUIRE);
  uint64_t tail = t.tail;
  // The agent never writes more than a ring ahead of the tail, and records are 8-aligned:
  // anything else (the target rewrote them) would read outside the ring or loop over it
  // without end.
  if (tail % 8 != 0 || head - tail > size) {
    if (tail != head) ++counters_.bad;
    tail = head;
  }
  while (tail < head) {
    uint64_t off = tail & (size - 1);
    const auto& r = *reinterpret_cast<const ptmem_record*>(ring + off);
    if (r.size < 8 || r.size % 8 || off + r.size > size || r.size > head - tail ||
        (r.type != PTMEM_REC_PAD && r.size < sizeof r)) {
      ++counters_.bad;  // never expected; skip the rest rather than read garbage
      tail = head;
      break;
    }
    ++counters_.records;
    switch (r.type) {
      case PTMEM_REC_PAD: --counters_.records; break;
      case PTMEM_REC_ENTRY: on_entry(slot, r, stacks); break;
      case PTMEM_REC_RETURN:
      case PTMEM_REC_ABANDONED: on_return(slot, r); break;
      default: ++counters_.bad; break;
    }
    tail += r.size;
  }
  __atomic_store_n(&t.tail, tail, __ATOMIC_RELEASE);
}

size_t RingDrain::drain(track::EventSink& sink, StackSource& stacks, bool final) {
  const uint64_t stamp = now();
  control_->heartbeat = stamp;
  const uint64_t before = counters_.records;
  if (geometry_ok_) {
    auto* threads = reinterpret_cast<ptmem_thread*>(reinterpret_cast<uint8_t*>(control_) + threads_offset_);
    for (uint32_t i = 0; i < PTMEM_MAX_THREADS; ++i)
      if (__atomic_load_n(&threads[i].key, __ATOMIC_ACQUIRE) != 0 &&
          __atomic_load_n(&threads[i].head, __ATOMIC_ACQUIRE) != threads[i].tail)
        read_ring(i, threads[i], stacks);
  }

  uint64_t limit = stamp;
  for (auto& [_, c] : pending_)
    if (track::releases(c.record.fn->action)) limit = std::min(limit, c.key);
  if (final) {
    // Calls that never returned: an allocation that never returned failed (as an
    // exception through operator new does); a release never known to succeed is left to
    // the reconciliation with /proc.
    for (auto& [_, c] : pending_) {
      c.abandoned = true;
      ready_.push_back(std::move(c));
    }
    pending_.clear();
    limit = UINT64_MAX;
  }
  order_.clear();
  for (uint32_t i = 0; i < ready_.size(); ++i)
    if (ready_[i].key < limit || final) order_.push_back(i);
  std::sort(order_.begin(), order_.end(), [&](uint32_t x, uint32_t y) {
    const Call& a = ready_[x];
    const Call& b = ready_[y];
    return a.key != b.key ? a.key < b.key : a.slot != b.slot ? a.slot < b.slot : a.seq < b.seq;
  });
  for (uint32_t i : order_) emit(ready_[i], sink);
  if (order_.size() == ready_.size()) {
    ready_.clear();
  } else {  // keep the calls that are not final yet
    size_t kept = 0;
    for (size_t i = 0; i < ready_.size(); ++i)
      if (!(ready_[i].key < limit)) {
        if (kept != i) ready_[kept] = std::move(ready_[i]);
        ++kept;
      }
    ready_.resize(kept);
  }
  return counters_.records - before;
}

void RingDrain::emit(const Call& c, track::EventSink& sink) {
  ++counters_.calls;
  if (c.abandoned) {
    if (c.record.fn->family == track::Family::Alloc) sink.on_failed_alloc(c.record.tid);
    return;
  }
  std::pair<uint64_t, std::pair<uint16_t, uint16_t>> view[3];
  for (uint8_t i = 0; i < c.ncaps; ++i) view[i] = {c.caps[i].addr, {c.caps[i].offset, c.caps[i].len}};
  CapturedMemory mem(c.bytes.data(), std::span(view, c.ncaps));
  track::decode_result(c.record, mem, sink);
}

}  // namespace ptmem::inject
