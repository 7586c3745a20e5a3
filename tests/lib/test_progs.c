// SPDX-License-Identifier: MIT
/* test_progs.c -- the test runner: run each discovered test in a child, report, summarise
 *
 * Usage: test_progs [-v] [-l] [-t NAME[,NAME...]] [-T SECONDS] [-s SEED]
 *   -t  run tests whose name, or "test/subtest", starts with one of the NAMEs
 *   -v  show every test's output, not only failing ones, and each test's and subtest's time
 *   -l  list test names
 *   -T  per-test timeout (default 600 s; a test that times out fails)
 *   -s  run the tests in an order shuffled by SEED (0: a seed from the clock); the seed is
 *       printed first, so a failure that depends on the order can be run again
 *
 * Counting: a test with subtests counts each subtest; a test without counts once. A
 * test is skipped when it (or every subtest it ran) called test__skip(). The last line
 * is "tests: N passed, M failed, K skipped"; the exit status is 1 if anything failed.
 * Children report through a shared anonymous mapping, so a crashing test is a failure
 * of that test only and its captured output (up to the crash) is still shown.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/array_size.h"
#include "lib/clock.h"
#include "test_progs.h"

struct test_def {
	const char *name;
	void (*fn)(void);
};

#define DEFINE_TEST(n) void test_##n(void);
#include "tests.h"
#undef DEFINE_TEST
#define DEFINE_TEST(n) {#n, test_##n},
static const struct test_def tests[] = {
#include "tests.h"
};
#undef DEFINE_TEST

#define MAX_SUBTESTS 256

/* Shared with the child running the test. */
struct shared_result {
	int nsub;
	int cur; /* -1: the test body itself */
	int top_failed, top_skipped;
	char sub_name[MAX_SUBTESTS][64];
	char sub_failed[MAX_SUBTESTS];
	char sub_skipped[MAX_SUBTESTS];
	char skip_reason[MAX_SUBTESTS + 1][160];
	double sub_start[MAX_SUBTESTS]; /* clock_mono_s() at test__start_subtest */
};

bool test__verbose;
static struct shared_result *res;
static const char *cur_test;
static char **filters;
static int nfilters;
static char tmpdir[PATH_MAX];
static char outdir[PATH_MAX];

/* A filter "a" selects every test whose name starts with a, with all its subtests;
 * "a/x" selects test a exactly and its subtests whose names start with x. */
static bool filter_match(const char *f, const char *test, const char *sub)
{
	const char *slash = strchr(f, '/');

	if (!slash)
		return !strncmp(test, f, strlen(f));
	if (strlen(test) != (size_t)(slash - f) || strncmp(test, f, slash - f))
		return false;
	return !sub || !strncmp(sub, slash + 1, strlen(slash + 1));
}

static bool name_selected(const char *test, const char *sub)
{
	int i;

	if (!nfilters)
		return true;
	for (i = 0; i < nfilters; i++)
		if (filter_match(filters[i], test, sub))
			return true;
	return false;
}

bool test__start_subtest(const char *name)
{
	int i;

	if (!name_selected(cur_test, name))
		return false;
	if (res->nsub >= MAX_SUBTESTS) {
		fprintf(stdout, "test_progs: too many subtests in %s\n", cur_test);
		res->top_failed = 1;
		return false;
	}
	i = res->nsub++;
	res->cur = i;
	snprintf(res->sub_name[i], sizeof(res->sub_name[i]), "%s", name);
	res->sub_start[i] = clock_mono_s();
	fflush(stdout);
	return true;
}

void test__fail(void)
{
	if (res->cur >= 0)
		res->sub_failed[res->cur] = 1;
	else
		res->top_failed = 1;
}

void test__skip(const char *fmt, ...)
{
	int slot = res->cur >= 0 ? res->cur + 1 : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->skip_reason[slot], sizeof(res->skip_reason[slot]), fmt, ap);
	va_end(ap);
	if (res->cur >= 0)
		res->sub_skipped[res->cur] = 1;
	else
		res->top_skipped = 1;
}

bool test__require_root(void)
{
	if (geteuid() != 0) {
		test__skip("needs root (BPF, network namespaces)");
		return false;
	}
	if (!test__bpffs()) {
		test__skip("no BPF filesystem at /sys/fs/bpf and mounting one failed");
		return false;
	}
	return true;
}

#define BPF_FS_MAGIC_ 0xcafe4a11

