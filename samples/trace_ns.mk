# The mount-namespace tests' second build of samples/trace_ns_target.c: other lines and
# names, static (its allocator in the executable, so hooking it needs the target's own file).
# The default rule in samples.mk builds trace_ns_target itself.

$(BUILD)/samples/trace_ns_other: samples/trace_ns_target.c samples/trace_common.h
	@mkdir -p $(BUILD)/samples
	$(CC) -O0 -g -Wall -static -DTRACE_NS_OTHER -o $@ $<

test-deps: $(BUILD)/samples/trace_ns_other
