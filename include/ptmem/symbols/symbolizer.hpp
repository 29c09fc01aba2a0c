// Addresses -> module, demangled function, file:line, with inlined frames as frames of their
// own, through libdw.  Lazy and cached: only stacks that reach a report are symbolized.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ptmem/symbols/module_map.hpp"

namespace ptmem::symbols {

struct SourceFrame {
  uint64_t address = 0;        ///< the captured pc (for inlined frames, the same pc)
  std::string module;          ///< path of the module, "" if unknown
  uint64_t module_offset = 0;  ///< address - module base
  std::string function;        ///< demangled; from DWARF, else ELF symtab; "" if unknown
  std::string file;            ///< source file, "" without debug info
  int line = 0;                ///< 0 without debug info
  int column = 0;
  bool inlined = false;        ///< this frame was inlined into the next one
};

class Symbolizer {
 public:
  explicit Symbolizer(const ModuleMap& modules);
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  /// Frames for one pc captured at |generation|, innermost (inlined) first, the real
  /// function last.  |is_return_address|: the pc is a return address, so look up pc - 1.
  const std::vector<SourceFrame>& symbolize(uint64_t pc, uint64_t generation, bool is_return_address);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// C++/Rust demangling; returns |name| unchanged if it is not mangled.
std::string demangle(const std::string& name);

}  // namespace ptmem::symbols