/* A freshly booted machine without systemd has no bpffs at /sys/fs/bpf: mount it, as sluiced
 * itself does, so a test that pins or makes its pin directory does not depend on an earlier
 * test (or an earlier run) having mounted it. mode=0700 (root only), as systemd and sluiced
 * mount it: the kernel's default 0777 would let a test pass that fails on a real machine
 * (test_deploy_caps/ambient_non_root did). */
bool test__bpffs(void)
{
	struct statfs fs;

	if (!statfs("/sys/fs/bpf", &fs) && (unsigned long)fs.f_type == BPF_FS_MAGIC_)
		return true;
	return !system("mount -t bpf -o mode=0700 bpf /sys/fs/bpf 2>/dev/null") &&
	       !statfs("/sys/fs/bpf", &fs) && (unsigned long)fs.f_type == BPF_FS_MAGIC_;
}

const char *test__tmpdir(void)
{
	return tmpdir;
}

const char *test__outdir(void)
{
	return outdir;
}

static void run_child(const struct test_def *t, int capture_fd)
{
	dup2(capture_fd, STDOUT_FILENO);
	dup2(capture_fd, STDERR_FILENO);
	setvbuf(stdout, NULL, _IOLBF, 0);
	cur_test = t->name;
	srand(getpid());
	t->fn();
	fflush(stdout);
	fflush(stderr);
	_exit(0);
}

static void dump_capture(int fd)
{
	char buf[8192];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
}

static void rm_rf(const char *path)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd))
		fprintf(stderr, "test_progs: could not remove %s\n", path);
}

struct totals {
	int passed, failed, skipped;
};

static const char *verdict(bool failed, bool skipped)
{
	return failed ? "FAIL" : skipped ? "SKIP" : "OK";
}

/* Run test t in a child and add its leaf results to *tot; returns its wall time, seconds. */
static double run_test(int num, const struct test_def *t, int timeout_s, struct totals *tot)
{
	char capture_path[] = "/tmp/test_progs.XXXXXX";
	int fd = mkstemp(capture_path), status = 0, i;
	bool crashed = false, timed_out = false;
	double t0, t1;
	pid_t pid;

	unlink(capture_path);
	memset(res, 0, sizeof(*res));
	res->cur = -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sluice-test-%s-%d", t->name, getpid());
	rm_rf(tmpdir);
	mkdir(tmpdir, 0755);
	fflush(stdout);
	t0 = clock_mono_s();
	pid = fork();
	if (pid == 0)
		run_child(t, fd);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		t1 = clock_mono_s();
		if (t1 - t0 > timeout_s) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			timed_out = true;
			break;
		}
		usleep(2000);
	}
	t1 = clock_mono_s();
	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status)) {
		crashed = true;
		if (res->cur >= 0)
			res->sub_failed[res->cur] = 1;
		else
			res->top_failed = 1;
	}

	bool any_fail = res->top_failed;
	for (i = 0; i < res->nsub; i++)
		any_fail |= res->sub_failed[i];
	if (any_fail || test__verbose)
		dump_capture(fd);
	close(fd);
	if (crashed)
		printf("%s: %s\n", t->name,
		       timed_out	     ? "timed out"
		       : WIFSIGNALED(status) ? strsignal(WTERMSIG(status))
					     : "exited non-zero");

	for (i = 0; i < res->nsub; i++) {
		bool f = res->sub_failed[i] || res->top_failed;
		bool s = !f && (res->sub_skipped[i] || res->top_skipped);

		printf("#%d/%d %s/%s:%s", num, i + 1, t->name, res->sub_name[i], verdict(f, s));
		if (s)
			printf(" (%s)", res->skip_reason[i + 1][0] ? res->skip_reason[i + 1]
								   : res->skip_reason[0]);
		printf("\n");
		/* a subtest runs until the next one starts or the test ends (its shared
		 * set-up before the first subtest counts to the test only) */
		if (test__verbose)
			printf("#%d/%d %s/%s: %.2fs\n", num, i + 1, t->name, res->sub_name[i],
			       (i + 1 < res->nsub ? res->sub_start[i + 1] : t1) -
				   res->sub_start[i]);
		tot->failed += f;
		tot->skipped += s;
		tot->passed += !f && !s;
	}
	if (!res->nsub) {
		printf("#%d %s:%s", num, t->name, verdict(res->top_failed, res->top_skipped));
		if (!res->top_failed && res->top_skipped)
			printf(" (%s)", res->skip_reason[0]);
		printf("\n");
		tot->failed += res->top_failed;
		tot->skipped += !res->top_failed && res->top_skipped;
		tot->passed += !res->top_failed && !res->top_skipped;
	} else if (res->top_failed && !crashed) {
		tot->failed++;
		printf("#%d %s:FAIL (outside subtests)\n", num, t->name);
	}
	if (test__verbose)
		printf("#%d %s: %.2fs\n", num, t->name, t1 - t0);
	rm_rf(tmpdir);
	return t1 - t0;
}

