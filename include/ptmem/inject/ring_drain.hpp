// The host side of the agent's rings: reads every thread's records, pairs each call's entry
// with its return, and hands completed calls to the decoders (track/decoders.hpp) in the
// order their effects happened across threads, so that an address or fd number that one
// thread releases and another gets is seen released first.
//
// Order: the agent stamps an entry right before the real function runs and a return right
// after it ran, and publishes each record before the call's effect can be observed
// elsewhere.  A call that creates (malloc, open) is ordered by its return stamp, one that
// releases (free, close) by its entry stamp.  A drain takes the TSC first, then reads the
// rings: every record stamped before that is visible unless its call's effect has not
// happened yet.  So events stamped before the drain's TSC, and before the entry of every
// release still waiting for its return, are final; later ones wait for the next drain.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "ptmem/inject/agent_abi.h"
#include "ptmem/track/decoders.hpp"
#include "ptmem/track/events.hpp"

namespace ptmem::inject {

/// Turns an entry record's stack into a stack id: the pcs the agent walked (the function
/// first), or, when it could not, its registers and stack snapshot.
class StackSource {
 public:
  virtual ~StackSource() = default;
  virtual track::StackId stack(const ptmem_record& entry, uint64_t function_address,
                               std::span<const uint64_t> walked, std::span<const uint8_t> snapshot) = 0;
};

struct DrainCounters {
  uint64_t records = 0;    ///< entry, return and abandoned records read
  uint64_t calls = 0;      ///< calls handed to the decoders
  uint64_t abandoned = 0;  ///< calls unwound or jumped over: they never returned
  uint64_t bad = 0;        ///< malformed records (never expected: the ring is ours)
};

class RingDrain {
 public:
  /// |control| is ptmem's own mapping of the shared region of |region_bytes|, its
  /// geometry (ring_bytes, threads_offset, rings_offset) already written: it is read once
  /// here, since the target can write the region too.  A geometry that does not fit the
  /// region makes drain() read nothing.
  RingDrain(ptmem_control* control, size_t region_bytes);

  /// Reads what the rings hold and emits the calls that are final.  |final|: the target
  /// is stopped for good (exit, detach): emit everything, and forget calls that will
  /// never return.  Returns the number of records read.
  size_t drain(track::EventSink& sink, StackSource& stacks, bool final = false);

  /// Calls waiting for their return (blocked in accept, read...).
  size_t pending() const { return pending_.size(); }
  const DrainCounters& counters() const { return counters_; }

  /// The TSC, as the agent reads it.
  static uint64_t now();

 private:
  struct Capture {
    uint64_t addr = 0;
    uint16_t len = 0;
    uint16_t offset = 0;  // into Call::bytes
  };
  struct Call {
    uint64_t key = 0;   // TSC that orders it
    uint64_t seq = 0;   // tie-break within a thread
    uint32_t slot = 0;
    bool abandoned = false;
    uint8_t ncaps = 0;
    track::CallRecord record;
    Capture caps[3];
    std::vector<uint8_t> bytes;  // the captures' bytes: empty for most calls (no allocation)
  };
  void read_ring(uint32_t slot, ptmem_thread& t, StackSource& stacks);
  void on_entry(uint32_t slot, const ptmem_record& r, StackSource& stacks);
  void on_return(uint32_t slot, const ptmem_record& r);
  void add_captures(Call& c, const ptmem_record& r);
  void emit(const Call& c, track::EventSink& sink);

  ptmem_control* control_;
  size_t region_bytes_;
  // The geometry as ptmem wrote it (the target may rewrite the shared copy).
  uint64_t ring_bytes_ = 0, threads_offset_ = 0, rings_offset_ = 0;
  bool geometry_ok_ = false;
  absl::flat_hash_map<uint64_t, Call> pending_;  // (slot << 40 | seq) -> entry
  std::vector<Call> ready_;
  std::vector<uint32_t> order_;  // indices into ready_, sorted (a Call is too big to sort)
  DrainCounters counters_;
};

}  // namespace ptmem::inject
