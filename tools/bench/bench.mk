# SPDX-License-Identifier: MIT
# tools/bench/bench.mk -- benchmarks run by `make bench` (tools/bench/run runs every BENCH_BINS).
# Every benchmark's median and quantiles come from one object.
BENCH_STATS	:= $(OUTPUT)/tools/bench/bench_stats.o

BENCH_BINS	+= $(OUTPUT)/xdp_cost
BENCH_RUN	+= $(OUTPUT)/xdp_cost

# xdp_cost builds its packets with the packet builder the tests use (tools/lib/pkt) and
# loads the bare anchor program from the build directory at run time.
$(OUTPUT)/tools/bench/xdp_cost.o: CFLAGS += -Itools/lib

$(OUTPUT)/xdp_cost: $(OUTPUT)/tools/bench/xdp_cost.o $(BENCH_STATS) $(OUTPUT)/tools/lib/pkt.o $(LIBSLUICE) \
		    $(OUTPUT)/bench_bare.bpf.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.o %.a,$(filter-out %.bpf.o,$^)) -lbpf -lxdp -o $@