/* One line naming the slowest tests of the run, so CI's time budget shows where it goes:
 * ten passes of a selection, each taking the slowest time below the previous pick (ties
 * broken by position), so nothing but the inputs is indexed. */
static void print_slowest(const size_t *order, const double *secs, size_t n)
{
	double total = 0, last_secs = 0;
	size_t last = n;

	for (size_t i = 0; i < n; i++)
		total += secs[i];
	printf("test_progs: %.0f s in all; slowest:", total);
	for (int k = 0; k < 10; k++) {
		size_t best = n;

		for (size_t i = 0; i < n; i++) {
			bool below =
			    last == n || secs[i] < last_secs || (secs[i] == last_secs && i > last);

			if (secs[i] > 0 && below && (best == n || secs[i] > secs[best]))
				best = i;
		}
		if (best == n)
			break;
		printf("%s %s %.0fs", k ? "," : "", tests[order[best]].name, secs[best]);
		last = best;
		last_secs = secs[best];
	}
	printf("\n");
}

static void usage(void)
{
	fprintf(stderr, "usage: test_progs [-v] [-l] [-t NAME[,NAME...]] [-T SECONDS] [-s SEED]\n");
	exit(2);
}

/* Fisher-Yates over the run order with a xorshift64 generator: the same seed, the same
 * order, on every machine. */
static void shuffle(size_t *order, size_t n, unsigned long long seed)
{
	unsigned long long x = seed ? seed : 0x9e3779b97f4a7c15ULL;

	for (size_t i = n; i > 1; i--) {
		size_t j, t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (size_t)(x % i);
		t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

int main(int argc, char **argv)
{
	struct totals tot = {};
	int opt, timeout_s = 600, ran = 0;
	size_t i, order[ARRAY_SIZE(tests)];
	double secs[ARRAY_SIZE(tests)] = {0};
	unsigned long long seed = 0;
	bool shuffled = false;
	char *sp, *tok, *self, *end;

	while ((opt = getopt(argc, argv, "vlt:T:s:")) != -1) {
		switch (opt) {
		case 'v':
			test__verbose = true;
			break;
		case 'l':
			for (i = 0; i < ARRAY_SIZE(tests); i++)
				printf("%s\n", tests[i].name);
			return 0;
		case 't':
			for (tok = strtok_r(optarg, ",", &sp); tok;
			     tok = strtok_r(NULL, ",", &sp)) {
				char **nf = realloc(filters, sizeof(*filters) * (nfilters + 1));

				if (!nf) {
					perror("test_progs: -t");
					return 2;
				}
				filters = nf;
				filters[nfilters++] = tok;
			}
			break;
		case 'T':
			timeout_s = atoi(optarg);
			if (timeout_s <= 0) {
				fprintf(stderr,
					"test_progs: -T %s: want a positive number of seconds\n",
					optarg);
				return 2;
			}
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end) {
				fprintf(stderr,
					"test_progs: -s %s: want a whole number (0: random)\n",
					optarg);
				return 2;
			}
			if (!seed)
				seed = (unsigned long long)time(NULL) ^ (unsigned long long)getpid()
									    << 32;
			shuffled = true;
			break;
		default:
			usage();
		}
	}
	for (i = 0; i < ARRAY_SIZE(tests); i++)
		order[i] = i;
	if (shuffled) {
		shuffle(order, ARRAY_SIZE(tests), seed);
		printf("test_progs: order shuffled with -s %llu\n", seed);
	}
	self = realpath("/proc/self/exe", NULL);
	snprintf(outdir, sizeof(outdir), "%s", self ? self : ".");
	if (strrchr(outdir, '/'))
		*strrchr(outdir, '/') = 0;
	free(self);
	setvbuf(stdout, NULL, _IOLBF, 0);
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		perror("test_progs: mmap");
		return 1;
	}
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		const struct test_def *t = &tests[order[i]];

		if (!name_selected(t->name, NULL))
			continue;
		ran++;
		secs[i] = run_test((int)order[i] + 1, t, timeout_s, &tot);
	}
	if (ran > 1)
		print_slowest(order, secs, ARRAY_SIZE(tests));
	if (nfilters && !ran)
		fprintf(stderr, "test_progs: no test matches the -t filter\n");
	printf("tests: %d passed, %d failed, %d skipped\n", tot.passed, tot.failed, tot.skipped);
	return tot.failed || (nfilters && !ran) ? 1 : 0;
}
