# Samples: small C/C++ programs with known behaviour, built into build/samples/.
# Default: -O0 -g.  Samples that need other flags get their own rule below.
SAMPLE_DIR := $(BUILD)/samples
SAMPLE_C   := $(sort $(wildcard samples/*.c))
SAMPLE_CXX := $(sort $(wildcard samples/*.cpp))
SAMPLE_BIN := $(SAMPLE_C:samples/%.c=$(SAMPLE_DIR)/%) $(SAMPLE_CXX:samples/%.cpp=$(SAMPLE_DIR)/%)

.PHONY: samples
samples: $(SAMPLE_BIN)
test-deps: samples

$(SAMPLE_DIR)/%: samples/%.c
	@mkdir -p $(SAMPLE_DIR)
	$(CC) -O0 -g -Wall -o $@ $< -lpthread -ldl

$(SAMPLE_DIR)/%: samples/%.cpp
	@mkdir -p $(SAMPLE_DIR)
	$(CXX) -O0 -g -Wall -o $@ $< -lpthread -ldl

# The README's first command: build, then show ptmem finding the demo's leaks.
.PHONY: demo
demo: $(PTMEM) $(SAMPLE_DIR)/demo
	$(PTMEM) launch -- $(SAMPLE_DIR)/demo
