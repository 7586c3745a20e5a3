# SPDX-License-Identifier: MIT
# user/sluiced.mk -- the daemon binary (its main is the only user/ file outside libsluice.a).
BINS		+= $(OUTPUT)/sluiced

SLUICED_LIBS	:= -lrdkafka -lbpf -lxdp -luring -lpq -lhiredis -ljansson -linih -lcurl -lssl -lcrypto -lm

$(OUTPUT)/sluiced: $(OUTPUT)/user/sluiced.o $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(SLUICED_LIBS) -o $@
