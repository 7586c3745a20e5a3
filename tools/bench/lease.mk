# SPDX-License-Identifier: MIT
# tools/bench/lease.mk -- cluster credits: Redis load at 3 nodes x 1,000 tenants and the
# per-request cost with leases on vs off (a script: needs the daemon and loadgen built).
BENCH_BINS	+= $(OUTPUT)/sluiced $(OUTPUT)/loadgen
BENCH_RUN	+= tools/bench/lease

BENCH_BINS	+= $(OUTPUT)/lease_cost
BENCH_RUN	+= $(OUTPUT)/lease_cost

$(OUTPUT)/lease_cost: $(OUTPUT)/tools/bench/lease_cost.o $(BENCH_STATS) $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(SLUICED_LIBS) -o $@
