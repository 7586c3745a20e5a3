// SPDX-License-Identifier: MIT
/* bpf_probe.c -- does the running kernel have what the XDP program needs? Asked before loading
 *
 * On a kernel too old for the program the load fails with a verifier log that names no
 * feature: Debian 11's 5.10 answers "BPF_STX uses reserved fields" to the 64-bit
 * compare-and-exchange the GCRA credits are built on. Each probe here asks the kernel for one
 * thing the program uses, oldest first, with a throwaway map or a few-instruction program,
 * and the first one missing is reported by name with the release that added it. Only what
 * the program needs beyond Linux 5.2 (BTF-defined maps and global data, which libbpf checks
 * itself) is probed. Measured with `make test-kernels` (docs/kernels.md): 5.10 lacks the
 * cmpxchg, 6.1 and 6.12 have everything.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "lib/array_size.h"
#include "nic/bpf_loader.h"

/* 0 when present, -EOPNOTSUPP when the kernel refuses it, other -errno when it cannot say. */
typedef int probe_fn(void);

/* An unknown flag or instruction is refused with EINVAL; anything else is another problem. */
static int refused(int err)
{
	return err == -EINVAL ? -EOPNOTSUPP : err;
}

/* BPF_F_MMAPABLE arrays (5.5): the daemon mmaps the tenant state the program updates. The
 * messages stay short: a test's skip reason is cut at 160 bytes. */
static int probe_mmapable(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_MMAPABLE);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_probe_mmap", 4, 8, 1, &o);

	if (fd < 0)
		return refused(-errno);
	close(fd);
	return 0;
}

/* bpf_jiffies64() (5.5): the program's cheap clock. */
static int probe_jiffies64(void)
{
	int r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, BPF_FUNC_jiffies64, NULL);

	return r == 1 ? 0 : r == 0 ? -EOPNOTSUPP : r;
}

/* 64-bit atomic compare-and-exchange (5.12): every GCRA credit update is one; on the stack
 * here. */
static int probe_cmpxchg(void)
{
	const struct bpf_insn insns[] = {
	    {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = -8, .imm = 0},
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = 1},
	    {.code = BPF_STX | BPF_DW | BPF_ATOMIC,
	     .dst_reg = BPF_REG_10,
	     .src_reg = BPF_REG_1,
	     .off = -8,
	     .imm = BPF_CMPXCHG},
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "sl_probe_cas", "GPL", insns,
			       sizeof(insns) / sizeof(insns[0]), NULL);

	if (fd < 0)
		return refused(-errno);
	close(fd);
	return 0;
}

int sluice_bpf_probe(char *err, size_t errlen)
{
	static const struct {
		probe_fn *fn;
		const char *what, *since;
	} probes[] = {
	    {probe_mmapable, "mmapable BPF arrays", "5.5"},
	    {probe_jiffies64, "the bpf_jiffies64 helper", "5.5"},
	    {probe_cmpxchg, "64-bit BPF cmpxchg", "5.12"},
	};
	struct utsname u;

	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		int r = probes[i].fn();

		if (r == -EPERM || r == -EACCES) {
			snprintf(err, errlen,
				 "probing BPF features: no BPF permission (run as root, or grant "
				 "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)");
			return r;
		}
		if (r == -EOPNOTSUPP) {
			snprintf(err, errlen,
				 "kernel %s lacks %s (Linux %s): XDP admission needs Linux %s+",
				 u.release, probes[i].what, probes[i].since,
				 probes[ARRAY_SIZE(probes) - 1].since);
			return r;
		}
		if (r) {
			snprintf(err, errlen, "probing BPF features (%s): %s", probes[i].what,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}
