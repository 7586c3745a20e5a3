# SPDX-License-Identifier: MIT
# tools/bench/upstream.mk -- calls/s through one upstream pool (libcurl multi) vs a raw
# io_uring client, and the breaker-open fallback latency. Run: .output/upstream-bench
BENCH_BINS	+= $(OUTPUT)/upstream-bench
BENCH_RUN	+= $(OUTPUT)/upstream-bench

$(OUTPUT)/upstream-bench: $(OUTPUT)/tools/bench/upstream.o $(BENCH_STATS) $(LIBSLUICE) | $(OUTPUT)/mock-upstream
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -luring -lhiredis -ljansson -lcurl -lm -o $@

# How often the breaker opens on random failures alone, per window/minimum (docs table).
BENCH_BINS	+= $(OUTPUT)/breaker-noise
BENCH_RUN	+= $(OUTPUT)/breaker-noise

$(OUTPUT)/breaker-noise: $(OUTPUT)/tools/bench/breaker_noise.o $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@
