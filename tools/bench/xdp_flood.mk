# SPDX-License-Identifier: MIT
# tools/bench/xdp_flood.mk -- SYN flood dropped by Sluice XDP vs. nftables (and a bare
# XDP_DROP program as the floor of any XDP drop; xdp_drop_anchor is its helper, built with it
# but not a benchmark of its own).
BENCH_BINS	+= $(OUTPUT)/xdp_flood
BENCH_RUN	+= $(OUTPUT)/xdp_flood

$(OUTPUT)/xdp_flood: tools/bench/xdp_flood.sh $(OUTPUT)/sluicectl $(OUTPUT)/pktgen \
		     $(OUTPUT)/xdp_drop_anchor
	$(call msg,INSTALL,$@)
	$(Q)install -m755 $< $@

$(OUTPUT)/xdp_drop_anchor: $(OUTPUT)/tools/bench/xdp_drop_anchor.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lbpf -o $@
