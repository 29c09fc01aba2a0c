// A test hook, for the end-to-end tests only: PTMEM_TEST_PAUSE=PHASE makes ptmem stop at
// that point of its own work (attach, scan, detach), say "ptmem: paused before PHASE" on
// stderr, and wait for one byte from the FIFO named by PTMEM_TEST_PAUSE_FIFO.  A test can
// so end the target exactly while ptmem is in that phase, without sleeping.
#pragma once

namespace ptmem::util {

/// Pauses as described above when PTMEM_TEST_PAUSE names |phase|; returns at once otherwise.
void test_pause(const char* phase);

}  // namespace ptmem::util
