# ptmem — top-level build.  `make deps` installs what is missing (Debian, as root),
# `make` builds build/ptmem, `make test` runs unit and end-to-end tests, `make bench`
# prints the speed/memory ratios, `make install` installs binary and man page.
# Sub-makefiles (samples/, tests/, bench/) add their own rules; all .cpp under src/ are
# compiled automatically, so adding a file needs no edit here.

SHELL    := /bin/bash
CXX      ?= g++
CC       ?= gcc
PREFIX   ?= /usr/local
BUILD    := build
PKGS     := libdw capstone fmt absl_flat_hash_map ncursesw nlohmann_json

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Wno-missing-field-initializers -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS   += $(PKG_LIBS) -lpthread

SRC      := $(shell find src -name '*.cpp' | sort)
MAIN_SRC := src/cli/main.cpp
LIB_SRC  := $(filter-out $(MAIN_SRC),$(SRC))
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o) $(BUILD)/obj/agent_blob.o
MAIN_OBJ := $(MAIN_SRC:%.cpp=$(BUILD)/obj/%.o)
PTMEM    := $(BUILD)/ptmem

.PHONY: all deps test unit e2e e2e-breakpoint bench install clean demo
all: $(PTMEM)

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libptmem.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(PTMEM): $(MAIN_OBJ) $(BUILD)/libptmem.a
	$(CXX) $(CXXFLAGS) -o $@ $(MAIN_OBJ) $(BUILD)/libptmem.a $(LDLIBS)

# Debian packages the build, the tests and the benchmarks need.  Only what is missing is
# installed, so this is quick on a machine that already has everything.
DEB_PKGS := g++ make pkg-config libdw-dev libelf-dev libcapstone-dev libcli11-dev doctest-dev \
            nlohmann-json3-dev libfmt-dev libabsl-dev libncurses-dev libc6-dev tmux man-db procps \
            libjemalloc2 libtcmalloc-minimal4 valgrind
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "all build and test dependencies are installed"; fi

install: $(PTMEM)
	install -D -m 0755 $(PTMEM) $(DESTDIR)$(PREFIX)/bin/ptmem
	install -D -m 0644 man/ptmem.1 $(DESTDIR)$(PREFIX)/share/man/man1/ptmem.1

clean:
	rm -rf $(BUILD)

# Every module may bring its own rules: samples/*.mk, tests/*.mk, bench/*.mk, src/*/*.mk.
# Sub-makefiles add prerequisites to `test-deps` (things the tests need built).
.PHONY: test-deps
test-deps: $(PTMEM)
-include $(sort $(wildcard samples/*.mk tests/*.mk bench/*.mk src/*/*.mk))
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
