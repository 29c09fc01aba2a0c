# The pprof export (pprof.cpp) writes profile.proto's messages with the C++ protoc
# generates from it into $(BUILD)/gen; the generated object joins libptmem.a, which then
# needs libprotobuf, and zlib for the gzip pprof expects.
DEB_PKGS += protobuf-compiler libprotobuf-dev zlib1g-dev

PROTO_GEN := $(BUILD)/gen
PROTO_OBJ := $(BUILD)/obj/gen/profile.pb.o
LDLIBS    += $(shell pkg-config --libs protobuf zlib 2>/dev/null || echo -lprotobuf -lz)

# One rule makes both files (grouped target): -j never runs protoc twice.
$(PROTO_GEN)/profile.pb.h $(PROTO_GEN)/profile.pb.cc &: src/report/profile.proto
	@mkdir -p $(PROTO_GEN)
	protoc --proto_path=src/report --cpp_out=$(PROTO_GEN) $<

$(PROTO_OBJ): $(PROTO_GEN)/profile.pb.cc $(PROTO_GEN)/profile.pb.h
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -I$(PROTO_GEN) -c $< -o $@

# pprof.cpp includes the generated header: it must exist before the first compile (the
# .d files only know it afterwards).
$(BUILD)/obj/src/report/pprof.o: $(PROTO_GEN)/profile.pb.h
$(BUILD)/obj/src/report/pprof.o: CXXFLAGS += -I$(PROTO_GEN)

$(BUILD)/libptmem.a: $(PROTO_OBJ)
