#include "ptmem/util/eprint.hpp"

#include "ptmem/util/output_file.hpp"

namespace ptmem::util {

void write_stderr(std::string_view text) { (void)write_all(2, text); }

}  // namespace ptmem::util
