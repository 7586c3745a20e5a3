// SPDX-License-Identifier: MIT
/* test_xdp_config_race.c -- the pinned config map's four writers at once lose nothing
 *
 * issue 12: the config entry was read-modify-written whole by the daemon's deny list, its
 * tenants reload, its overload controller and sluicectl, so a generation bump (a cached
 * source resolution then ignored a new deny entry) or an operator's manual shed level could
 * be lost. Here all four hammer it together on real pinned maps: the deny list and the
 * tenants reload through their own entry points (admission_deny, tenants_apply_bpf), the
 * controller through the store it makes (xdp_config_publish_auto), the operator as real
 * sluicectl processes (deny add, shed set, dry-run, clock). Afterwards the generation has
 * moved by exactly the number of bumps, and each writer's last write is what the map holds.
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "admit/admission.h"
#include "admit/tenants.h"
#include "lib/clock.h"
#include "netns.h"
#include "nic/bpf_loader.h"
#include "nic/xdp_config.h"
#include "test_progs.h"

struct race {
	int fds[SLUICE_M_COUNT];
	struct admission *adm;
	struct tenants *tenants;
	struct sluice_config *cfg;
	const char *ctl, *pin_dir;
	int stop;			 /* atomic: the operator is done */
	long denies, reloads, publishes; /* each writer's count of writes */
	long ctl_bumps, ctl_failures;
	__u32 last_auto_level, last_auto_permille[SLUICE_CLASS_MAX];
	char err[256];
};

/* Denies of distinct addresses at most (the deny map holds 65536 with sluicectl's). */
#define MAX_DENIES 30000

static bool stopped(struct race *r)
{
	return __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
}

/* Writers take a breath every batch writes, so the operator's processes get the CPUs too
 * (two on the build machine) and the writers overlap for the operator's whole run. */
static void pace(long n, long batch)
{
	if (n % batch == batch - 1)
		usleep(1000);
}

/* The daemon's deny list: every deny bumps the generation. */
static void *deny_writer(void *arg)
{
	struct race *r = arg;
	uint64_t now = clock_mono_ns();

	while (!stopped(r) && r->denies < MAX_DENIES) {
		struct sluice_addr a = {.a = {[10] = 0xff, [11] = 0xff, [12] = 10, [13] = 77}};

		a.a[14] = (uint8_t)(r->denies >> 8);
		a.a[15] = (uint8_t)r->denies;
		if (admission_deny(r->adm, &a, now, 60))
			break;
		pace(r->denies++, 2);
	}
	return NULL;
}

/* The daemon's tenants reload (SIGHUP): tenants written, then the generation bumped. */
static void *tenants_writer(void *arg)
{
	struct race *r = arg;
	char err[256];

	while (!stopped(r)) {
		if (tenants_apply_bpf(r->tenants, r->tenants, r->fds, err, sizeof(err))) {
			snprintf(r->err, sizeof(r->err), "%s", err);
			break;
		}
		pace(r->reloads++, 2);
	}
	return NULL;
}

/* The overload controller: its level and shares, as it publishes them on every change. */
static void *controller_writer(void *arg)
{
	struct race *r = arg;

	while (!stopped(r)) {
		__u32 pm[SLUICE_CLASS_MAX] = {0, (__u32)(r->publishes % 1000),
					      (__u32)(r->publishes * 7 % 1000)};

		r->last_auto_level = (__u32)(r->publishes % 3);
		memcpy(r->last_auto_permille, pm, sizeof(pm));
		xdp_config_publish_auto(r->cfg, r->last_auto_level, pm);
		pace(r->publishes++, 50);
	}
	return NULL;
}

static int ctl(struct race *r, const char *args)
{
	char out[2048];
	int ret = netns_run(NULL, out, sizeof(out), "%s --pin-dir %s %s", r->ctl, r->pin_dir, args);

	if (ret) {
		printf("sluicectl %s: %d: %s\n", args, ret, out);
		r->ctl_failures++;
	}
	return ret;
}

/* The operator: 20 rounds of sluicectl, each bumping the generation once (deny add) and
 * changing the shed level, the flags and the shares; the last round's values must stay. */
static void operator_rounds(struct race *r)
{
	char args[128];

	for (int i = 0; i < 20; i++) {
		snprintf(args, sizeof(args), "deny add 10.88.%d.%d --ttl 60s", i / 200, i % 200);
		r->ctl_bumps += !ctl(r, args);
		ctl(r, i % 2 ? "shed set emergency --permille low=900" : "shed set auto");
		ctl(r, i % 2 ? "dry-run on" : "dry-run off");
		ctl(r, i % 2 ? "clock exact" : "clock tick");
	}
	ctl(r, "shed set thin --permille normal=333");
	ctl(r, "dry-run on");
	ctl(r, "clock exact");
}

