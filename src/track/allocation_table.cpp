#include "ptmem/track/allocation_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include <sys/mman.h>
#include <unistd.h>

namespace ptmem::track {

namespace {

constexpr size_t kMinSlots = 4;     // level 0 capacity (before the shard's stagger)
constexpr double kGrowth = 1.5;     // capacity ratio between levels
// Grow when an insert would pass 9/10 full; shrink below 1/4 full to a capacity that is
// at most 6/10 full (what a growth leaves), so insert/erase around one size cannot thrash.
size_t max_entries(size_t capacity) { return capacity * 9 / 10; }
size_t min_entries(size_t capacity) { return capacity / 4; }

size_t page_size() {
  static const size_t page = [] {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<size_t>(p) : size_t{4096};
  }();
  return page;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

constexpr uint64_t kKeyMask = (uint64_t{1} << 48) - 1;

// Multipliers of the 48-bit mix (odd, so invertible modulo 2^48), and their inverses.
constexpr uint64_t kMul1 = 0xafd7ed558ccdULL;
constexpr uint64_t kMul2 = 0xb9fe1a85ec53ULL;
constexpr uint64_t inverse(uint64_t odd) {
  uint64_t y = odd;  // Newton's iteration doubles the correct low bits each step
  for (int i = 0; i < 6; ++i) y *= 2 - odd * y;
  return y & kKeyMask;
}
constexpr uint64_t kInv1 = inverse(kMul1);
constexpr uint64_t kInv2 = inverse(kMul2);
static_assert(((kMul1 * kInv1) & kKeyMask) == 1 && ((kMul2 * kInv2) & kKeyMask) == 1);

// Maps a key onto [0, capacity) with a multiply (any capacity, no division).  It reads the
// key as a fraction, so its high bits decide; the shard comes from the low bits.
inline size_t home(uint64_t key, size_t capacity) {
  return static_cast<size_t>((static_cast<unsigned __int128>(key << 16) * capacity) >> 64);
}

// How far the entry at |pos| sits from its home slot (probing wraps around).
inline size_t distance(const AllocationTable::PackedBlock& e, size_t pos, size_t capacity) {
  size_t h = home(e.key, capacity);
  return pos >= h ? pos - h : pos + capacity - h;
}

inline size_t next(size_t pos, size_t capacity) { return ++pos == capacity ? 0 : pos; }

// Puts |p| at |pos| and shifts the entries from there up to the next empty slot one step
// on: they keep their order, so the Robin Hood order holds.  The caller ensures a free slot.
inline void shift_in(AllocationTable::PackedBlock* slots, size_t capacity, size_t pos,
                     AllocationTable::PackedBlock p) {
  for (;;) {
    std::swap(p, slots[pos]);
    if (p.key == 0) return;
    pos = next(pos, capacity);
  }
}

// Robin Hood placement of an address known to be absent (rehash).
void place(AllocationTable::PackedBlock* slots, size_t capacity,
           const AllocationTable::PackedBlock& p) {
  size_t pos = home(p.key, capacity);
  for (size_t d = 0;; ++d) {
    if (slots[pos].key == 0) {
      slots[pos] = p;
      return;
    }
    if (distance(slots[pos], pos, capacity) < d) break;
    pos = next(pos, capacity);
  }
  shift_in(slots, capacity, pos, p);
}

constexpr size_t kNotFound = ~size_t{0};

// Slot of |key| (never 0) in |slots|, or kNotFound.  Stops at an empty slot or at an entry
// closer to its home than we are to ours: in Robin Hood order |key| would sit before it.
size_t locate(const AllocationTable::PackedBlock* slots, size_t capacity, uint64_t key) {
  size_t pos = home(key, capacity);
  for (size_t d = 0;; ++d) {
    const AllocationTable::PackedBlock& e = slots[pos];
    if (e.key == key) return pos;
    if (e.key == 0 || distance(e, pos, capacity) < d) return kNotFound;
    pos = next(pos, capacity);
  }
}

}  // namespace

// xor-shift by half the width and odd multiplies, each invertible modulo 2^48 (the shift
// is its own inverse): every address bit reaches every key bit, so 16-byte or page-aligned,
// sequential or clustered addresses spread evenly over shards and slots.  0 maps to 0.
uint64_t AllocationTable::hash_address(uint64_t x) {
  x ^= x >> 24;
  x = (x * kMul1) & kKeyMask;
  x ^= x >> 24;
  x = (x * kMul2) & kKeyMask;
  x ^= x >> 24;
  return x;
}

uint64_t AllocationTable::unhash_address(uint64_t x) {
  x ^= x >> 24;
  x = (x * kInv2) & kKeyMask;
  x ^= x >> 24;
  x = (x * kInv1) & kKeyMask;
  x ^= x >> 24;
  return x;
}

Block AllocationTable::PackedBlock::unpack() const {
  Block b;
  b.address = unhash_address(key);
  b.size = size;
  b.stack = static_cast<StackId>(stack_lo | (uint64_t{stack_hi} << 16));
  b.tid = static_cast<pid_t>(tid);
  b.sequence = sequence;
  return b;
}

bool AllocationTable::fits(const Block& b) {
  // Address 0 marks an empty slot, so it can only live in the side table.
  return b.address != 0 && b.address <= kMaxPackedAddress && b.size <= kMaxPackedSize &&
         b.sequence <= kMaxPackedSequence && b.tid >= 0 &&
         static_cast<uint64_t>(b.tid) <= kMaxPackedTid;
}

AllocationTable::PackedBlock AllocationTable::pack(const Block& b) {
  PackedBlock p;
  p.key = hash_address(b.address);
  p.stack_lo = b.stack & 0xffff;
  p.size = b.size;
  p.stack_hi = b.stack >> 16;
  p.sequence = b.sequence;
  p.tid = static_cast<uint64_t>(b.tid);
  return p;
}

size_t AllocationTable::slots_for(unsigned level, size_t shard) {
  double exact = kMinSlots * std::pow(kGrowth, level + static_cast<double>(shard) / kShards);
  return static_cast<size_t>(std::ceil(exact));
}

AllocationTable::PackedBlock* AllocationTable::allocate(size_t capacity) {
  // Zeroed memory is an array of empty slots (key 0).
  void* p = std::calloc(capacity, sizeof(PackedBlock));
  if (!p) throw std::bad_alloc();
  return static_cast<PackedBlock*>(p);
}

void AllocationTable::release(PackedBlock* slots, size_t capacity) {
  if (!slots) return;
  // glibc keeps a freed chunk in its heap, resident, until something reuses it; the arrays
  // of earlier sizes would add up to twice the live ones (VmHWM keeps them).  So the
  // array's whole pages go back to the kernel first.  They are still ours, and free()
  // writes only the chunk's first and last bytes (list links, boundary tags), hence the
  // margins.  glibc's malloc_trim releases free chunks' pages the same way.
  const size_t page = page_size();
  const auto start = reinterpret_cast<uintptr_t>(slots);
  const uintptr_t begin = round_up(start + 64, page);
  const uintptr_t end = (start + capacity * sizeof(PackedBlock) - 64) / page * page;
  if (capacity * sizeof(PackedBlock) > 128 + page && end > begin)
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  std::free(slots);
}

void AllocationTable::resize(Shard& s, unsigned level) {
  const size_t index = static_cast<size_t>(&s - shards_.get());
  const size_t capacity = slots_for(level, index);
  PackedBlock* fresh = allocate(capacity);
  const size_t fresh_bytes = capacity * sizeof(PackedBlock);
  // The one moment two arrays of a shard are held: the table's transient peak.
  peak_bytes_ = std::max(peak_bytes_, memory_usage() + fresh_bytes);
  for (size_t i = 0; i < s.capacity; ++i)
    if (s.slots[i].key != 0) place(fresh, capacity, s.slots[i]);
  release(s.slots, s.capacity);
  slot_bytes_ = slot_bytes_ - s.capacity * sizeof(PackedBlock) + fresh_bytes;
  s.slots = fresh;
  s.capacity = capacity;
  s.level = level;
}

std::optional<Block> AllocationTable::insert(const Block& block) {
  // An address is in at most one of the two tables; a replaced block may sit in either.
  if (!fits(block)) {
    std::optional<Block> old = erase(block.address);
    wide_.insert_or_assign(block.address, block);
    peak_bytes_ = std::max(peak_bytes_, memory_usage());
    return old;
  }
  std::optional<Block> old;
  if (!wide_.empty()) old = take_wide(block.address);
  if (!shards_) shards_ = std::make_unique<Shard[]>(kShards);
  const PackedBlock p = pack(block);
  const uint64_t key = p.key;
  Shard& s = shard_of(key);
  if (s.count >= max_entries(s.capacity)) {
    // Grow first (even if the address turns out to be live: rare, and harmless).
    unsigned level = s.capacity ? s.level + 1 : 0;
    while (max_entries(slots_for(level, static_cast<size_t>(&s - shards_.get()))) <= s.count)
      ++level;
    resize(s, level);
  }
  PackedBlock* const slots = s.slots;
  const size_t capacity = s.capacity;
  // One pass: find the key or the Robin Hood position where it belongs.
  size_t pos = home(key, capacity);
  for (size_t d = 0;; ++d) {
    PackedBlock& e = slots[pos];
    if (e.key == 0) {
      e = p;
      ++s.count;
      ++packed_count_;
      return old;
    }
    if (e.key == key) {
      old = e.unpack();
      e = p;
      return old;
    }
    if (distance(e, pos, capacity) < d) break;
    pos = next(pos, capacity);
  }
  shift_in(slots, capacity, pos, p);
  ++s.count;
  ++packed_count_;
  return old;
}

std::optional<Block> AllocationTable::erase(uint64_t address) {
  if (address != 0 && address <= kMaxPackedAddress && shards_) {
    const uint64_t key = hash_address(address);
    Shard& s = shard_of(key);
    if (s.count) {
      size_t pos = locate(s.slots, s.capacity, key);
      if (pos != kNotFound) {
        Block b = s.slots[pos].unpack();
        // Backward shift: pull the following entries of the cluster one step back until
        // one is at its home (or a slot is empty), so no tombstone is left.
        for (size_t n = next(pos, s.capacity);
             s.slots[n].key != 0 && distance(s.slots[n], n, s.capacity) > 0;
             n = next(n, s.capacity)) {
          s.slots[pos] = s.slots[n];
          pos = n;
        }
        s.slots[pos] = PackedBlock{};
        --s.count;
        --packed_count_;
        if (s.level > 0 && s.count < min_entries(s.capacity)) {
          const size_t index = static_cast<size_t>(&s - shards_.get());
          unsigned level = 0;
          while (slots_for(level, index) * 6 / 10 < s.count) ++level;
          if (level < s.level) resize(s, level);
        }
        return b;
      }
    }
  }
  if (!wide_.empty()) return take_wide(address);
  return std::nullopt;
}

std::optional<Block> AllocationTable::take_wide(uint64_t address) {
  auto it = wide_.find(address);
  if (it == wide_.end()) return std::nullopt;
  Block b = it->second;
  wide_.erase(it);
  // absl never shrinks on erase; a burst of odd blocks must not pin its array.
  if (wide_.capacity() > 64 && wide_.size() < wide_.capacity() / 8) wide_.rehash(0);
  return b;
}

std::optional<Block> AllocationTable::find(uint64_t address) const {
  if (address != 0 && address <= kMaxPackedAddress) {
    const uint64_t key = hash_address(address);
    if (const Shard* s = find_shard(key); s && s->count) {
      size_t pos = locate(s->slots, s->capacity, key);
      if (pos != kNotFound) return s->slots[pos].unpack();
    }
  }
  if (!wide_.empty()) {
    auto it = wide_.find(address);
    if (it != wide_.end()) return it->second;
  }
  return std::nullopt;
}

void AllocationTable::release_all() {
  if (shards_) {
    for (size_t i = 0; i < kShards; ++i) release(shards_[i].slots, shards_[i].capacity);
    shards_.reset();
  }
  packed_count_ = 0;
  slot_bytes_ = 0;
}

void AllocationTable::clear() {
  release_all();
  // Swapping with a fresh map gives its array back (clear() keeps the capacity).
  absl::flat_hash_map<uint64_t, Block>().swap(wide_);
}

size_t AllocationTable::memory_usage() const {
  // absl's raw_hash_set allocates capacity slots plus capacity + 16 control bytes (one
  // sentinel, a group's worth of cloned bytes).
  size_t wide_capacity = wide_.capacity();
  size_t wide = wide_capacity
                    ? wide_capacity * (sizeof(std::pair<const uint64_t, Block>) + 1) + 16
                    : 0;
  return (shards_ ? kShards * sizeof(Shard) : 0) + slot_bytes_ + wide;
}

AllocationTable::AllocationTable(const AllocationTable& other)
    : packed_count_(other.packed_count_), slot_bytes_(other.slot_bytes_), wide_(other.wide_) {
  if (other.shards_) {
    shards_ = std::make_unique<Shard[]>(kShards);
    try {
      for (size_t i = 0; i < kShards; ++i) {
        const Shard& from = other.shards_[i];
        if (!from.slots) continue;
        shards_[i] = from;
        shards_[i].slots = nullptr;
        shards_[i].slots = allocate(from.capacity);
        std::memcpy(static_cast<void*>(shards_[i].slots), from.slots,
                    from.capacity * sizeof(PackedBlock));
      }
    } catch (...) {
      release_all();
      throw;
    }
  }
  peak_bytes_ = memory_usage();
}

AllocationTable& AllocationTable::operator=(const AllocationTable& other) {
  if (this != &other) {
    AllocationTable copy(other);
    *this = std::move(copy);
  }
  return *this;
}

AllocationTable::AllocationTable(AllocationTable&& other) noexcept
    : shards_(std::move(other.shards_)),
      packed_count_(std::exchange(other.packed_count_, 0)),
      slot_bytes_(std::exchange(other.slot_bytes_, 0)),
      peak_bytes_(other.peak_bytes_),
      wide_(std::move(other.wide_)) {
  other.wide_.clear();
}

AllocationTable& AllocationTable::operator=(AllocationTable&& other) noexcept {
  if (this != &other) {
    release_all();
    shards_ = std::move(other.shards_);
    packed_count_ = std::exchange(other.packed_count_, 0);
    slot_bytes_ = std::exchange(other.slot_bytes_, 0);
    peak_bytes_ = std::max(peak_bytes_, other.peak_bytes_);
    wide_ = std::move(other.wide_);
    other.wide_.clear();
  }
  return *this;
}

AllocationTable::~AllocationTable() { release_all(); }

}  // namespace ptmem::track
