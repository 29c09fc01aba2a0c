# The tracer part of `make bench`: workloads and a bare ptrace round-trip measurer built
# with -O2 -g into $(BUILD)/bench/tracer/, then bench/tracer/run.py runs them natively,
# under ptmem launch, valgrind memcheck, heaptrack and ltrace (those installed), and prints
# the slowdowns, ptmem's time per traced call against the round trip, and ptmem's peak
# memory per live block.  Then its scale section (issue #11): bench/tracer/scale.c holds 10M
# live blocks (4 GiB, in pointer chains) under each engine, and the end scan's speed (GB/s,
# goal >= 1) and ptmem's memory per live block (goal <= 48 bytes) are read from the JSON
# report and /proc; the target needs ~4.5 GiB of RAM, and tracing 10M allocations with the
# breakpoint engine takes many minutes.  About 4 minutes on 2 idle cores without the scale
# section (longer on a busy machine).  BENCH_TRACER_ARGS passes options to run.py, e.g.
# "--reps 1 --scale 0.2 --only alloc1" (--scale shrinks the scale section too;
# "--only scale" runs it alone, "--scale-blocks 0" skips it).

BENCH_TRACER_DIR   := $(BUILD)/bench/tracer
BENCH_TRACER_BIN   := $(addprefix $(BENCH_TRACER_DIR)/,alloc compute fdchurn live_blocks mixed roundtrip scale)
BENCH_TRACER_FLAGS := -O2 -g -Wall -Wextra

# Timings are only worth something when no other recipe shares the 2 CPUs: when a bench is
# asked for, make runs one recipe at a time (`make -j2 bench` builds serially too).
ifneq ($(filter bench bench-%,$(MAKECMDGOALS)),)
.NOTPARALLEL:
endif

.PHONY: bench-tracer bench-tracer-programs
bench: bench-tracer
bench-tracer-programs: $(BENCH_TRACER_BIN)

bench-tracer: $(PTMEM) $(BENCH_TRACER_BIN)
	@command -v python3 >/dev/null || { echo "bench-tracer: python3 is needed (apt-get install python3)"; exit 1; }
	python3 bench/tracer/run.py --build $(BUILD) $(BENCH_TRACER_ARGS)

$(BENCH_TRACER_DIR)/%: bench/tracer/%.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_TRACER_FLAGS) -o $@ $< -lpthread

$(BENCH_TRACER_DIR)/%: bench/tracer/%.cpp
	@mkdir -p $(@D)
	$(CXX) -std=c++20 $(BENCH_TRACER_FLAGS) -o $@ $<
