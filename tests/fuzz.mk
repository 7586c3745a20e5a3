# SPDX-License-Identifier: MIT
# tests/fuzz.mk -- libFuzzer targets (clang, ASan+UBSan) for the HTTP head parser, the
# chunked body decoder, the envelope validator and journal recovery. `make test` builds them and test_fuzz_smoke runs each briefly over the
# committed corpus plus fresh inputs; `make fuzz` runs each for FUZZ_TIME seconds (default 60).
FUZZ_CFLAGS	:= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		   -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser
FUZZ_TIME	?= 60
FUZZ_BINS	:= $(OUTPUT)/fuzz/fuzz_http_parser $(OUTPUT)/fuzz/fuzz_chunked $(OUTPUT)/fuzz/fuzz_envelope \
		   $(OUTPUT)/fuzz/fuzz_journal_recover
TEST_BINS	+= $(FUZZ_BINS)

$(OUTPUT)/fuzz/fuzz_http_parser: tests/fuzz/fuzz_http_parser.c user/ingress/http_parser.c | $(DEPS_STAMP)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $^ -o $@

$(OUTPUT)/fuzz/fuzz_chunked: tests/fuzz/fuzz_chunked.c user/ingress/chunked.c | $(DEPS_STAMP)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $^ -o $@

$(OUTPUT)/fuzz/fuzz_envelope: tests/fuzz/fuzz_envelope.c user/ingress/envelope.c user/admit/tenants.c \
			      user/lib/sha256.c | $(DEPS_STAMP)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $^ -ljansson -linih -lbpf -lm -o $@

$(OUTPUT)/fuzz/fuzz_journal_recover: tests/fuzz/fuzz_journal_recover.c \
				     $(wildcard user/queue/journal/*.c) user/lib/log.c \
				     $(wildcard user/queue/journal/*.h) user/queue/queue.h | $(DEPS_STAMP)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -pthread $(filter %.c,$^) -o $@

.PHONY: fuzz
fuzz: $(FUZZ_BINS) ## run each libFuzzer target for FUZZ_TIME seconds (default 60)
	$(Q)for f in $(FUZZ_BINS); do \
		n=$$(basename $$f | sed 's/^fuzz_//'); \
		mkdir -p $(OUTPUT)/fuzz/corpus-$$n; \
		echo "  FUZZ     $$n for $(FUZZ_TIME) s"; \
		$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 $(OUTPUT)/fuzz/corpus-$$n \
			tests/fuzz/corpus/$$n || exit 1; \
	done
