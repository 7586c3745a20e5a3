# SPDX-License-Identifier: MIT
# tools/sluicectl/sluicectl.mk -- the sluicectl CLI (installed by `make install`).
SLUICECTL_SRCS	:= $(wildcard tools/sluicectl/*.c)
SLUICECTL_OBJS	:= $(patsubst %.c,$(OUTPUT)/%.o,$(SLUICECTL_SRCS))
BINS		+= $(OUTPUT)/sluicectl

$(SLUICECTL_OBJS): CFLAGS += -Itools/sluicectl

$(OUTPUT)/sluicectl: $(SLUICECTL_OBJS) $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lbpf -lxdp -lpq -lhiredis -ljansson -lm -lpthread -o $@
