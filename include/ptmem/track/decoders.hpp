// Small decoders, one per Action: what one traced call did, in events.  Independent of how
// the call was caught: the breakpoint engine fills a CallRecord at entry and return, a
// future in-process agent fills the same record from its ring buffer.
#pragma once
#include <cstdint>

#include "ptmem/arch/step_over.hpp"  // MemoryAccess
#include "ptmem/track/events.hpp"
#include "ptmem/track/functions.hpp"

namespace ptmem::track {

struct CallRecord {
  const TracedFunction* fn = nullptr;
  pid_t tid = 0;
  uint64_t args[6] = {};
  int64_t entry_fd = -1;     ///< fd read at entry (fclose, closedir, freopen): -1 if none
  uint64_t result = 0;       ///< rax at return
  StackId stack = kNoStack;
};

/// Reads what the action needs from before the call (the fd behind a FILE* or DIR*).
/// |mem| reads the target's memory.  Cheap; no-op for most actions.
void decode_entry(CallRecord& call, arch::MemoryAccess& mem);

/// Turns a completed call into events.  For functions with needs_return == false it is
/// called at entry with result 0.
void decode_result(const CallRecord& call, arch::MemoryAccess& mem, EventSink& sink);

/// glibc x86-64 layout facts the decoders rely on (checked against the system's headers in
/// the unit tests).
inline constexpr uint64_t kFileFilenoOffset = 0x70;  ///< offsetof(FILE, _fileno)
inline constexpr uint64_t kDirFdOffset = 0;          ///< struct __dirstream starts with int fd

}  // namespace ptmem::track
