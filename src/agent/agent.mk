# The in-target agent: freestanding C, no libc, linked at 0 into one flat blob that is
# embedded into ptmem (build/obj/agent_blob.o, symbols _binary_agent_bin_*).  No vector
# registers (the hooks save only the general ones), no stack protector (no TLS canary of
# ours), no CET markers (it is entered by jmp from patched code).
AGENT_DIR   := $(BUILD)/agent
AGENT_CFLAGS := -O2 -g0 -std=gnu11 -Wall -Wextra -fPIC -ffreestanding -fno-builtin -nostdlib \
                -mgeneral-regs-only -mno-red-zone -fno-stack-protector -fcf-protection=none \
                -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-jump-tables \
                -fvisibility=hidden -Iinclude

$(AGENT_DIR)/agent.o: src/agent/agent.c include/ptmem/inject/agent_abi.h
	@mkdir -p $(AGENT_DIR)
	$(CC) $(AGENT_CFLAGS) -c $< -o $@

# Only the header's offsets may be absolute (the image is linked at 0); anything else
# would break once the blob is mapped elsewhere, so the link fails on it.
$(AGENT_DIR)/agent.bin: $(AGENT_DIR)/agent.o src/agent/agent.ld
	@bad=$$(readelf -rW $< | awk '/R_X86_64_(64|32S?) / && $$0 !~ /ptmem_agent_(entry|return|entry_exit|return_exit|end)/' ); \
	if [ -n "$$bad" ]; then echo "agent: absolute relocations outside the header:"; echo "$$bad"; exit 1; fi
	ld -T src/agent/agent.ld -nostdlib --no-dynamic-linker -o $(AGENT_DIR)/agent.elf $<
	objcopy -O binary -j .text $(AGENT_DIR)/agent.elf $@

$(BUILD)/obj/agent_blob.o: $(AGENT_DIR)/agent.bin
	@mkdir -p $(dir $@)
	cd $(AGENT_DIR) && objcopy -I binary -O elf64-x86-64 -B i386:x86-64 \
	  --rename-section .data=.rodata,alloc,load,readonly,data,contents \
	  --add-section .note.GNU-stack=/dev/null agent.bin $(abspath $@)
