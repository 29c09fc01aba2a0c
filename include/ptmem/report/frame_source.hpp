// Where the report gets source frames for a captured pc.  In ptmem that is the libdw
// Symbolizer; tests inject their own frames.  Keeping this seam small lets the report be
// tested without a target process or debug info.
#pragma once
#include <cstdint>
#include <vector>

#include "ptmem/symbols/symbolizer.hpp"  // SourceFrame

namespace ptmem::report {

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  /// Frames for |pc| captured at module |generation|: inlined frames first, the real
  /// function last; never empty for a real source (at least the address).  The reference
  /// may be invalidated by the next call: callers copy what they keep.
  virtual const std::vector<symbols::SourceFrame>& frames_for(uint64_t pc, uint64_t generation,
                                                              bool is_return_address) = 0;
};

}  // namespace ptmem::report