void test_xdp_config_race(void)
{
	struct admission_opts ao = {0};
	struct race r = {0};
	struct sluice_bpf *b = NULL;
	struct sluice_config before, after;
	pthread_t th[3];
	int started = 0;
	char pin_dir[128], ctlpath[512], path[512], err[256];
	FILE *f;

	if (!test__require_root())
		return;
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sluice-test-%d-cfgrace", (int)getpid());
	snprintf(ctlpath, sizeof(ctlpath), "%s/sluicectl", test__outdir());
	r.pin_dir = pin_dir;
	r.ctl = ctlpath;
	b = sluice_bpf_load(pin_dir, err, sizeof(err));
	if (!ASSERT_OK_PTR(b, err))
		return;
	for (int i = 0; i < SLUICE_M_COUNT; i++)
		r.fds[i] = sluice_bpf_map_fd(b, i);
	snprintf(path, sizeof(path), "%s/tenants.ini", test__tmpdir());
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "tenants file"))
		goto out;
	fputs("[acme]\nsource = 203.0.113.7\nsource = 10.0.0.0/8\n[beta]\nclass = low\n", f);
	fclose(f);
	r.tenants = tenants_load(path, NULL, err, sizeof(err));
	r.adm = admission_new(&ao, r.fds, NULL);
	r.cfg = xdp_config_map(r.fds[SLUICE_M_CONFIG]);
	if (!ASSERT_OK_PTR(r.tenants, err) || !ASSERT_OK_PTR(r.adm, "admission") ||
	    !ASSERT_OK_PTR(r.cfg, "mmap the config"))
		goto out;
	xdp_config_read(r.cfg, &before);
	if (!ASSERT_OK(pthread_create(&th[started], NULL, deny_writer, &r), "deny thread"))
		goto stop;
	started++;
	if (!ASSERT_OK(pthread_create(&th[started], NULL, tenants_writer, &r), "tenants thread"))
		goto stop;
	started++;
	if (!ASSERT_OK(pthread_create(&th[started], NULL, controller_writer, &r), "ctl thread"))
		goto stop;
	started++;
	operator_rounds(&r);
stop:
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (started < 3)
		goto out;
	xdp_config_read(r.cfg, &after);
	printf("writes: %ld denies, %ld tenants reloads, %ld controller publishes, %ld sluicectl "
	       "bumps; generation %u -> %u\n",
	       r.denies, r.reloads, r.publishes, r.ctl_bumps, before.generation, after.generation);
	ASSERT_STREQ(r.err, "", "tenants_apply_bpf");
	ASSERT_EQ(r.ctl_failures, 0, "every sluicectl command succeeded");
	ASSERT_GT(r.denies, 0, "the deny list wrote");
	ASSERT_GT(r.reloads, 0, "the tenants reload wrote");
	ASSERT_EQ(after.generation - before.generation, (__u32)(r.denies + r.reloads + r.ctl_bumps),
		  "no generation bump lost");
	ASSERT_EQ(after.shed_mode, SLUICE_SHED_MANUAL, "the operator's last mode");
	ASSERT_EQ(after.shed_level, SLUICE_SHED_THIN, "the operator's last level");
	ASSERT_EQ(sluice_config_level(&after), SLUICE_SHED_THIN, "and it is in force");
	ASSERT_EQ(after.permille[SLUICE_CLASS_NORMAL], 333, "the operator's last share");
	ASSERT_EQ(after.permille[SLUICE_CLASS_LOW], 900, "the operator's earlier share");
	ASSERT_EQ(after.flags & (SLUICE_CFG_DRY_RUN | SLUICE_CFG_EXACT_CLOCK),
		  SLUICE_CFG_DRY_RUN | SLUICE_CFG_EXACT_CLOCK, "the operator's last flags");
	ASSERT_EQ(after.auto_level, r.last_auto_level, "the controller's last level");
	ASSERT_EQ(after.auto_permille[SLUICE_CLASS_NORMAL],
		  r.last_auto_permille[SLUICE_CLASS_NORMAL], "the controller's last share");
	ASSERT_EQ(after.auto_permille[SLUICE_CLASS_LOW], r.last_auto_permille[SLUICE_CLASS_LOW],
		  "the controller's last low share");
	ASSERT_EQ(after.abi_version, SLUICE_ABI_VERSION, "the loader's ABI version untouched");
out:
	xdp_config_unmap(r.cfg);
	admission_free(r.adm);
	tenants_put(r.tenants);
	sluice_bpf_free(b);
	sluice_bpf_unpin(pin_dir);
}
