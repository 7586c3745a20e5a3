// SPDX-License-Identifier: MIT
/* bpf_loader.c -- load, pin, attach and detach the XDP admission program
 *
 * The only file that includes a skeleton. Load order: probe the kernel for the features the
 * program uses (bpf_probe.c: an old kernel is told by name what it lacks, not handed a
 * verifier log), check the pin directory (on bpffs, pinned config written by this ABI
 * version), point every map at its pin path so libbpf reuses what is there and pins what is
 * new, load (capturing libbpf's log so a verifier rejection can be reported), then seed
 * defaults into maps that are still blank. Attach goes through libxdp first (it uses its
 * multi-program dispatcher where the kernel allows freplace, else attaches the program
 * alone), and through a plain netlink attach when libxdp refuses; native mode first,
 * generic when the driver has no native XDP. Every step logs which path it took; every
 * error names the interface or path and the reason.
 *
 * Least privilege: with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON but not CAP_SYS_ADMIN (a
 * container that is not privileged, a systemd unit with ambient capabilities) two things
 * differ. libxdp 1.3's dispatcher path looks programs up by id, which needs CAP_SYS_ADMIN,
 * and crashes when refused: it is skipped, netlink attaches. Looking up the attached
 * program by id (to replace our own atomically on restart) is refused too: the program is
 * pinned beside the maps (SLUICE_PROG_PIN) and recognised by the pin's id instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <xdp/libxdp.h>

#include "admission.skel.h"
#include "nic/bpf_loader.h"
#include "lib/log.h"

#define BPF_FS_MAGIC_	 0xcafe4a11
#define PROG_NAME_PREFIX "sluice_admiss" /* kernel keeps 15 chars of "sluice_admission" */
#define SLUICE_PROG_PIN	 "sl_prog"	 /* the attached program, pinned beside the maps */

const char *const sluice_map_names[SLUICE_M_COUNT] = {
    [SLUICE_M_CONFIG] = SLUICE_MAP_CONFIG,
    [SLUICE_M_PORTS] = SLUICE_MAP_PORTS,
    [SLUICE_M_TENANT_CFG] = SLUICE_MAP_TENANT_CFG,
    [SLUICE_M_TENANT_STATE] = SLUICE_MAP_TENANT_STATE,
    [SLUICE_M_SRC_EXACT] = SLUICE_MAP_SRC_EXACT,
    [SLUICE_M_SRC_PREFIX] = SLUICE_MAP_SRC_PREFIX,
    [SLUICE_M_DENY_EXACT] = SLUICE_MAP_DENY_EXACT,
    [SLUICE_M_DENY_PREFIX] = SLUICE_MAP_DENY_PREFIX,
    [SLUICE_M_SRC_STATE] = SLUICE_MAP_SRC_STATE,
    [SLUICE_M_COUNTERS] = SLUICE_MAP_COUNTERS,
    [SLUICE_M_TENANT_SHARE] = SLUICE_MAP_TENANT_SHARE,
};

struct sluice_bpf {
	struct admission_bpf *skel;
	struct bpf_map *maps[SLUICE_M_COUNT];
	char pin_dir[256]; /* "" without pins */
};

/* libbpf/libxdp log capture: the tail of what they said, for error messages. */
static char log_tail[4096];
static size_t log_len;

static void log_capture(const char *fmt, va_list ap)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (log_len + n >= sizeof(log_tail)) {
		size_t drop = log_len + n - sizeof(log_tail) + 1;

		if (drop > log_len)
			drop = log_len;
		memmove(log_tail, log_tail + drop, log_len - drop);
		log_len -= drop;
	}
	memcpy(log_tail + log_len, line, n);
	log_len += n;
	log_tail[log_len] = 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	va_list copy;

	va_copy(copy, ap);
	log_capture(fmt, copy);
	va_end(copy);
	if (level == LIBBPF_WARN && log_enabled(LOG_DEBUG))
		log_vprintf_raw(fmt, ap);
	return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	log_capture(fmt, ap);
	return 0;
}

static void capture_logs(void)
{
	log_len = 0;
	log_tail[0] = 0;
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}

