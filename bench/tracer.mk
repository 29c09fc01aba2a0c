# The tracer part of `make bench`: workloads and a bare ptrace round-trip measurer built
# with -O2 -g into $(BUILD)/bench/tracer/, then bench/tracer/run.py runs them natively,
# under ptmem launch, valgrind memcheck, heaptrack and ltrace (those installed), and prints
# the slowdowns, ptmem's time per traced call against the round trip, and ptmem's peak
# memory per live block.  Takes about 4 minutes on 2 idle cores (longer on a busy machine).
# BENCH_TRACER_ARGS passes options to run.py, e.g. "--reps 1 --scale 0.2 --only alloc1".

BENCH_TRACER_DIR   := $(BUILD)/bench/tracer
BENCH_TRACER_BIN   := $(addprefix $(BENCH_TRACER_DIR)/,alloc compute fdchurn live_blocks mixed roundtrip)
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
