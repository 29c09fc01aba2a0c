# What the export formats' unit tests (tests/unit/report_formats_test.cpp) read them with:
# python's XML parser, python3-jsonschema against the SARIF 2.1.0 schema, which no Debian
# package ships: npm's @microsoft/jest-sarif does (lib/schemas), pinned.  protoc (for the
# pprof test) comes with src/report/report.mk.
DEB_PKGS += python3 python3-jsonschema libxml2-utils
# npm from Debian only where there is none: a machine whose nodejs already brings its own npm
# (NodeSource's) conflicts with Debian's npm package.
ifeq ($(shell command -v npm 2>/dev/null),)
DEB_PKGS += npm
endif

SARIF_SCHEMA := $(BUILD)/npm/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json
$(SARIF_SCHEMA):
	npm install --prefix $(BUILD)/npm --no-audit --no-fund --no-save @microsoft/jest-sarif@1.0.0-beta.0
	@touch $@

test-deps: $(SARIF_SCHEMA)
# The unit tests run also without test-deps (make build/unit_tests, then the binary).
$(BUILD)/unit_tests: | $(SARIF_SCHEMA)

# The test decodes profiles with the classes protoc generates.
$(BUILD)/obj/tests/unit/report_formats_test.o: $(BUILD)/gen/profile.pb.h
$(BUILD)/obj/tests/unit/report_formats_test.o: CXXFLAGS += -I$(BUILD)/gen