/* The last few lines of the captured log (the verifier's verdict is at the end). */
static const char *log_last_lines(int lines)
{
	const char *p = log_tail + log_len;

	while (p > log_tail && lines > 0) {
		p--;
		if (*p == '\n' && p != log_tail + log_len - 1)
			lines--;
	}
	return *p == '\n' ? p + 1 : p;
}

static bool on_bpffs(const char *path)
{
	struct statfs fs;

	return !statfs(path, &fs) && (unsigned long)fs.f_type == BPF_FS_MAGIC_;
}

/* A freshly booted machine may have no BPF filesystem at /sys/fs/bpf (systemd mounts one,
 * a minimal init or container may not). Like bpftool, mount it when it is missing and say
 * so, instead of failing to pin. 0, or -errno (no CAP_SYS_ADMIN, no bpffs in the kernel). */
static int ensure_bpffs(void)
{
	static const char root[] = "/sys/fs/bpf";

	if (on_bpffs(root))
		return 0;
	if (mount("bpf", root, "bpf", 0, "mode=0700"))
		return -errno;
	log_warn("bpf: no BPF filesystem was mounted; mounted one", "path=%s", root);
	return 0;
}

static int check_pin_dir(const char *dir, char *err, size_t errlen)
{
	struct statfs fs;
	int ret;

	if (!strncmp(dir, "/sys/fs/bpf/", 12) && (ret = ensure_bpffs())) {
		snprintf(err, errlen,
			 "pin dir %s: /sys/fs/bpf is not a BPF filesystem and mounting one failed: "
			 "%s (mount one: mount -t bpf bpf /sys/fs/bpf)",
			 dir, strerror(-ret));
		return ret;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		int e = errno;

		snprintf(err, errlen, "pin dir %s: %s", dir, strerror(e));
		return -e;
	}
	if (statfs(dir, &fs)) {
		int e = errno;

		snprintf(err, errlen, "pin dir %s: %s", dir, strerror(e));
		return -e;
	}
	if ((unsigned long)fs.f_type != BPF_FS_MAGIC_) {
		snprintf(
		    err, errlen,
		    "pin dir %s: not on a BPF filesystem (mount one: mount -t bpf bpf /sys/fs/bpf)",
		    dir);
		return -EINVAL;
	}
	return 0;
}

/* The ABI version recorded in a pinned config map: 0 when absent or never written. */
static int pinned_abi_version(const char *dir, __u32 *version)
{
	struct sluice_config cfg;
	__u32 zero = 0;
	int fd = sluice_bpf_open_pinned(dir, SLUICE_M_CONFIG), ret = 0;

	*version = 0;
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		ret = -errno;
	else
		*version = cfg.abi_version;
	close(fd);
	return ret;
}

static void seed_slot(int fd, __u32 slot, const char *name, __u32 class, __u64 syn_rate,
		      __u64 pkt_rate)
{
	struct sluice_tenant_cfg tc;

	if (bpf_map_lookup_elem(fd, &slot, &tc) || tc.name[0])
		return; /* kept from a previous load: an operator may have tuned it */
	memset(&tc, 0, sizeof(tc));
	snprintf(tc.name, sizeof(tc.name), "%s", name);
	tc.class = class;
	if (syn_rate) {
		tc.limit[SLUICE_LIMIT_SYN].interval_ns = 1000000000ULL / syn_rate;
		tc.limit[SLUICE_LIMIT_SYN].burst = syn_rate * 2;
	}
	if (pkt_rate) {
		tc.limit[SLUICE_LIMIT_PKT].interval_ns = 1000000000ULL / pkt_rate;
		tc.limit[SLUICE_LIMIT_PKT].burst = pkt_rate * 2;
	}
	bpf_map_update_elem(fd, &slot, &tc, BPF_ANY);
}

