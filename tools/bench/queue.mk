# SPDX-License-Identifier: MIT
# tools/bench/queue.mk -- the durable queue benchmark (journal vs write+fdatasync anchor)
QUEUE_BENCH	:= $(OUTPUT)/queue_bench
BENCH_BINS	+= $(QUEUE_BENCH)
BENCH_RUN	+= $(QUEUE_BENCH)

$(QUEUE_BENCH): tools/bench/queue_bench.c $(LIBSLUICE) | $(OUTPUT)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIBSLUICE) $(LDLIBS) -o $@
