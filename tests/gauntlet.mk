# `make gauntlet`: the reliability gauntlet (tests/e2e/gauntlet_test.cpp) at full size, under
# each engine, and the SIGKILL and phase tests with it; it prints its figures (cycles,
# calls recorded, attach and detach times, signals sent, seed).  `make test` runs the same
# test cases short (6 cycles, 6 signals).  The breakpoint engine gets fewer cycles: each of
# its reports pays for reading libc's DWARF again (seconds), which the gauntlet does not
# need to measure 1000 times.  GAUNTLET_SEED replays the random moments of a failed run.
GAUNTLET_CYCLES            ?= 1000
GAUNTLET_BREAKPOINT_CYCLES ?= 200
GAUNTLET_SIGNALS           ?= 150
GAUNTLET_SEED              ?=

.PHONY: gauntlet
gauntlet: $(BUILD)/e2e_tests test-deps
	@set -e; for engine in inject breakpoint; do \
	  cycles=$(GAUNTLET_CYCLES); [ $$engine = breakpoint ] && cycles=$(GAUNTLET_BREAKPOINT_CYCLES); \
	  echo "== gauntlet, $$engine engine: $$cycles cycles, $(GAUNTLET_SIGNALS) signals"; \
	  PTMEM_ENGINE=$$engine PTMEM_GAUNTLET_CYCLES=$$cycles PTMEM_GAUNTLET_SIGNALS=$(GAUNTLET_SIGNALS) \
	  PTMEM_GAUNTLET_SEED=$(GAUNTLET_SEED) PTMEM=$(abspath $(PTMEM)) SAMPLES=$(abspath $(BUILD)/samples) \
	  BUILD_DIR=$(abspath $(BUILD)) $(BUILD)/e2e_tests --no-version \
	    -tc='gauntlet*,inject: ptmem killed*,trace attach: the target dying*,trace*phase*' $(TEST_ARGS); \
	done
