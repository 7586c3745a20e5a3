// SPDX-License-Identifier: GPL-2.0 OR MIT
/* bench_bare.bpf.c -- the anchor of tools/bench/xdp_cost: an XDP program that only passes
 *
 * Its cost under BPF_PROG_TEST_RUN is the harness's own (context setup, the call, the
 * timing loop), so the admission program's ratio to it is the work admission adds.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int bench_bare(struct xdp_md *ctx)
{
	return XDP_PASS;
}
