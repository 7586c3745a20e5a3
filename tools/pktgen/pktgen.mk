# SPDX-License-Identifier: MIT
# tools/pktgen/pktgen.mk -- raw AF_PACKET packet sender for the XDP tests and benchmarks.
BINS		+= $(OUTPUT)/pktgen

$(OUTPUT)/pktgen: $(OUTPUT)/tools/pktgen/pktgen.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@
