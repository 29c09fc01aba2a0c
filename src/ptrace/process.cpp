#include "ptmem/ptrace/process.hpp"

namespace ptmem::ptrace {

Process::Process(pid_t pid) : mem(pid), modules(pid), pid_(pid) {}

}  // namespace ptmem::ptrace
