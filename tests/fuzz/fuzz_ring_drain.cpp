// The inject engine's shared region as a hostile target could leave it: the target maps
// the region read-write, so the control block, the thread slots and the rings are all
// untrusted.  RingDrain must read only inside the region and emit sane calls.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>
#include <vector>

#include "fuzz_common.hpp"
#include "ptmem/inject/ring_drain.hpp"
#include "ptmem/track/functions.hpp"

namespace {

constexpr uint32_t kRing = 4096;
constexpr uint64_t kThreadsOffset = (sizeof(ptmem_control) + 4095) / 4096 * 4096;
constexpr uint64_t kRingsOffset = kThreadsOffset + sizeof(ptmem_thread) * PTMEM_MAX_THREADS;
constexpr size_t kBytes = kRingsOffset + uint64_t{kRing} * PTMEM_MAX_THREADS;

// Allocated once (7 MB); each input dirties a few slots, which are cleared after it.
uint8_t* region() {
  static uint8_t* mem = [] {
    void* p = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    return static_cast<uint8_t*>(p);
  }();
  return mem;
}

class Stacks final : public ptmem::inject::StackSource {
 public:
  ptmem::track::StackId stack(const ptmem_record&, uint64_t, std::span<const uint64_t> walked,
                              std::span<const uint8_t> snapshot) override {
    for (uint64_t pc : walked) sum_ += pc;  // reads every pc handed over
    for (uint8_t b : snapshot) sum_ += b;
    return static_cast<ptmem::track::StackId>(++next_);
  }
  uint64_t sum_ = 0;
  uint32_t next_ = 0;
};

class Sink final : public ptmem::track::EventSink {
 public:
  void on_alloc(pid_t, uint64_t addr, uint64_t, ptmem::track::StackId) override { PTMEM_FUZZ_CHECK(addr != 0); ++n; }
  void on_free(pid_t, uint64_t addr) override { PTMEM_FUZZ_CHECK(addr != 0); ++n; }
  void on_free_null(pid_t) override { ++n; }
  void on_realloc(pid_t, uint64_t, uint64_t new_addr, uint64_t, ptmem::track::StackId) override {
    PTMEM_FUZZ_CHECK(new_addr != 0);
    ++n;
  }
  void on_failed_alloc(pid_t) override { ++n; }
  void on_fd_open(pid_t, int fd, ptmem::track::FdOrigin, ptmem::track::StackId) override { PTMEM_FUZZ_CHECK(fd >= 0); ++n; }
  void on_fd_close(pid_t, int) override { ++n; }
  void on_fd_close_range(pid_t, unsigned, unsigned) override { ++n; }
  void on_exec(pid_t) override { ++n; }
  uint64_t n = 0;
};

ptmem_thread& thread(uint32_t slot) {
  return reinterpret_cast<ptmem_thread*>(region() + kThreadsOffset)[slot];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  uint8_t* mem = region();
  auto* c = reinterpret_cast<ptmem_control*>(mem);
  // The control block as ptmem writes it.
  std::memset(c, 0, sizeof *c);
  c->magic = PTMEM_CONTROL_MAGIC;
  c->version = PTMEM_AGENT_VERSION;
  c->ring_bytes = kRing;
  c->threads_offset = kThreadsOffset;
  c->rings_offset = kRingsOffset;

  const uint8_t mode = in.ConsumeIntegral<uint8_t>();
  // Hooks as the host installs them, or any table the target overwrote them with.
  const auto functions = ptmem::track::traced_functions();
  const uint32_t nhooks = in.ConsumeIntegralInRange<uint32_t>(0, 8);
  for (uint32_t i = 0; i < nhooks; ++i) {
    ptmem_hook& h = c->hooks[i];
    h.address = in.ConsumeIntegral<uint64_t>();
    h.function = (mode & 1) ? in.ConsumeIntegral<uint16_t>()
                            : static_cast<uint16_t>(in.ConsumeIntegral<uint16_t>() % functions.size());
    h.flags = in.ConsumeIntegral<uint8_t>() & 7;
    h.capture = in.ConsumeIntegral<uint8_t>();
  }
  c->nhooks = (mode & 2) ? in.ConsumeIntegral<uint32_t>() : nhooks;
  if (mode & 4) {  // the geometry, rewritten before ptmem opened the drain
    c->ring_bytes = in.ConsumeIntegral<uint32_t>();
    c->threads_offset = in.ConsumeIntegral<uint64_t>();
    c->rings_offset = in.ConsumeIntegral<uint64_t>();
  }

  ptmem::inject::RingDrain drain(c, kBytes);
  if (mode & 8) {  // ... or after
    c->ring_bytes = in.ConsumeIntegral<uint32_t>();
    c->threads_offset = in.ConsumeIntegral<uint64_t>();
    c->rings_offset = in.ConsumeIntegral<uint64_t>();
  }

  // Up to three thread slots with their ring contents.
  uint32_t slots[3];
  const uint32_t nslots = in.ConsumeIntegralInRange<uint32_t>(1, 3);
  for (uint32_t i = 0; i < nslots; ++i) {
    uint32_t slot = slots[i] = in.ConsumeIntegral<uint16_t>() % PTMEM_MAX_THREADS;
    ptmem_thread& t = thread(slot);
    t.key = in.ConsumeIntegral<uint64_t>() | 1;
    t.tail = (mode & 16) ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegral<uint16_t>() & ~uint64_t{7};
    auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, kRing));
    uint64_t off = t.tail & (kRing - 1);
    size_t first = std::min<size_t>(bytes.size(), kRing - off);
    uint8_t* ring = mem + kRingsOffset + uint64_t{slot} * kRing;
    if (!bytes.empty()) {
      std::memcpy(ring + off, bytes.data(), first);
      std::memcpy(ring, bytes.data() + first, bytes.size() - first);
    }
    t.head = (mode & 32) ? in.ConsumeIntegral<uint64_t>() : t.tail + bytes.size();
  }

  Stacks stacks;
  Sink sink;
  drain.drain(sink, stacks, false);
  drain.drain(sink, stacks, true);
  PTMEM_FUZZ_CHECK(drain.pending() == 0);

  for (uint32_t i = 0; i < nslots; ++i) {
    std::memset(&thread(slots[i]), 0, sizeof(ptmem_thread));
    std::memset(mem + kRingsOffset + uint64_t{slots[i]} * kRing, 0, kRing);
  }
  return 0;
}