/* First load on blank maps: ABI version, default shedding, the two reserved slots. */
static int seed_defaults(struct sluice_bpf *b)
{
	int cfd = bpf_map__fd(b->maps[SLUICE_M_CONFIG]);
	struct sluice_config cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(cfd, &zero, &cfg))
		return -errno;
	if (cfg.abi_version != SLUICE_ABI_VERSION) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.abi_version = SLUICE_ABI_VERSION;
		cfg.shed_mode = SLUICE_SHED_AUTO;
		cfg.permille[SLUICE_CLASS_LOW] = 500;
		cfg.auto_permille[SLUICE_CLASS_LOW] = 500;
		cfg.revalidate_ns = 1000000000ULL;
		cfg.generation = 1;
		if (bpf_map_update_elem(cfd, &zero, &cfg, BPF_ANY))
			return -errno;
	}
	seed_slot(bpf_map__fd(b->maps[SLUICE_M_TENANT_CFG]), SLUICE_SLOT_NONE, "(none)",
		  SLUICE_CLASS_NORMAL, 0, 0);
	seed_slot(bpf_map__fd(b->maps[SLUICE_M_TENANT_CFG]), SLUICE_SLOT_ANON, "(anonymous)",
		  SLUICE_CLASS_LOW, 100, 10000);
	return 0;
}

struct sluice_bpf *sluice_bpf_load(const char *pin_dir, char *err, size_t errlen)
{
	struct sluice_bpf *b = calloc(1, sizeof(*b));
	char path[512];
	__u32 pinned = 0;
	int ret = 0, i;

	if (!b) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	capture_logs();
	ret = sluice_bpf_probe(err, errlen); /* a missing feature by name, not a verifier log */
	if (ret)
		goto fail;
	if (pin_dir) {
		snprintf(b->pin_dir, sizeof(b->pin_dir), "%s", pin_dir);
		ret = check_pin_dir(pin_dir, err, errlen);
		if (ret)
			goto fail;
		ret = pinned_abi_version(pin_dir, &pinned);
		if (ret) {
			snprintf(err, errlen, "%s/%s: %s", pin_dir, SLUICE_MAP_CONFIG,
				 strerror(-ret));
			goto fail;
		}
		if (pinned && pinned != SLUICE_ABI_VERSION) {
			snprintf(err, errlen,
				 "maps pinned under %s are ABI v%u, this build is v%u; detach and "
				 "remove them first (sluicectl detach --unpin)",
				 pin_dir, pinned, SLUICE_ABI_VERSION);
			ret = -EPROTO;
			goto fail;
		}
	}
	b->skel = admission_bpf__open();
	if (!b->skel) {
		ret = -errno;
		snprintf(err, errlen, "open BPF object: %s", strerror(errno));
		goto fail;
	}
	b->skel->rodata->sluice_abi_version = SLUICE_ABI_VERSION;
	/* seeds the first-level source cache's index hash (bpf/src_cache.bpf.h); without
	 * entropy the cache still works, its slots are only predictable */
	if (getrandom((void *)&b->skel->rodata->src_cache_seed,
		      sizeof(b->skel->rodata->src_cache_seed), GRND_NONBLOCK) < 0)
		log_info("bpf: no entropy for the source cache seed", "err=\"%s\"",
			 strerror(errno));
	for (i = 0; i < SLUICE_M_COUNT; i++) {
		b->maps[i] = bpf_object__find_map_by_name(b->skel->obj, sluice_map_names[i]);
		if (!b->maps[i]) {
			ret = -ENOENT;
			snprintf(err, errlen, "BPF object has no map %s", sluice_map_names[i]);
			goto fail;
		}
		if (pin_dir) {
			snprintf(path, sizeof(path), "%s/%s", pin_dir, sluice_map_names[i]);
			bpf_map__set_pin_path(b->maps[i], path);
		}
	}
	ret = admission_bpf__load(b->skel);
	if (ret) {
		if (ret == -EPERM || ret == -EACCES)
			snprintf(err, errlen,
				 "load XDP program: no BPF permission (run as root, or grant "
				 "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)");
		else
			snprintf(err, errlen, "load XDP program: %s; libbpf said:\n%s",
				 strerror(-ret), log_last_lines(12));
		goto fail;
	}
	ret = seed_defaults(b);
	if (ret) {
		snprintf(err, errlen, "write default config: %s", strerror(-ret));
		goto fail;
	}
	log_debug("bpf: loaded", "pin_dir=%s reused_pins=%s", pin_dir ? pin_dir : "(none)",
		  pinned ? "yes" : "no");
	return b;
fail:
	sluice_bpf_free(b);
	errno = -ret;
	return NULL;
}

