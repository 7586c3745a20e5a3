/* SPDX-License-Identifier: MIT */
/* bpf_loader.h -- load, pin, attach and detach the XDP admission program
 *
 * The only user-space module that talks bpf(2) for loading; everything else reaches the
 * maps through the fds (or the mmapped tenant state) it hands out, or through the pins.
 */
#ifndef SLUICE_BPF_LOADER_H
#define SLUICE_BPF_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "sluice/abi.h"

#define SLUICE_PIN_DIR_DEFAULT "/sys/fs/bpf/sluice"

enum sluice_map_id {
	SLUICE_M_CONFIG,
	SLUICE_M_PORTS,
	SLUICE_M_TENANT_CFG,
	SLUICE_M_TENANT_STATE,
	SLUICE_M_SRC_EXACT,
	SLUICE_M_SRC_PREFIX,
	SLUICE_M_DENY_EXACT,
	SLUICE_M_DENY_PREFIX,
	SLUICE_M_SRC_STATE,
	SLUICE_M_COUNTERS,
	SLUICE_M_TENANT_SHARE,
	SLUICE_M_COUNT,
};

enum sluice_xdp_mode {
	SLUICE_XDP_AUTO, /* native, falling back to generic */
	SLUICE_XDP_NATIVE,
	SLUICE_XDP_GENERIC,
};

/* Pin file name (under the pin dir) of each map, indexed by enum sluice_map_id. */
extern const char *const sluice_map_names[SLUICE_M_COUNT];

struct sluice_bpf;

/* Open and load the admission program. With pin_dir non-NULL, maps already pinned there are
 * reused (their ABI version must match this build) and new ones are pinned, so state
 * survives reloads; with NULL the maps are private (tests). Returns NULL with errno set and
 * a message naming the cause in err (verifier log tail on a load failure). Caller frees
 * with sluice_bpf_free(), which leaves pins and attachments in place. */
struct sluice_bpf *sluice_bpf_load(const char *pin_dir, char *err, size_t errlen);
void sluice_bpf_free(struct sluice_bpf *b);

int sluice_bpf_map_fd(const struct sluice_bpf *b, enum sluice_map_id id);
int sluice_bpf_prog_fd(const struct sluice_bpf *b);

/* Attach to ifname in mode (libxdp first, plain netlink attach if libxdp refuses; native
 * first in AUTO). Replaces a Sluice program already attached there. The attachment
 * outlives the process. On success *mode_used says the mode and *how names the path taken
 * ("libxdp" or "netlink"); returns -errno and fills err on failure. */
int sluice_bpf_attach(struct sluice_bpf *b, const char *ifname, enum sluice_xdp_mode mode,
		      enum sluice_xdp_mode *mode_used, const char **how, char *err, size_t errlen);

/* Detach whatever Sluice program is attached to ifname. Returns 0, -ENOENT when none is
 * attached (err says so), or -errno. Refuses (-EBUSY) to detach a foreign program. */
int sluice_bpf_detach(const char *ifname, char *err, size_t errlen);

/* Where a Sluice program is attached: fills up to max entries, returns the count. */
struct sluice_attachment {
	char ifname[32];
	int ifindex;
	__u32 prog_id;
	enum sluice_xdp_mode mode;
};
int sluice_bpf_attachments(struct sluice_attachment *out, int max);

/* Remove every pin under pin_dir and the directory itself. */
int sluice_bpf_unpin(const char *pin_dir);

/* Open the pinned map `id` under pin_dir; -errno (-ENOENT: not attached) on failure. */
int sluice_bpf_open_pinned(const char *pin_dir, enum sluice_map_id id);

/* mmap the tenant state array of map fd (BPF_F_MMAPABLE) read-write; NULL + errno. Unmap
 * with sluice_bpf_unmap_state(). */
struct sluice_tenant_state *sluice_bpf_map_state(int fd);
void sluice_bpf_unmap_state(struct sluice_tenant_state *st);
/* The same for the node's tenant shares (SLUICE_M_TENANT_SHARE, abi.h). */
struct sluice_tenant_share *sluice_bpf_map_share(int fd);
void sluice_bpf_unmap_share(struct sluice_tenant_share *sh);

/* Slot's per-CPU counters (map fd: SLUICE_M_COUNTERS) summed over every possible CPU into
 * *out. 0 or -errno (*out zeroed then). */
int sluice_bpf_counters_sum(int fd, __u32 slot, struct sluice_counters *out);

/* Whether the running kernel lets us use BPF at all (root/CAP_BPF, bpffs: mounted at
 * /sys/fs/bpf when missing, as bpftool does, with a warning); when not, *why says why in
 * one line. Loading with a pin dir under /sys/fs/bpf mounts it the same way. */
bool sluice_bpf_available(const char **why);

/* Whether the running kernel has every BPF feature the program uses (bpf_probe.c). 0, or
 * -EOPNOTSUPP with err naming the first one missing and the Linux release that added it
 * (-EPERM/-EACCES: no permission to ask; other -errno: the probe itself failed). */
int sluice_bpf_probe(char *err, size_t errlen);

/* Run the program once on pkt with BPF_PROG_TEST_RUN (repeat times); returns the XDP
 * action or -errno; *duration_ns gets the mean ns per run when non-NULL. */
int sluice_bpf_test_run(const struct sluice_bpf *b, const void *pkt, size_t len, int repeat,
			__u32 *duration_ns);

const char *sluice_xdp_mode_name(enum sluice_xdp_mode mode);

#endif /* SLUICE_BPF_LOADER_H */
