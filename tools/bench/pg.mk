# SPDX-License-Identifier: MIT
# tools/bench/pg.mk -- the PostgreSQL writer benchmark (anchor: psql \copy in the same run).
BENCH_BINS	+= $(OUTPUT)/pg_bench
BENCH_RUN	+= $(OUTPUT)/pg_bench

PG_BENCH_OBJS	:= $(OUTPUT)/tools/bench/pg_bench.o $(BENCH_STATS) $(OUTPUT)/tests/lib/pgharness.o \
		   $(OUTPUT)/tests/lib/pgrows.o $(OUTPUT)/tests/lib/netns.o

$(OUTPUT)/tools/bench/pg_bench.o: CFLAGS += -Itests/lib

$(OUTPUT)/pg_bench: $(PG_BENCH_OBJS) $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lpq -o $@