void sluice_bpf_free(struct sluice_bpf *b)
{
	if (!b)
		return;
	admission_bpf__destroy(b->skel);
	free(b);
}

int sluice_bpf_map_fd(const struct sluice_bpf *b, enum sluice_map_id id)
{
	return id < SLUICE_M_COUNT ? bpf_map__fd(b->maps[id]) : -EINVAL;
}

int sluice_bpf_prog_fd(const struct sluice_bpf *b)
{
	return bpf_program__fd(b->skel->progs.sluice_admission);
}

const char *sluice_xdp_mode_name(enum sluice_xdp_mode mode)
{
	return mode == SLUICE_XDP_NATIVE    ? "native"
	       : mode == SLUICE_XDP_GENERIC ? "generic"
					    : "auto";
}

static bool prog_is_sluice(__u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);
	bool ours;

	if (fd < 0)
		return false;
	ours = !bpf_obj_get_info_by_fd(fd, &info, &len) &&
	       !strncmp(info.name, PROG_NAME_PREFIX, strlen(PROG_NAME_PREFIX));
	close(fd);
	return ours;
}

static bool have_sys_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {};

	if (syscall(SYS_capget, &h, d))
		return false;
	return d[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32));
}

/* An fd of the attached program id when it is ours, else -1: by id and name with
 * CAP_SYS_ADMIN, else through the program pinned beside the maps. */
