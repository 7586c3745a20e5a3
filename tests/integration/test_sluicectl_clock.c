// SPDX-License-Identifier: MIT
/* test_sluicectl_clock.c -- sluicectl clock exact|tick|show flips SLUICE_CFG_EXACT_CLOCK */
#include <bpf/bpf.h>
#include <stdio.h>
#include <unistd.h>

#include "nic/bpf_loader.h"
#include "netns.h"
#include "test_progs.h"

static __u32 flags_of(int fd)
{
	struct sluice_config cfg = {0};
	__u32 zero = 0;

	bpf_map_lookup_elem(fd, &zero, &cfg);
	return cfg.flags;
}

void test_sluicectl_clock(void)
{
	char pin[128], err[512], out[1024];
	struct sluice_bpf *b;
	int fd;

	if (!test__require_root())
		return;
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/sluice-test-%d-clock", (int)getpid());
	b = sluice_bpf_load(pin, err, sizeof(err));
	if (!b) {
		test__skip("cannot load the XDP program: %s", err);
		return;
	}
	fd = sluice_bpf_map_fd(b, SLUICE_M_CONFIG);
	ASSERT_FALSE(flags_of(fd) & SLUICE_CFG_EXACT_CLOCK, "tick clock by default");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s/sluicectl --pin-dir %s clock exact",
			    test__outdir(), pin),
		  0, "clock exact");
	ASSERT_TRUE(flags_of(fd) & SLUICE_CFG_EXACT_CLOCK, "flag set in the pinned config");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s/sluicectl --pin-dir %s clock show --json",
			    test__outdir(), pin),
		  0, "clock show");
	ASSERT_HAS_STR(out, "\"exact_clock\": true", "shows it");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s/sluicectl --pin-dir %s clock tick",
			    test__outdir(), pin),
		  0, "clock tick");
	ASSERT_FALSE(flags_of(fd) & SLUICE_CFG_EXACT_CLOCK, "flag cleared");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s/sluicectl --pin-dir %s clock fast",
			    test__outdir(), pin),
		  2, "unknown verb is a usage error");
	sluice_bpf_free(b);
	sluice_bpf_unpin(pin);
}
