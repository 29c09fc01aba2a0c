// Private to src/ptrace: reading a stopped thread's stack for the unwinder.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

#include "ptmem/arch/step_over.hpp"
#include "ptmem/ptrace/remote_memory.hpp"

namespace ptmem::ptrace {

/// Stack memory beyond the snapshot, for the unwinder: read in aligned chunks on demand (a
/// deep stack costs a few more reads, a shallow one none), with the real return addresses
/// in the slots an engine redirected (the trampoline, the agent's return stub), so the
/// unwinder walks through a traced call that is still on the stack (fopen -> malloc).
class StackReader final : public arch::MemoryAccess {
 public:
  /// |real|: (stack slot, real return address) pairs.
  StackReader(RemoteMemory& mem, std::span<const std::pair<uint64_t, uint64_t>> real) : mem_(mem), real_(real) {}
  bool read(uint64_t addr, void* buf, size_t len) override {
    auto* out = static_cast<uint8_t*>(buf);
    while (len > 0) {
      uint64_t base = addr & ~(kChunk - 1);
      const Chunk* c = chunk(base);
      if (!c) return mem_.read(addr, out, len);  // cache full or unreadable: plain read
      size_t off = addr - base, n = std::min<size_t>(len, kChunk - off);
      if (off + n > c->size) return false;
      std::memcpy(out, c->bytes + off, n);
      addr += n;
      out += n;
      len -= n;
    }
    return true;
  }
  bool write(uint64_t, const void*, size_t) override { return false; }

 private:
  static constexpr uint64_t kChunk = 1024;
  struct Chunk {
    uint64_t base = 0;
    size_t size = 0;
    uint8_t bytes[kChunk];
  };
  const Chunk* chunk(uint64_t base) {
    for (size_t i = 0; i < used_; ++i)
      if (chunks_[i].base == base) return &chunks_[i];
    if (used_ == kChunks) return nullptr;
    Chunk& c = chunks_[used_];
    c.base = base;
    c.size = mem_.read_partial(base, c.bytes, kChunk);
    if (c.size == 0) return nullptr;
    for (auto [slot, ret] : real_)
      if (slot >= base && slot + 8 <= base + c.size) std::memcpy(c.bytes + (slot - base), &ret, 8);
    ++used_;
    return &c;
  }
  static constexpr size_t kChunks = 8;
  RemoteMemory& mem_;
  std::span<const std::pair<uint64_t, uint64_t>> real_;
  Chunk chunks_[kChunks];
  size_t used_ = 0;
};

}  // namespace ptmem::ptrace
