# Tests: doctest unit tests (pure logic, no ptrace) and end-to-end tests that run
# build/ptmem against the samples; the tracer's (trace*, gauntlet*) run once per engine.  Both print doctest's summary; `make test` ends with
# one "N passed, N failed" line over both.

UNIT_SRC := $(sort $(wildcard tests/unit/*.cpp))
E2E_SRC  := $(sort $(wildcard tests/e2e/*.cpp))
SUPPORT_SRC := $(sort $(wildcard tests/support/*.cpp))
UNIT_OBJ := $(UNIT_SRC:%.cpp=$(BUILD)/obj/%.o) $(SUPPORT_SRC:%.cpp=$(BUILD)/obj/%.o)
E2E_OBJ  := $(E2E_SRC:%.cpp=$(BUILD)/obj/%.o) $(SUPPORT_SRC:%.cpp=$(BUILD)/obj/%.o)

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libptmem.a
	$(CXX) $(CXXFLAGS) -o $@ $(UNIT_OBJ) $(BUILD)/libptmem.a $(LDLIBS)

$(BUILD)/e2e_tests: $(E2E_OBJ) $(BUILD)/libptmem.a
	$(CXX) $(CXXFLAGS) -o $@ $(E2E_OBJ) $(BUILD)/libptmem.a $(LDLIBS)

unit: $(BUILD)/unit_tests test-deps
	cd tests && BUILD_DIR=$(abspath $(BUILD)) ../$(BUILD)/unit_tests --no-version $(TEST_ARGS)

e2e: $(BUILD)/e2e_tests test-deps
	PTMEM=$(abspath $(PTMEM)) SAMPLES=$(abspath $(BUILD)/samples) BUILD_DIR=$(abspath $(BUILD)) $(BUILD)/e2e_tests --no-version $(TEST_ARGS)

# The tracer's tests under the breakpoint engine (e2e uses the default, inject; make test
# runs both).
e2e-breakpoint: $(BUILD)/e2e_tests test-deps
	PTMEM_ENGINE=breakpoint PTMEM=$(abspath $(PTMEM)) SAMPLES=$(abspath $(BUILD)/samples) BUILD_DIR=$(abspath $(BUILD)) $(BUILD)/e2e_tests --no-version -tc='trace*,gauntlet*' $(TEST_ARGS)

# Runs both suites even if the first fails, then prints one closing line.
test: $(BUILD)/unit_tests $(BUILD)/e2e_tests test-deps
	@set +e; \
	(cd tests && BUILD_DIR=$(abspath $(BUILD)) ../$(BUILD)/unit_tests --no-version $(TEST_ARGS)) 2>&1 | tee $(BUILD)/unit.log; u=$${PIPESTATUS[0]}; \
	PTMEM=$(abspath $(PTMEM)) SAMPLES=$(abspath $(BUILD)/samples) BUILD_DIR=$(abspath $(BUILD)) $(BUILD)/e2e_tests --no-version $(TEST_ARGS) 2>&1 | tee $(BUILD)/e2e.log; e=$${PIPESTATUS[0]}; \
	echo "== the tracer's end-to-end tests again, under the breakpoint engine"; \
	PTMEM_ENGINE=breakpoint PTMEM=$(abspath $(PTMEM)) SAMPLES=$(abspath $(BUILD)/samples) BUILD_DIR=$(abspath $(BUILD)) $(BUILD)/e2e_tests --no-version -tc='trace*,gauntlet*' $(TEST_ARGS) 2>&1 | tee $(BUILD)/e2e_breakpoint.log; i=$${PIPESTATUS[0]}; \
	grep -h '^\[doctest\] test cases:' $(BUILD)/unit.log $(BUILD)/e2e.log $(BUILD)/e2e_breakpoint.log | \
	  awk -F'|' '{ for (i = 2; i <= NF; i++) { split($$i, w, " "); if (w[2] == "passed") p += w[1]; if (w[2] == "failed") f += w[1] } } \
	             END { printf "%d passed, %d failed\n", p, f }'; \
	[ $$u -eq 0 ] && [ $$e -eq 0 ] && [ $$i -eq 0 ]
