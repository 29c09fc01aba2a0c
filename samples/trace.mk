# Tracer samples that need more than samples.mk's default "-O0 -g" build: a shared library
# and a dlopen plugin the samples load, optimised and debug-less variants, a static binary,
# and a 32-bit executable assembled without gcc-multilib.  Everything lands in
# $(BUILD)/samples/ next to the default samples (the tests find them there).

TRACE_SD := $(BUILD)/samples
TRACE_EXTRA := $(TRACE_SD)/libtrace_leaky.so $(TRACE_SD)/trace_plugin.so \
               $(TRACE_SD)/trace_malloc_static $(TRACE_SD)/trace_malloc_nodebug \
               $(TRACE_SD)/trace_malloc_stripped $(TRACE_SD)/trace_i386 \
               $(TRACE_SD)/libtrace_shim_alloc.so

.PHONY: trace-samples
trace-samples: $(TRACE_EXTRA) $(TRACE_SD)/trace_uses_lib $(TRACE_SD)/trace_cxx_o2
samples: trace-samples
test-deps: trace-samples

$(TRACE_SD)/libtrace_leaky.so: samples/trace_lib/leaky.c
	@mkdir -p $(TRACE_SD)
	$(CC) -O0 -g -Wall -fPIC -shared -o $@ $<

# A preloadable allocator whose operator delete starts with endbr64 and tail-jumps to free.
$(TRACE_SD)/libtrace_shim_alloc.so: samples/trace_lib/shim_alloc.c
	@mkdir -p $(TRACE_SD)
	$(CC) -O2 -g -Wall -fPIC -shared -fcf-protection=full -o $@ $<

$(TRACE_SD)/trace_plugin.so: samples/trace_lib/plugin.c
	@mkdir -p $(TRACE_SD)
	$(CC) -O0 -g -Wall -fPIC -shared -o $@ $<

# Finds libtrace_leaky.so next to itself wherever the build directory is.
$(TRACE_SD)/trace_uses_lib: samples/trace_uses_lib.c samples/trace_common.h $(TRACE_SD)/libtrace_leaky.so
	$(CC) -O0 -g -Wall -o $@ $< -L$(TRACE_SD) -ltrace_leaky -Wl,-rpath,'$$ORIGIN'

# Optimised, no frame pointers: the stack must unwind by DWARF CFI alone.
$(TRACE_SD)/trace_cxx_o2: samples/trace_cxx_o2.cpp samples/trace_common.h
	@mkdir -p $(TRACE_SD)
	$(CXX) -O2 -g -fomit-frame-pointer -Wall -o $@ $<

# The allocator lives in the executable itself.
$(TRACE_SD)/trace_malloc_static: samples/trace_malloc.c samples/trace_common.h
	@mkdir -p $(TRACE_SD)
	$(CC) -O0 -g -Wall -static -o $@ $<

# No DWARF (function names from .symtab only), and nothing at all (module+offset only).
$(TRACE_SD)/trace_malloc_nodebug: samples/trace_malloc.c samples/trace_common.h
	@mkdir -p $(TRACE_SD)
	$(CC) -O0 -Wall -o $@ $<
	strip --strip-debug $@

$(TRACE_SD)/trace_malloc_stripped: samples/trace_malloc.c samples/trace_common.h
	@mkdir -p $(TRACE_SD)
	$(CC) -O0 -Wall -o $@ $<
	strip --strip-all $@

# A 32-bit (i386) static executable, from assembly: binutils can build it without
# gcc-multilib.  Whether the kernel can run it (IA32 emulation) is the test's business.
$(TRACE_SD)/trace_i386: samples/trace_i386.S
	@mkdir -p $(TRACE_SD)
	as --32 -o $@.o $<
	ld -m elf_i386 -o $@ $@.o
	@rm -f $@.o

# The default rules do not know these samples include the shared header.
$(patsubst samples/%.c,$(TRACE_SD)/%,$(wildcard samples/trace_*.c)) \
$(patsubst samples/%.cpp,$(TRACE_SD)/%,$(wildcard samples/trace_*.cpp)): samples/trace_common.h
