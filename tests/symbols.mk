# Fixtures of the symbols unit tests (tests/unit/symbols_*_test.cpp), built into
# $(BUILD)/fixtures/symbols/.  The sources are copied next to the binaries so the tests can
# read their "@frame" / "@line" markers wherever they run from.
SYMFIX_DIR := $(BUILD)/fixtures/symbols
SYMFIX_OUT := $(SYMFIX_DIR)/unwind_target $(SYMFIX_DIR)/unwind_target.cpp \
              $(SYMFIX_DIR)/libsymfix.so $(SYMFIX_DIR)/libsymfix_nodebug.so $(SYMFIX_DIR)/symfix_lib.c

.PHONY: symbols-fixtures
symbols-fixtures: $(SYMFIX_OUT)
test-deps: symbols-fixtures

# The unwinder must get through this with CFI alone: no frame pointers.
$(SYMFIX_DIR)/unwind_target: tests/fixtures/symbols/unwind_target.cpp
	@mkdir -p $(SYMFIX_DIR)
	$(CXX) -O2 -fomit-frame-pointer -g -Wall -o $@ $<

$(SYMFIX_DIR)/libsymfix.so: tests/fixtures/symbols/symfix_lib.c
	@mkdir -p $(SYMFIX_DIR)
	$(CC) -O0 -g -Wall -shared -fPIC -o $@ $<

# The same library with no debug information at all: symbols from its symbol tables only.
$(SYMFIX_DIR)/libsymfix_nodebug.so: tests/fixtures/symbols/symfix_lib.c
	@mkdir -p $(SYMFIX_DIR)
	$(CC) -O0 -g0 -Wall -shared -fPIC -o $@ $<

$(SYMFIX_DIR)/%.cpp: tests/fixtures/symbols/%.cpp
	@mkdir -p $(SYMFIX_DIR)
	cp $< $@

$(SYMFIX_DIR)/%.c: tests/fixtures/symbols/%.c
	@mkdir -p $(SYMFIX_DIR)
	cp $< $@
