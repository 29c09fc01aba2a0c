// The SITE rule: a leak is shown from the first frame in the program's own code.  The
// allocator (malloc & co., operator new) and the runtime code between it and the program
// (libc, libstdc++, ld.so, inlined standard-library templates) are left out, because every
// leak would otherwise "happen" in malloc.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

#include "ptmem/symbols/symbolizer.hpp"

namespace ptmem::report {

/// malloc-family functions (and their glibc __libc_* aliases), operator new/new[] in any
/// variant (demangled or mangled), and libc helpers that return malloc'ed memory (strdup...).
bool is_allocator_function(std::string_view function);

/// libc, libstdc++, ld.so and the other runtime libraries (by file name), and the usual
/// preloaded allocators (jemalloc, tcmalloc, mimalloc).
bool is_runtime_module(std::string_view module_path);

/// A frame that is not the program's own code: allocator function, runtime module, a
/// reserved identifier (__name, _Name: the implementation's, as in a static libc) or a
/// source file in a system header directory (inlined std:: templates).
bool is_runtime_frame(const symbols::SourceFrame& frame);

/// Applies the SITE rule to one captured stack, given the frames of each of its pcs
/// (per_pc[0] = the hooked function's entry, then the callers), and keeps at most |depth|
/// frames.  per_pc[0] is always dropped (it is the allocator or fd function itself), then
/// runtime frames up to the first program frame, and the runtime frames below the last
/// program frame (_start, __libc_start_main, start_thread: what memcheck hides "below
/// main").  A stack with no program frame keeps its frames after per_pc[0] (or per_pc[0]
/// itself if that is all there is).
std::vector<symbols::SourceFrame> site_frames(
    const std::vector<std::vector<symbols::SourceFrame>>& per_pc, size_t depth);

}  // namespace ptmem::report
