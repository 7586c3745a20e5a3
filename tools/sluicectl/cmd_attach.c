// SPDX-License-Identifier: MIT
/* cmd_attach.c -- sluicectl attach, detach and status
 *
 * attach loads the program through user/nic/bpf_loader.c with the pin dir, so maps pinned
 * there by an earlier attach (or by sluiced) are reused with their tenants, credits and
 * counters; it then writes the service ports and attaches. The attachment and the pins
 * outlive sluicectl. detach takes the program off an interface and keeps the pins unless
 * --unpin. status finds the interfaces (in the current network namespace) whose Sluice
 * program uses this pin dir's maps, by comparing map ids, so several Sluice instances
 * with different pin dirs never show up as each other.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cli.h"

#define MAX_PORTS 65536

/* "8080,8443,53/udp" -> mask per port; exits 2 naming a bad item. */
static void parse_ports(const char *s, __u32 *mask)
{
	char buf[1024], *save = NULL, *item;

	if (strlen(s) >= sizeof(buf))
		ctl_bad_arg("--ports: list too long (at most %zu characters)", sizeof(buf) - 1);
	snprintf(buf, sizeof(buf), "%s", s);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *proto = strchr(item, '/'), what[64];
		__u32 bit = SLUICE_PORT_TCP, port;

		if (proto) {
			*proto++ = 0;
			if (!strcmp(proto, "udp"))
				bit = SLUICE_PORT_UDP;
			else if (!strcmp(proto, "tcp+udp") || !strcmp(proto, "both"))
				bit = SLUICE_PORT_TCP | SLUICE_PORT_UDP;
			else if (strcmp(proto, "tcp"))
				ctl_bad_arg("--ports %s: protocol %s: expected tcp, udp or tcp+udp",
					    s, proto);
		}
		snprintf(what, sizeof(what), "--ports %s: port", s);
		port = (__u32)ctl_parse_uint(what, item, 1, 65535);
		mask[port] |= bit;
	}
}

/* Make the ports map equal mask; returns the number of ports set, or -errno. */
static int write_ports(int fd, const __u32 *mask)
{
	__u32 port, cur;
	int n = 0;

	for (port = 0; port < MAX_PORTS; port++) {
		if (bpf_map_lookup_elem(fd, &port, &cur))
			return -errno;
		if (cur != mask[port] && bpf_map_update_elem(fd, &port, &mask[port], BPF_ANY))
			return -errno;
		n += mask[port] != 0;
	}
	return n;
}

/* Service ports as a JSON array of "8080/tcp" strings. */
static json_t *ports_json(int fd)
{
	json_t *arr = json_array();
	__u32 port, mask;
	char buf[32];

	for (port = 1; port < MAX_PORTS; port++) {
		if (bpf_map_lookup_elem(fd, &port, &mask) || !mask)
			continue;
		snprintf(buf, sizeof(buf), "%u/%s", port,
			 mask == (SLUICE_PORT_TCP | SLUICE_PORT_UDP) ? "tcp+udp"
			 : mask & SLUICE_PORT_UDP		     ? "udp"
								     : "tcp");
		json_array_append_new(arr, json_string(buf));
	}
	return arr;
}

static __u32 prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static enum sluice_xdp_mode parse_mode(const char *s)
{
	if (!s || !strcmp(s, "auto"))
		return SLUICE_XDP_AUTO;
	if (!strcmp(s, "native"))
		return SLUICE_XDP_NATIVE;
	if (!strcmp(s, "generic"))
		return SLUICE_XDP_GENERIC;
	ctl_bad_arg("--mode %s: expected native, generic or auto", s);
}

static void print_ports_text(json_t *ports)
{
	size_t i;

	if (!json_array_size(ports)) {
		printf("none (every packet passes untouched; set some with --ports)");
		return;
	}
	for (i = 0; i < json_array_size(ports); i++)
		printf("%s%s", i ? "," : "", json_string_value(json_array_get(ports, i)));
}

