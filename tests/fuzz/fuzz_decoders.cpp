// The event decoders on any traced function, any arguments and result, and target memory
// (the captured bytes of the inject engine, or what the breakpoint engine reads) taken
// from the input.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>
#include <vector>

#include "fuzz_common.hpp"
#include "ptmem/track/decoders.hpp"
#include "ptmem/track/functions.hpp"

namespace {

constexpr uint64_t kMemBase = 0x10000;

// Target memory: the rest of the input, mapped at kMemBase.
class Memory final : public ptmem::arch::MemoryAccess {
 public:
  explicit Memory(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  bool read(uint64_t addr, void* buf, size_t len) override {
    if (addr < kMemBase || addr - kMemBase > bytes_.size() || len > bytes_.size() - (addr - kMemBase))
      return false;
    std::memcpy(buf, bytes_.data() + (addr - kMemBase), len);
    return true;
  }
  bool write(uint64_t, const void*, size_t) override { return false; }

 private:
  std::vector<uint8_t> bytes_;
};

class Sink final : public ptmem::track::EventSink {
 public:
  void on_alloc(pid_t, uint64_t addr, uint64_t, ptmem::track::StackId) override { PTMEM_FUZZ_CHECK(addr != 0); }
  void on_free(pid_t, uint64_t addr) override { PTMEM_FUZZ_CHECK(addr != 0); }
  void on_free_null(pid_t) override {}
  void on_realloc(pid_t, uint64_t, uint64_t new_addr, uint64_t, ptmem::track::StackId) override {
    PTMEM_FUZZ_CHECK(new_addr != 0);
  }
  void on_failed_alloc(pid_t) override {}
  void on_fd_open(pid_t, int fd, ptmem::track::FdOrigin, ptmem::track::StackId) override { PTMEM_FUZZ_CHECK(fd >= 0); }
  void on_fd_close(pid_t, int) override {}
  void on_fd_close_range(pid_t, unsigned, unsigned) override {}
  void on_exec(pid_t) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const auto functions = ptmem::track::traced_functions();
  ptmem::track::CallRecord call;
  call.fn = &functions[in.ConsumeIntegral<uint16_t>() % functions.size()];
  call.tid = 1;
  // Arguments: mostly addresses into the memory below, or any word.
  for (auto& a : call.args)
    a = in.ConsumeBool() ? kMemBase + in.ConsumeIntegral<uint16_t>() : in.ConsumeIntegral<uint64_t>();
  call.result = in.ConsumeBool() ? kMemBase + in.ConsumeIntegral<uint16_t>() : in.ConsumeIntegral<uint64_t>();
  Memory mem(in.ConsumeRemainingBytes<uint8_t>());
  ptmem::track::decode_entry(call, mem);
  Sink sink;
  ptmem::track::decode_result(call, mem, sink);
  return 0;
}
