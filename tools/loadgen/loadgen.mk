# SPDX-License-Identifier: MIT
# tools/loadgen/loadgen.mk -- HTTP/1.1 keep-alive load generator for POST /v1/events.
BINS		+= $(OUTPUT)/loadgen

LOADGEN_OBJS	:= $(patsubst %.c,$(OUTPUT)/%.o,$(wildcard tools/loadgen/*.c))

# Its flags are a lib/confparse table: that one object, not the whole libsluice.a.
$(OUTPUT)/loadgen: $(LOADGEN_OBJS) $(OUTPUT)/user/lib/confparse.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -ljansson -o $@
