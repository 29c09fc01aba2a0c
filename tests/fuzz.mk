# Fuzzing (issue #11): one libFuzzer harness per tests/fuzz/fuzz_<target>.cpp, built with
# clang's -fsanitize=fuzzer,address,undefined into $(BUILD)/fuzz/<target>, with the ptmem
# sources it needs compiled by clang into $(BUILD)/fuzz/obj (own flags; the g++ build in
# $(BUILD)/obj is untouched).  Seeds: tests/fuzz/corpus/<target>/.
#   make fuzz          each harness for FUZZ_SECONDS from a scratch copy of its seeds;
#                      fails on any crash, leak, timeout or OOM
#   make fuzz-replay   every corpus file (all targets' seeds and saved crashers) once
#                      through every harness: the cheap regression check
DEB_PKGS += clang libclang-rt-14-dev

FUZZ_CXX      ?= clang++
FUZZ_SECONDS  ?= 30
FUZZ_DIR      := $(BUILD)/fuzz
# Any UB report ends the run like a crash: a finding, never a warning scrolled past.
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CXXFLAGS := -O1 -g -fno-omit-frame-pointer -std=c++20 -Iinclude $(PKG_CFLAGS) -MMD -MP $(FUZZ_SAN)
FUZZ_OPTS     := -rss_limit_mb=2048 -timeout=10
FUZZ_ENV      := UBSAN_OPTIONS=print_stacktrace=1
# Only what the harnesses reach: a clang build of everything would double the build time.
FUZZ_LIB_SRC  := $(sort $(wildcard src/proc/*.cpp src/symbols/*.cpp) src/inject/ring_drain.cpp \
                        src/track/decoders.cpp src/track/events.cpp src/track/functions.cpp \
                        src/util/duration.cpp src/report/suppressions.cpp src/report/site.cpp)
FUZZ_LIB_OBJ  := $(FUZZ_LIB_SRC:%.cpp=$(FUZZ_DIR)/obj/%.o)
FUZZ_SRC      := $(sort $(wildcard tests/fuzz/fuzz_*.cpp))
FUZZ_TARGETS  := $(patsubst tests/fuzz/fuzz_%.cpp,%,$(FUZZ_SRC))
FUZZ_BIN      := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

.PHONY: fuzz fuzz-build fuzz-replay
fuzz-build: $(FUZZ_BIN)

$(FUZZ_DIR)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libptmem_fuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BIN): $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/libptmem_fuzz.a
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lpthread

# New inputs go to the scratch copy; the tree's corpus is only read.
fuzz: $(FUZZ_BIN)
	@fail=0; \
	for t in $(FUZZ_TARGETS); do \
	  run=$(FUZZ_DIR)/run/$$t; rm -rf $$run; mkdir -p $$run/corpus $$run/artifacts; \
	  if [ -d tests/fuzz/corpus/$$t ]; then cp tests/fuzz/corpus/$$t/* $$run/corpus/; fi; \
	  $(FUZZ_ENV) $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_OPTS) -print_final_stats=1 \
	    -artifact_prefix=$$run/artifacts/ $$run/corpus >$$run/log 2>&1; rc=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$run/log); \
	  if [ $$rc -eq 0 ]; then printf '%-16s %10s runs in %ss: ok\n' $$t "$${runs:-?}" $(FUZZ_SECONDS); \
	  else fail=1; \
	    why=$$(grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)|ERROR: libFuzzer' $$run/log); \
	    printf '%-16s %10s runs: FAILED (exit %d) %s\n  log %s, reproducer %s\n' $$t "$${runs:-?}" $$rc \
	      "$$why" $$run/log "$$(ls $$run/artifacts/* 2>/dev/null | head -1)"; \
	  fi; \
	done; exit $$fail

fuzz-replay: $(FUZZ_BIN)
	@files=$$(find tests/fuzz/corpus -type f | sort); n=$$(echo "$$files" | wc -l); fail=0; \
	for t in $(FUZZ_TARGETS); do \
	  if ! $(FUZZ_ENV) $(FUZZ_DIR)/$$t $(FUZZ_OPTS) -artifact_prefix=$(FUZZ_DIR)/replay-$$t- $$files >$(FUZZ_DIR)/replay-$$t.log 2>&1; then \
	    fail=1; echo "fuzz-replay: $$t FAILED, see $(FUZZ_DIR)/replay-$$t.log:"; \
	    grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY|Running:)|runtime error' $(FUZZ_DIR)/replay-$$t.log | tail -2; \
	  fi; \
	done; \
	[ $$fail -eq 0 ] && echo "fuzz-replay: $$n corpus files through $(words $(FUZZ_TARGETS)) harnesses: no crash, leak or timeout"; \
	exit $$fail

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