static int own_prog_fd(const struct sluice_bpf *b, __u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	char path[512];
	int fd;

	if (prog_is_sluice(id))
		return bpf_prog_get_fd_by_id(id);
	if (!*b->pin_dir)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", b->pin_dir, SLUICE_PROG_PIN);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.id != id) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Pin the program now attached, replacing the pin of the one before. */
static void pin_attached(const struct sluice_bpf *b)
{
	char path[512];

	if (!*b->pin_dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", b->pin_dir, SLUICE_PROG_PIN);
	if ((unlink(path) && errno != ENOENT) || bpf_obj_pin(sluice_bpf_prog_fd(b), path))
		log_warn("bpf: cannot pin the attached program; a restart without CAP_SYS_ADMIN "
			 "will not recognise it",
			 "path=%s err=\"%s\"", path, strerror(errno));
}

static int attach_one(struct sluice_bpf *b, int ifindex, enum sluice_xdp_mode mode,
		      const char **how)
{
	__u32 flags = mode == SLUICE_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct xdp_program *xp;
	int fd = sluice_bpf_prog_fd(b), ret, old_fd = -1;

	/* Nothing of ours attached yet: libxdp, which knows the multi-program dispatcher. */
	if (!bpf_xdp_query(ifindex, 0, &q) && !q.prog_id && have_sys_admin()) {
		xp = xdp_program__from_fd(fd);
		if (xp && !libxdp_get_error(xp)) {
			ret = xdp_program__attach(
			    xp, ifindex, mode == SLUICE_XDP_NATIVE ? XDP_MODE_NATIVE : XDP_MODE_SKB,
			    0);
			xdp_program__close(xp);
			if (!ret) {
				*how = "libxdp";
				return 0;
			}
			log_info("bpf: libxdp attach refused, falling back to netlink attach",
				 "ifindex=%d mode=%s err=\"%s\"", ifindex,
				 sluice_xdp_mode_name(mode), strerror(-ret));
		}
	}
	/* Netlink; swap atomically when our own program is there already. */
	if (q.prog_id) {
		old_fd = own_prog_fd(b, q.prog_id);
		if (old_fd < 0)
			return -EBUSY;
		opts.old_prog_fd = old_fd;
		flags |= XDP_FLAGS_REPLACE;
	}
	ret = bpf_xdp_attach(ifindex, fd, flags, &opts);
	if (ret && old_fd >= 0) {
		/* the old one sits in the other mode: take it off, then attach */
		bpf_xdp_detach(ifindex,
			       q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE
								 : XDP_FLAGS_DRV_MODE,
			       NULL);
		ret = bpf_xdp_attach(ifindex, fd, flags & ~XDP_FLAGS_REPLACE, NULL);
	}
	if (old_fd >= 0)
		close(old_fd);
	*how = "netlink";
	return ret;
}

int sluice_bpf_attach(struct sluice_bpf *b, const char *ifname, enum sluice_xdp_mode mode,
		      enum sluice_xdp_mode *mode_used, const char **how, char *err, size_t errlen)
{
	enum sluice_xdp_mode order[2] = {SLUICE_XDP_NATIVE, SLUICE_XDP_GENERIC};
	int ifindex = if_nametoindex(ifname), n = 2, i, ret = -EINVAL;

	if (!ifindex) {
		snprintf(err, errlen, "interface %s: no such interface", ifname);
		return -ENODEV;
	}
	if (mode != SLUICE_XDP_AUTO) {
		order[0] = mode;
		n = 1;
	}
	capture_logs();
	for (i = 0; i < n; i++) {
		ret = attach_one(b, ifindex, order[i], how);
		if (!ret) {
			pin_attached(b);
			*mode_used = order[i];
			log_info("bpf: attached", "iface=%s mode=%s via=%s", ifname,
				 sluice_xdp_mode_name(order[i]), *how);
			return 0;
		}
		if (ret == -EBUSY)
			break;
		if (i + 1 < n)
			log_info("bpf: native XDP unavailable, trying generic",
				 "iface=%s err=\"%s\"", ifname, strerror(-ret));
	}
	if (ret == -EBUSY)
		snprintf(err, errlen,
			 "interface %s: another XDP program is attached; detach it first", ifname);
	else if (ret == -EPERM || ret == -EACCES)
		snprintf(err, errlen,
			 "interface %s: no permission to attach XDP (need CAP_NET_ADMIN)", ifname);
	else
		snprintf(err, errlen, "interface %s: attach %s XDP: %s", ifname,
			 sluice_xdp_mode_name(order[n - 1]), strerror(-ret));
	return ret;
}

int sluice_bpf_detach(const char *ifname, char *err, size_t errlen)
{
	int ifindex = if_nametoindex(ifname);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct xdp_multiprog *mp;
	struct xdp_program *p;
	int ret;

	if (!ifindex) {
		snprintf(err, errlen, "interface %s: no such interface", ifname);
		return -ENODEV;
	}
	capture_logs();
	ret = bpf_xdp_query(ifindex, 0, &q);
	if (ret) {
		snprintf(err, errlen, "interface %s: query XDP: %s", ifname, strerror(-ret));
		return ret;
	}
	if (!q.prog_id) {
		snprintf(err, errlen, "interface %s: no XDP program attached", ifname);
		return -ENOENT;
	}
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (mp && !libxdp_get_error(mp) && !xdp_multiprog__is_legacy(mp)) {
		/* behind libxdp's dispatcher: take only our program out */
		for (p = xdp_multiprog__next_prog(NULL, mp); p;
		     p = xdp_multiprog__next_prog(p, mp)) {
			if (strncmp(xdp_program__name(p), PROG_NAME_PREFIX,
				    strlen(PROG_NAME_PREFIX)))
				continue;
			ret = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
			xdp_multiprog__close(mp);
			if (ret)
				snprintf(err, errlen, "interface %s: libxdp detach: %s", ifname,
					 strerror(-ret));
			return ret;
		}
		xdp_multiprog__close(mp);
		snprintf(err, errlen, "interface %s: no Sluice program behind the XDP dispatcher",
			 ifname);
		return -ENOENT;
	}
	if (mp && !libxdp_get_error(mp))
		xdp_multiprog__close(mp);
	if (!prog_is_sluice(q.prog_id)) {
		snprintf(err, errlen,
			 "interface %s: the XDP program attached (id %u) is not Sluice's", ifname,
			 q.prog_id);
		return -EBUSY;
	}
	ret = bpf_xdp_detach(
	    ifindex, q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
	    NULL);
	if (ret)
		snprintf(err, errlen, "interface %s: detach: %s", ifname, strerror(-ret));
	else
		log_info("bpf: detached", "iface=%s prog_id=%u", ifname, q.prog_id);
	return ret;
}

int sluice_bpf_attachments(struct sluice_attachment *out, int max)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	int n = 0;

	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index && n < max; i++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		__u32 id;

		if (bpf_xdp_query(i->if_index, 0, &q))
			continue;
		id = q.prog_id;
		if (!id)
			continue;
		if (!prog_is_sluice(id)) {
			/* behind a dispatcher, libxdp knows the component */
			struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(i->if_index);
			struct xdp_program *p = NULL;
			bool found = false;

			if (mp && !libxdp_get_error(mp)) {
				while ((p = xdp_multiprog__next_prog(p, mp)))
					if (!strncmp(xdp_program__name(p), PROG_NAME_PREFIX,
						     strlen(PROG_NAME_PREFIX))) {
						id = xdp_program__id(p);
						found = true;
					}
				xdp_multiprog__close(mp);
			}
			if (!found)
				continue;
		}
		snprintf(out[n].ifname, sizeof(out[n].ifname), "%s", i->if_name);
		out[n].ifindex = i->if_index;
		out[n].prog_id = id;
		out[n].mode =
		    q.attach_mode == XDP_ATTACHED_SKB ? SLUICE_XDP_GENERIC : SLUICE_XDP_NATIVE;
		n++;
	}
	if_freenameindex(ifs);
	return n;
}

