// SPDX-License-Identifier: MIT
/* test_tenants_slots.c -- a restart keeps each tenant's slot, whatever the file order
 *
 * The slot indexes the pinned credit state and counters, so a tenant must get the slot it
 * had before the restart: tenants_from_bpf() reads the names back from the pinned config
 * map and tenants_load() honours them; a new tenant takes a slot nobody held.
 */
#include <bpf/bpf.h>
#include <stdio.h>

#include "nic/bpf_loader.h"
#include "admit/tenants.h"
#include "test_progs.h"

static void put_name(int fd, __u32 slot, const char *name)
{
	struct sluice_tenant_cfg tc = {0};

	snprintf(tc.name, sizeof(tc.name), "%s", name);
	bpf_map_update_elem(fd, &slot, &tc, BPF_ANY);
}

void test_tenants_slots(void)
{
	char err[512], path[512];
	struct sluice_bpf *b;
	struct tenants *pinned = NULL, *t = NULL;
	FILE *f;
	int fd;

	if (!test__require_root())
		return;
	b = sluice_bpf_load(NULL, err, sizeof(err));
	if (!b) {
		test__skip("cannot load the XDP program: %s", err);
		return;
	}
	fd = sluice_bpf_map_fd(b, SLUICE_M_TENANT_CFG);
	put_name(fd, 5, "acme");
	put_name(fd, 9, "beta");
	snprintf(path, sizeof(path), "%s/tenants.ini", test__tmpdir());
	f = fopen(path, "w");
	/* the file lists them in another order, with a newcomer first */
	fputs("[gamma]\nclass = low\n[beta]\n[acme]\n", f);
	fclose(f);
	pinned = tenants_from_bpf(fd);
	if (!ASSERT_OK_PTR(pinned, "read back from the pinned map"))
		goto out;
	ASSERT_EQ(tenants_count(pinned), 2, "two named slots pinned");
	t = tenants_load(path, pinned, err, sizeof(err));
	if (!ASSERT_OK_PTR(t, err))
		goto out;
	for (unsigned i = 0; i < tenants_count(t); i++) {
		const struct tenant *tn = tenants_at(t, i);

		if (!strcmp(tn->name, "acme"))
			ASSERT_EQ(tn->slot, 5, "acme keeps slot 5");
		else if (!strcmp(tn->name, "beta"))
			ASSERT_EQ(tn->slot, 9, "beta keeps slot 9");
		else
			ASSERT_EQ(tn->slot, SLUICE_SLOT_FIRST,
				  "the newcomer takes the first free slot");
	}
out:
	tenants_put(t);
	tenants_put(pinned);
	sluice_bpf_free(b);
}
