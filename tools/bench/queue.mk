# SPDX-License-Identifier: MIT
# tools/bench/queue.mk -- the durable queue benchmark (journal vs write+fdatasync anchor)
QUEUE_BENCH	:= $(OUTPUT)/queue_bench
BENCH_BINS	+= $(QUEUE_BENCH)
BENCH_RUN	+= $(QUEUE_BENCH)

$(QUEUE_BENCH): $(OUTPUT)/tools/bench/queue_bench.o $(BENCH_STATS) $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@
