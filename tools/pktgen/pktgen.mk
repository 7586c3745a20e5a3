# SPDX-License-Identifier: MIT
# tools/pktgen/pktgen.mk -- raw AF_PACKET packet sender for the XDP tests and benchmarks.
BINS		+= $(OUTPUT)/pktgen

# Frames from the packet builder the tests use, flags from a lib/confparse table: two objects,
# no libraries.
$(OUTPUT)/tools/pktgen/pktgen.o: CFLAGS += -Itools/lib

$(OUTPUT)/pktgen: $(OUTPUT)/tools/pktgen/pktgen.o $(OUTPUT)/tools/lib/pkt.o \
		  $(OUTPUT)/user/lib/confparse.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@
