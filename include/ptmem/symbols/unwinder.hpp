// Call-stack unwinding from registers plus a copy of the top of the stack, through libdw's
// DWARF CFI (dwfl_attach_state with our own memory callbacks), falling back to frame
// pointers where CFI is missing.  It never needs a stopped thread: the same code serves the
// ptrace engine and a future in-process event source that ships stack snapshots.
// The hot path caches each pc's unwind step (taken from libdw's CFI once), so a warm
// 11-frame unwind costs well under 2 us here; a pure libdwfl unwind costs 10-30 us.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "ptmem/arch/registers.hpp"
#include "ptmem/arch/step_over.hpp"
#include "ptmem/symbols/module_map.hpp"

namespace ptmem::symbols {

/// One frame's unwind step in the few forms x86-64 compilers emit for ordinary code, so
/// that a walker without libdw (the inject engine's agent) can follow it: CFA = rsp or
/// rbp + offset, the return address saved at CFA + ra_offset, the caller's rsp = CFA, its
/// rbp unchanged, saved at CFA + rbp_offset, or unknown.
struct CompactRule {
  bool end = false;        ///< the return address is undefined: the outermost frame
  uint8_t cfa_reg = 7;     ///< DWARF register: 6 rbp, 7 rsp
  int32_t cfa_offset = 0;
  int32_t ra_offset = 0;
  enum Rbp : uint8_t { RbpUnknown, RbpSame, RbpAtCfa } rbp = RbpUnknown;
  int32_t rbp_offset = 0;
};

/// Not thread-safe: one per thread that unwinds.
class Unwinder {
 public:
  explicit Unwinder(const ModuleMap& modules);
  ~Unwinder();
  Unwinder(const Unwinder&) = delete;
  Unwinder& operator=(const Unwinder&) = delete;

  /// Call after ModuleMap::update() changed something (re-reports modules to libdwfl).
  void modules_changed();

  /// Writes up to |max_frames| program counters to |out|: out[0] = regs.ip(), then return
  /// addresses (not adjusted by -1).  Memory in [regs.sp(), regs.sp() + stack.size()) is
  /// read from |stack|; other reads go to |fallback| (may be null) and then to the modules'
  /// files.  Returns the number of frames written (>= 1).
  size_t unwind(const arch::Registers& regs, std::span<const uint8_t> stack,
                arch::MemoryAccess* fallback, size_t max_frames, uint64_t* out);

  /// On (the default), each pc's unwind step is taken from libdw's CFI once and cached;
  /// frames whose CFI is not a plain "register + offset" rule, and stacks that need
  /// libdwfl's frame-pointer guess, still go through libdwfl.  Off: libdwfl for every
  /// frame (for tests that compare the two, and for measuring).
  void set_rule_cache(bool enabled);

  /// The unwind step at |pc| as a CompactRule, if it has that form (the same step
  /// unwind() takes there).  |adjusted|: |pc| is a return address, looked up at pc - 1.
  std::optional<CompactRule> compact_rule(uint64_t pc, bool adjusted);

  /// The frame-pointer walk unwind() falls back to when CFI unwinding stops with an error:
  /// from |fp| (rbp of the last good frame) follow the saved-rbp chain, appending the
  /// return address at fp + 8 to out[count..max_frames).  Only trusted while every frame
  /// pointer is 8-aligned, not below |min_fp|, strictly increasing and, with its return
  /// address, inside |stack| (copied from |stack_addr|), and the return address lies in a
  /// loaded module of |modules| (when given).  Returns the new count.
  static size_t walk_frame_pointers(std::span<const uint8_t> stack, uint64_t stack_addr,
                                    uint64_t fp, uint64_t min_fp, const ModuleMap* modules,
                                    size_t count, size_t max_frames, uint64_t* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ptmem::symbols
