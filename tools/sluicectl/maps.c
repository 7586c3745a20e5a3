// SPDX-License-Identifier: MIT
/* maps.c -- sluicectl's access to the pinned maps: open on demand, config, tenants, counters
 *
 * Maps are opened from their pins (bpf_obj_get) the first time a command needs them, so a
 * command touches only what it uses and works while sluiced or the XDP program run. The
 * config entry is mmapped and sluicectl stores only the fields it owns (flags, the manual
 * shed level and shares), because sluiced writes others at the same time; every change to
 * sources, prefixes or the deny list bumps config.generation with an atomic add, which makes
 * the XDP program redo its cached per-source resolution on the next packet. Tenant names live in
 * the config array itself, so a name lookup is one batch read of that array.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli.h"

static void not_attached(const char *dir)
{
	ctl_die("not_attached",
		"not attached (no pins under %s); attach first: "
		"sluicectl%s%s attach --iface IFACE --ports 8080",
		dir, strcmp(dir, SLUICE_PIN_DIR_DEFAULT) ? " --pin-dir " : "",
		strcmp(dir, SLUICE_PIN_DIR_DEFAULT) ? dir : "");
}

int ctl_map(struct ctl *c, enum sluice_map_id id)
{
	int fd;

	if (c->fd[id] >= 0)
		return c->fd[id];
	fd = sluice_bpf_open_pinned(c->pin_dir, id);
	if (fd == -ENOENT)
		not_attached(c->pin_dir);
	if (fd < 0)
		ctl_die("failed", "%s/%s: %s%s", c->pin_dir, sluice_map_names[id], strerror(-fd),
			fd == -EPERM || fd == -EACCES ? " (run as root or with CAP_BPF)" : "");
	c->fd[id] = fd;
	return fd;
}

bool ctl_attached(struct ctl *c)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", c->pin_dir, SLUICE_MAP_CONFIG);
	return !stat(path, &st);
}

void ctl_close(struct ctl *c)
{
	int i;

	xdp_config_unmap(c->cfg);
	c->cfg = NULL;
	for (i = 0; i < SLUICE_M_COUNT; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		c->fd[i] = -1;
	}
}

struct sluice_config *ctl_config(struct ctl *c)
{
	if (c->cfg)
		return c->cfg;
	c->cfg = xdp_config_map(ctl_map(c, SLUICE_M_CONFIG));
	if (!c->cfg) {
		fprintf(stderr,
			"sluicectl: %s/%s: mmap: %s (pinned by an older sluice? "
			"sluicectl detach --unpin, then attach)\n",
			c->pin_dir, SLUICE_MAP_CONFIG, strerror(errno));
		exit(1);
	}
	return c->cfg;
}

int ctl_config_read(struct ctl *c, struct sluice_config *cfg)
{
	xdp_config_read(ctl_config(c), cfg);
	return 0;
}

int ctl_bump_generation(struct ctl *c)
{
	xdp_config_bump(ctl_config(c));
	return 0;
}

/* Read all n entries of an array map into vals (value_size each) with batch lookups. */
static int array_read_all(int fd, void *vals, size_t value_size, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(n, sizeof(*keys)), out_batch = 0, done = 0, count;
	bool first = true;
	int ret = 0;

	if (!keys)
		return -ENOMEM;
	while (done < n) {
		count = n - done;
		ret = bpf_map_lookup_batch(fd, first ? NULL : &out_batch, &out_batch, keys + done,
					   (char *)vals + (size_t)done * value_size, &count, &opts);
		first = false;
		done += count;
		if (ret) {
			ret = errno == ENOENT ? 0 : -errno;
			break;
		}
	}
	free(keys);
	return ret;
}

struct sluice_tenant_cfg *ctl_tenants_read(struct ctl *c)
{
	struct sluice_tenant_cfg *t = calloc(SLUICE_MAX_TENANTS, sizeof(*t));
	int ret;

	if (!t)
		return NULL;
	ret = array_read_all(ctl_map(c, SLUICE_M_TENANT_CFG), t, sizeof(*t), SLUICE_MAX_TENANTS);
	if (ret) {
		free(t);
		errno = -ret;
		return NULL;
	}
	return t;
}

int ctl_tenant_find(struct ctl *c, const char *name, struct sluice_tenant_cfg *cfg)
{
	struct sluice_tenant_cfg *t;
	int slot = -ENOENT, i;

	if (!strcmp(name, "none"))
		name = "(none)";
	else if (!strcmp(name, "anonymous"))
		name = "(anonymous)";
	t = ctl_tenants_read(c);
	if (!t)
		return -errno;
	for (i = 0; i < SLUICE_MAX_TENANTS; i++) {
		if (t[i].name[0] && !strncmp(t[i].name, name, SLUICE_NAME_LEN)) {
			slot = i;
			if (cfg)
				*cfg = t[i];
			break;
		}
	}
	free(t);
	return slot;
}

int ctl_tenant_need(struct ctl *c, const char *name, struct sluice_tenant_cfg *cfg)
{
	int slot = ctl_tenant_find(c, name, cfg);

	if (slot == -ENOENT)
		ctl_bad_arg("tenant %s: no such tenant (sluicectl tenant list shows them; "
			    "sluicectl tenant add %s creates it)",
			    name, name);
	if (slot < 0)
		ctl_die("failed", "read tenants: %s", strerror(-slot));
	return slot;
}

struct sluice_counters *ctl_counters_read(struct ctl *c)
{
	int ncpu = libbpf_num_possible_cpus(), ret, i, cpu, v;
	struct sluice_counters *per_cpu, *sum;

	if (ncpu < 1) {
		errno = -ncpu;
		return NULL;
	}
	per_cpu = calloc((size_t)SLUICE_MAX_TENANTS * ncpu, sizeof(*per_cpu));
	sum = calloc(SLUICE_MAX_TENANTS, sizeof(*sum));
	if (!per_cpu || !sum) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = array_read_all(ctl_map(c, SLUICE_M_COUNTERS), per_cpu, sizeof(*per_cpu) * ncpu,
			     SLUICE_MAX_TENANTS);
	if (ret)
		goto fail;
	for (i = 0; i < SLUICE_MAX_TENANTS; i++) {
		for (cpu = 0; cpu < ncpu; cpu++) {
			const struct sluice_counters *pc = &per_cpu[(size_t)i * ncpu + cpu];

			for (v = 0; v < SLUICE_V_MAX; v++) {
				sum[i].packets[v] += pc->packets[v];
				sum[i].bytes[v] += pc->bytes[v];
			}
			sum[i].syn_passed += pc->syn_passed;
		}
	}
	free(per_cpu);
	return sum;
fail:
	free(per_cpu);
	free(sum);
	errno = -ret;
	return NULL;
}

int ctl_counters_reset(struct ctl *c, __u32 slot)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sluice_counters *zero;
	int ret = 0;

	if (ncpu < 1)
		return ncpu;
	zero = calloc(ncpu, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(ctl_map(c, SLUICE_M_COUNTERS), &slot, zero, BPF_ANY))
		ret = -errno;
	free(zero);
	return ret;
}

long ctl_map_count(struct ctl *c, enum sluice_map_id id)
{
	int fd = ctl_map(c, id);
	__u8 key[64], next[64];
	long n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		n++;
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	return errno == ENOENT ? n : -errno;
}
