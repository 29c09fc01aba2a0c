# The stats part of `make bench`: CPU per refresh of `ptmem stats` against `top -b` over
# 1000 idle processes the benchmark starts and kills (about a minute).
# BENCH_STATS_ARGS: "PROCESSES REPS", default "1000 3".

BENCH_STATS_BIN := $(BUILD)/bench/stats_bench

.PHONY: bench-stats
bench: bench-stats

bench-stats: $(PTMEM) $(BENCH_STATS_BIN)
	@command -v top >/dev/null || { echo "bench-stats: top is needed (apt-get install procps)"; exit 1; }
	$(BENCH_STATS_BIN) $(abspath $(PTMEM)) $(BENCH_STATS_ARGS)

$(BENCH_STATS_BIN): bench/stats_bench.cpp
	@mkdir -p $(@D)
	$(CXX) -std=c++20 -O2 -Wall -Wextra -o $@ $<