static int run_attach(struct ctl *c, const struct ctl_args *a)
{
	const char *iface = ctl_opt_get(a, "iface"), *ports = ctl_opt_get(a, "ports"), *how = "";
	enum sluice_xdp_mode mode = parse_mode(ctl_opt_get(a, "mode")), used = mode;
	__u32 *mask = NULL;
	struct sluice_bpf *b;
	char err[4096];
	json_t *j, *pj;
	int ret = 1, n;

	if (!if_nametoindex(iface))
		ctl_bad_arg("--iface %s: no such interface in this network namespace "
			    "(ip link lists them)",
			    iface);
	if (ports) {
		mask = calloc(MAX_PORTS, sizeof(*mask));
		if (!mask)
			return ctl_fail("out of memory");
		parse_ports(ports, mask);
	}
	b = sluice_bpf_load(c->pin_dir, err, sizeof(err));
	if (!b) {
		free(mask);
		return ctl_fail("attach: %s", err);
	}
	if (mask) {
		n = write_ports(sluice_bpf_map_fd(b, SLUICE_M_PORTS), mask);
		if (n < 0) {
			ctl_fail("attach: write service ports: %s", strerror(-n));
			goto out;
		}
	}
	if (sluice_bpf_attach(b, iface, mode, &used, &how, err, sizeof(err))) {
		ctl_fail("attach: %s", err);
		goto out;
	}
	pj = ports_json(sluice_bpf_map_fd(b, SLUICE_M_PORTS));
	j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "iface", iface, "mode",
		      sluice_xdp_mode_name(used), "via", how, "prog_id",
		      (json_int_t)prog_id_of(sluice_bpf_prog_fd(b)), "pin_dir", c->pin_dir, "ports",
		      pj);
	if (c->json) {
		ctl_json_print(j);
	} else {
		printf("attached to %s (%s mode, via %s, program id %u), maps pinned under %s\n"
		       "service ports: ",
		       iface, sluice_xdp_mode_name(used), how, prog_id_of(sluice_bpf_prog_fd(b)),
		       c->pin_dir);
		print_ports_text(pj);
		printf("\n");
		json_decref(j);
	}
	ret = 0;
out:
	sluice_bpf_free(b);
	free(mask);
	return ret;
}

static int run_detach(struct ctl *c, const struct ctl_args *a)
{
	const char *iface = ctl_opt_get(a, "iface");
	bool unpin = ctl_opt_get(a, "unpin") != NULL;
	char err[512];
	int ret;

	if (!if_nametoindex(iface))
		ctl_bad_arg("--iface %s: no such interface in this network namespace "
			    "(ip link lists them)",
			    iface);
	ret = sluice_bpf_detach(iface, err, sizeof(err));
	if (ret && !(ret == -ENOENT && unpin))
		return ctl_fail("detach: %s", err);
	if (unpin) {
		int r = sluice_bpf_unpin(c->pin_dir);

		if (r)
			return ctl_fail("detach: remove pins under %s: %s", c->pin_dir,
					strerror(-r));
	}
	if (c->json)
		ctl_json_print(json_pack("{s:s, s:b, s:b, s:s}", "iface", iface, "detached",
					 ret == 0, "unpinned", unpin, "pin_dir", c->pin_dir));
	else
		printf("%s %s%s\n", ret ? "nothing attached to" : "detached from", iface,
		       unpin ? "; pins removed" : "; pins kept (counters and credits survive)");
	return 0;
}

/* Whether program id uses the map with id map_id. */
static bool prog_uses_map(__u32 prog_id, __u32 map_id)
{
	__u32 ids[64] = {0}, len, i;
	struct bpf_prog_info info;
	int fd = bpf_prog_get_fd_by_id(prog_id);
	bool found = false;

	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)ids;
	len = sizeof(info);
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		for (i = 0; i < info.nr_map_ids && i < 64; i++)
			found |= ids[i] == map_id;
	close(fd);
	return found;
}

static json_t *attachments_json(struct ctl *c)
{
	struct sluice_attachment at[64];
	struct bpf_map_info mi = {};
	__u32 len = sizeof(mi);
	json_t *arr = json_array();
	int n, i;

	if (bpf_obj_get_info_by_fd(ctl_map(c, SLUICE_M_CONFIG), &mi, &len))
		return arr;
	n = sluice_bpf_attachments(at, 64);
	for (i = 0; i < n; i++) {
		if (!prog_uses_map(at[i].prog_id, mi.id))
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:I}", "iface", at[i].ifname,
						     "ifindex", at[i].ifindex, "mode",
						     sluice_xdp_mode_name(at[i].mode), "prog_id",
						     (json_int_t)at[i].prog_id));
	}
	return arr;
}

static json_t *fill_json(struct ctl *c)
{
	struct sluice_tenant_cfg *t = ctl_tenants_read(c);
	long tenants = 0;
	int i;

	for (i = SLUICE_SLOT_FIRST; t && i < SLUICE_MAX_TENANTS; i++)
		tenants += t[i].name[0] != 0;
	free(t);
	return json_pack(
	    "{s:[I,i], s:[I,i], s:[I,i], s:[I,i], s:[I,i], s:[I,i]}", "tenants",
	    (json_int_t)tenants, SLUICE_MAX_TENANTS - SLUICE_SLOT_FIRST, "sources",
	    (json_int_t)ctl_map_count(c, SLUICE_M_SRC_EXACT), SLUICE_MAX_SOURCES, "prefixes",
	    (json_int_t)ctl_map_count(c, SLUICE_M_SRC_PREFIX), SLUICE_MAX_PREFIXES, "deny_exact",
	    (json_int_t)ctl_map_count(c, SLUICE_M_DENY_EXACT), SLUICE_MAX_DENY, "deny_prefix",
	    (json_int_t)ctl_map_count(c, SLUICE_M_DENY_PREFIX), SLUICE_MAX_DENY, "src_state",
	    (json_int_t)ctl_map_count(c, SLUICE_M_SRC_STATE), SLUICE_MAX_SRC_STATE);
}

