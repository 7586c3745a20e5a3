# SPDX-License-Identifier: MIT
# tests/tests.mk -- the test_progs runner and every test linked into it.
TEST_LIB_SRCS	:= $(wildcard tests/lib/*.c)
TEST_SRCS	+= $(wildcard tests/prog_tests/*.c tests/unit/*.c tests/integration/*.c \
			      tests/scenario/*.c)
TEST_OBJS	:= $(patsubst %.c,$(OUTPUT)/%.o,$(TEST_LIB_SRCS) $(TEST_SRCS))
TEST_BINS	+= $(OUTPUT)/test_progs
# -lseccomp: test_deploy_seccomp applies the shipped OCI seccomp profile as a runtime would
TEST_LIBS	:= -lrdkafka -lbpf -lxdp -lpq -lhiredis -ljansson -linih -lcurl -lssl -lcrypto -lm -lseccomp

# ASSERT_EQ(x, 0, ...) on unsigned x is the idiom; comparing mixed signs is intended there.
$(TEST_OBJS): CFLAGS += -Itests/lib -Itools/lib -I$(OUTPUT)/tests -Wno-sign-compare

# The table of tests: every `void test_<name>(void)` definition, one DEFINE_TEST each.
# Regenerated on every build (a deleted test must drop out), replaced only when it changed.
$(OUTPUT)/tests/tests.h: FORCE | $(OUTPUT)/tests
	$(Q)grep -h -o '^void test_[A-Za-z0-9_]*(void)' $(TEST_SRCS) /dev/null | \
		sed 's/^void test_\(.*\)(void)/DEFINE_TEST(\1)/' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; echo "  GEN      $@"; fi

$(OUTPUT)/tests/lib/test_progs.o: $(OUTPUT)/tests/tests.h

# test_sluicectl_args checks sluicectl's option lookups in-process, so it links that one object
# of the tool (and sees its private header).
$(OUTPUT)/tests/unit/test_sluicectl_args.o: CFLAGS += -Itools/sluicectl

$(OUTPUT)/test_progs: $(TEST_OBJS) $(OUTPUT)/tools/lib/pkt.o $(OUTPUT)/tools/sluicectl/args.o \
		     $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(TEST_LIBS) -o $@
