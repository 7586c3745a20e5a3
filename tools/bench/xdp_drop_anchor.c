// SPDX-License-Identifier: MIT
/* xdp_drop_anchor.c -- attach a bare "return XDP_DROP" program: the floor of any XDP drop
 *
 *	xdp_drop_anchor attach IFACE [native|generic]
 *	xdp_drop_anchor detach IFACE
 *
 * The xdp_flood benchmark runs this anchor beside Sluice's program, so its report can
 * separate what the admission program itself costs from what the path into XDP costs
 * (on a veth, converting each skb into an XDP buffer). The program is two instructions
 * loaded with bpf_prog_load(), so it needs no BPF object file; the netlink attachment
 * keeps it alive after this process exits, until detach.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>

static int usage(void)
{
	fprintf(stderr, "usage: xdp_drop_anchor attach IFACE [native|generic] | detach IFACE\n");
	return 2;
}

static int attach(int ifindex, const char *ifname, __u32 mode)
{
	const struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_DROP},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "bare_drop", "GPL", insns, 2, NULL), ret;

	if (fd < 0) {
		fprintf(stderr, "xdp_drop_anchor: load: %s\n", strerror(-fd));
		return 1;
	}
	ret = bpf_xdp_attach(ifindex, fd, mode, NULL);
	close(fd);
	if (ret) {
		fprintf(stderr, "xdp_drop_anchor: attach to %s: %s\n", ifname, strerror(-ret));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	__u32 mode = XDP_FLAGS_DRV_MODE;
	int ifindex, ret;

	if (argc < 3)
		return usage();
	ifindex = (int)if_nametoindex(argv[2]);
	if (!ifindex) {
		fprintf(stderr, "xdp_drop_anchor: %s: no such interface\n", argv[2]);
		return 2;
	}
	if (argc > 3 && !strcmp(argv[3], "generic"))
		mode = XDP_FLAGS_SKB_MODE;
	else if (argc > 3 && strcmp(argv[3], "native"))
		return usage();
	if (!strcmp(argv[1], "attach"))
		return attach(ifindex, argv[2], mode);
	if (strcmp(argv[1], "detach"))
		return usage();
	ret = bpf_xdp_detach(ifindex, mode, NULL);
	if (ret) {
		fprintf(stderr, "xdp_drop_anchor: detach from %s: %s\n", argv[2], strerror(-ret));
		return 1;
	}
	return 0;
}