static void print_status_text(json_t *j)
{
	json_t *at = json_object_get(j, "attached"), *fill = json_object_get(j, "fill"), *v;
	void *it;
	size_t i;

	printf("pin dir:     %s (ABI v%lld, generation %lld)\n",
	       json_string_value(json_object_get(j, "pin_dir")),
	       json_integer_value(json_object_get(j, "abi_version")),
	       json_integer_value(json_object_get(j, "generation")));
	if (!json_array_size(at))
		printf("attached:    nowhere in this network namespace (pins kept)\n");
	for (i = 0; i < json_array_size(at); i++) {
		v = json_array_get(at, i);
		printf("attached:    %s (%s mode, program id %lld)\n",
		       json_string_value(json_object_get(v, "iface")),
		       json_string_value(json_object_get(v, "mode")),
		       json_integer_value(json_object_get(v, "prog_id")));
	}
	printf("ports:       ");
	print_ports_text(json_object_get(j, "ports"));
	printf("\nshed:        %s (%s)%s\n", json_string_value(json_object_get(j, "shed_level")),
	       json_string_value(json_object_get(j, "shed_mode")),
	       json_is_true(json_object_get(j, "dry_run")) ? "; DRY RUN: nothing is dropped" : "");
	for (it = json_object_iter(fill); it; it = json_object_iter_next(fill, it)) {
		v = json_object_iter_value(it);
		printf("%-12s %lld / %lld\n", json_object_iter_key(it),
		       json_integer_value(json_array_get(v, 0)),
		       json_integer_value(json_array_get(v, 1)));
	}
}

static int run_status(struct ctl *c, const struct ctl_args *a)
{
	struct sluice_config cfg;
	json_t *j;
	int ret = ctl_config_read(c, &cfg);

	if (ret)
		return ctl_fail("status: read %s/%s: %s", c->pin_dir, SLUICE_MAP_CONFIG,
				strerror(-ret));
	j = json_pack("{s:s, s:o, s:i, s:i, s:o, s:s, s:s, s:b, s:o}", "pin_dir", c->pin_dir,
		      "attached", attachments_json(c), "abi_version", (int)cfg.abi_version,
		      "generation", (int)cfg.generation, "ports",
		      ports_json(ctl_map(c, SLUICE_M_PORTS)), "shed_level",
		      ctl_shed_name(sluice_config_level(&cfg)), "shed_mode",
		      cfg.shed_mode == SLUICE_SHED_MANUAL ? "manual" : "auto", "dry_run",
		      (cfg.flags & SLUICE_CFG_DRY_RUN) != 0, "fill", fill_json(c));
	if (c->json) {
		ctl_json_print(j);
	} else {
		print_status_text(j);
		json_decref(j);
	}
	return 0;
}

static const struct ctl_opt attach_opts[] = {
    {"iface", "IFACE", CTL_OPT_REQUIRED, "interface to attach to"},
    {"mode", "MODE", 0, "native, generic or auto (native, falling back to generic)"},
    {"ports", "LIST", 0,
     "service ports, e.g. 8080,8443,53/udp (TCP unless /udp or /tcp+udp); replaces the "
     "set, kept from the pins when omitted"},
    {NULL},
};

static const struct ctl_opt detach_opts[] = {
    {"iface", "IFACE", CTL_OPT_REQUIRED, "interface to detach from"},
    {"unpin", NULL, CTL_OPT_FLAG, "also remove the pinned maps (loses tenants and counters)"},
    {NULL},
};

const struct ctl_cmd ctl_attach_cmds[] = {
    {"attach", NULL, NULL, 0, 0, attach_opts,
     "load the program (reusing pinned maps) and attach it to an interface", run_attach},
    {"detach", NULL, NULL, 0, 0, detach_opts,
     "take the program off an interface; pins are kept unless --unpin", run_detach},
    {"status", NULL, NULL, 0, 0, NULL,
     "attached where, mode, program id, ABI version, ports, shed level, map fill levels",
     run_status},
    {NULL},
};
