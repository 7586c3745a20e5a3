# SPDX-License-Identifier: MIT
# tools/mock-upstream/mock-upstream.mk -- the AI/CRM stand-in with run-time fault injection.
MOCK_UPSTREAM_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(wildcard tools/mock-upstream/*.c))
BINS		+= $(OUTPUT)/mock-upstream

$(OUTPUT)/mock-upstream: $(MOCK_UPSTREAM_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@