int sluice_bpf_unpin(const char *pin_dir)
{
	char path[512];
	int i, ret = 0;

	for (i = 0; i <= SLUICE_M_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir,
			 i < SLUICE_M_COUNT ? sluice_map_names[i] : SLUICE_PROG_PIN);
		if (unlink(path) && errno != ENOENT)
			ret = -errno;
	}
	if (rmdir(pin_dir) && errno != ENOENT && !ret)
		ret = -errno;
	return ret;
}

int sluice_bpf_open_pinned(const char *pin_dir, enum sluice_map_id id)
{
	char path[512];
	int fd;

	if (id >= SLUICE_M_COUNT)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, sluice_map_names[id]);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int sluice_bpf_counters_sum(int fd, __u32 slot, struct sluice_counters *out)
{
	int ncpu = libbpf_num_possible_cpus(), ret = 0;
	struct sluice_counters *per;

	memset(out, 0, sizeof(*out));
	if (ncpu < 0)
		return ncpu;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &slot, per)) {
		ret = -errno;
		goto out;
	}
	for (int cpu = 0; cpu < ncpu; cpu++) {
		for (int v = 0; v < SLUICE_V_MAX; v++) {
			out->packets[v] += per[cpu].packets[v];
			out->bytes[v] += per[cpu].bytes[v];
		}
		out->syn_passed += per[cpu].syn_passed;
	}
out:
	free(per);
	return ret;
}

struct sluice_tenant_state *sluice_bpf_map_state(int fd)
{
	void *p = mmap(NULL, sizeof(struct sluice_tenant_state) * SLUICE_MAX_TENANTS,
		       PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void sluice_bpf_unmap_state(struct sluice_tenant_state *st)
{
	if (st)
		munmap(st, sizeof(struct sluice_tenant_state) * SLUICE_MAX_TENANTS);
}

struct sluice_tenant_share *sluice_bpf_map_share(int fd)
{
	void *p = mmap(NULL, sizeof(struct sluice_tenant_share) * SLUICE_MAX_TENANTS,
		       PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void sluice_bpf_unmap_share(struct sluice_tenant_share *sh)
{
	if (sh)
		munmap(sh, sizeof(struct sluice_tenant_share) * SLUICE_MAX_TENANTS);
}

bool sluice_bpf_available(const char **why)
{
	int fd;

	if (ensure_bpffs()) {
		*why = "no BPF filesystem at /sys/fs/bpf and mounting one failed";
		return false;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_probe", 4, 4, 1, NULL);
	if (fd < 0) {
		*why = errno == EPERM ? "no BPF permission (need root or CAP_BPF)"
				      : "the kernel refused to create a BPF map";
		return false;
	}
	close(fd);
	return true;
}

int sluice_bpf_test_run(const struct sluice_bpf *b, const void *pkt, size_t len, int repeat,
			__u32 *duration_ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (__u32)len,
		    .repeat = repeat > 0 ? repeat : 1);
	int ret = bpf_prog_test_run_opts(sluice_bpf_prog_fd(b), &opts);

	if (ret)
		return ret < 0 ? ret : -errno;
	if (duration_ns)
		*duration_ns = opts.duration;
	return (int)opts.retval;
}
