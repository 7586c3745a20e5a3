# SPDX-License-Identifier: MIT
# user/sluiced.mk -- the daemon binary (its main is the only user/ file outside libsluice.a).
BINS		+= $(OUTPUT)/sluiced

$(OUTPUT)/sluiced: $(OUTPUT)/user/sluiced.o $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@
