#include "ptmem/report/site.hpp"

#include <algorithm>
#include <array>

namespace ptmem::report {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string_view basename(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// "malloc(unsigned long)" -> "malloc": DWARF names of C++ functions may carry parameters.
std::string_view bare_name(std::string_view function) {
  auto paren = function.find('(');
  return paren == std::string_view::npos ? function : function.substr(0, paren);
}

}  // namespace

bool is_allocator_function(std::string_view function) {
  static constexpr std::array<std::string_view, 30> kNames = {
      "malloc", "calloc", "realloc", "reallocarray", "free", "cfree", "posix_memalign",
      "aligned_alloc", "memalign", "valloc", "pvalloc",
      "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_reallocarray", "__libc_free",
      "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign",
      "__libc_aligned_alloc",
      // libc functions whose result is malloc'ed: their caller is the site.
      "strdup", "strndup", "__strdup", "wcsdup", "asprintf", "vasprintf", "getline",
      "getdelim", "realpath"};
  if (function.empty()) return false;
  auto name = bare_name(function);
  if (std::find(kNames.begin(), kNames.end(), name) != kNames.end()) return true;
  // operator new / new[] in all variants (sized, aligned, nothrow), demangled or not
  // (_Znwm, _Znam, _ZnwmSt11align_val_t...).
  return starts_with(function, "operator new") || starts_with(function, "_Znw") ||
         starts_with(function, "_Zna");
}

bool is_runtime_module(std::string_view module_path) {
  static constexpr std::string_view kPrefixes[] = {
      "libc.so", "libc-", "libstdc++.so", "ld-linux", "ld64.so", "libpthread.so",
      "libpthread-", "libdl.so", "libgcc_s.so", "libc++.so", "libc++abi.so",
      "libjemalloc.so", "libtcmalloc", "libmimalloc.so"};
  auto name = basename(module_path);
  for (auto p : kPrefixes)
    if (starts_with(name, p)) return true;
  return false;
}

bool is_runtime_frame(const symbols::SourceFrame& f) {
  if (is_runtime_module(f.module) || is_allocator_function(f.function)) return true;
  // Reserved identifiers belong to the implementation (C11 7.1.3): in a static binary the
  // libc internals (_IO_file_doallocate, __fopen_internal) sit in the program's module.
  const std::string& fn = f.function;
  if (fn.size() >= 2 && fn[0] == '_' && (fn[1] == '_' || (fn[1] >= 'A' && fn[1] <= 'Z'))) return true;
  // Standard-library templates inlined or instantiated into the program (vector growth,
  // std::allocator) are written in the system's headers.
  std::string_view file = f.file;
  return starts_with(file, "/usr/include/") || file.find("/include/c++/") != std::string_view::npos;
}

std::vector<symbols::SourceFrame> site_frames(
    const std::vector<std::vector<symbols::SourceFrame>>& per_pc, size_t depth) {
  std::vector<symbols::SourceFrame> callers;
  for (size_t i = 1; i < per_pc.size(); ++i)
    callers.insert(callers.end(), per_pc[i].begin(), per_pc[i].end());
  std::vector<symbols::SourceFrame> out;
  if (callers.empty()) {
    if (!per_pc.empty()) out = per_pc[0];
  } else {
    auto is_program = [](const symbols::SourceFrame& f) { return !is_runtime_frame(f); };
    auto first = std::find_if(callers.begin(), callers.end(), is_program);
    if (first == callers.end()) {
      out = std::move(callers);
    } else {
      // Below the last program frame there is only the runtime that called it (_start,
      // __libc_start_main, start_thread, clone3): left out, as memcheck does below main.
      auto last = std::find_if(callers.rbegin(), callers.rend(), [&](const symbols::SourceFrame& f) {
                    return is_program(f) && f.function != "_start";
                  }).base();
      if (last <= first) last = first + 1;
      out.assign(first, last);
    }
  }
  if (out.size() > depth) out.resize(depth);
  return out;
}

}  // namespace ptmem::report
