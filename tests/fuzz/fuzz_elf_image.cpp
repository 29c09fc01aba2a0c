// ElfImage::open on a hostile file, then the symbol lookups the tracer makes.
#include "fuzz_common.hpp"
#include "ptmem/symbols/elf_image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ptmem::fuzz::MemFile file(data, size);
  std::string error;
  auto image = ptmem::symbols::ElfImage::open(file.path(), &error);
  if (!image) {
    PTMEM_FUZZ_CHECK(!error.empty());
    return 0;
  }
  (void)image->is_x86_64();
  (void)image->is_32bit();
  (void)image->is_dynamic_object();
  (void)image->entry();
  (void)image->first_load_vaddr();
  // What the engines look up: the allocator, the fd functions, ld.so's r_debug.
  for (const char* name : {"malloc", "free", "main", "open64", "_r_debug", "_dl_debug_state", "f"}) {
    bool ifunc = false;
    uint64_t fn_size = 0;
    (void)image->function(name, &ifunc, &fn_size);
    (void)image->symbol(name);
  }
  return 0;
}
