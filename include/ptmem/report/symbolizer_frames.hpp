// The production FrameSource: frames from the libdw Symbolizer.  A header of its own, kept
// out of the report builder, so code that never symbolizes (the unit tests) does not pull
// the Symbolizer in.
#pragma once
#include "ptmem/report/frame_source.hpp"
#include "ptmem/symbols/symbolizer.hpp"

namespace ptmem::report {

class SymbolizerFrames final : public FrameSource {
 public:
  explicit SymbolizerFrames(symbols::Symbolizer& symbolizer) : symbolizer_(symbolizer) {}
  const std::vector<symbols::SourceFrame>& frames_for(uint64_t pc, uint64_t generation,
                                                      bool is_return_address) override {
    return symbolizer_.symbolize(pc, generation, is_return_address);
  }

 private:
  symbols::Symbolizer& symbolizer_;
};

}  // namespace ptmem::report
