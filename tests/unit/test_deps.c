// SPDX-License-Identifier: MIT
/* test_deps.c -- tools/deps finds no call cycle in user/, and finds one when a file calls back
 *
 * The tree subtest runs the check over the objects this build made. The two negative
 * controls compile small objects into the test's scratch dir and add them to the same set:
 * two files that call each other (a file cycle), and a lib/ file calling up into work/ (a
 * folder cycle, since work/ already uses lib/). Each must make the check fail and name the
 * symbol that closes the cycle.
 */
#include <stdio.h>

#include "netns.h"
#include "test_progs.h"

static int deps_check(char *out, size_t outlen, const char *extra)
{
	return netns_run(NULL, out, outlen,
			 "tools/deps --check --objs %s $(tools/deps --objs %s --list) %s 2>&1",
			 test__outdir(), test__outdir(), extra);
}

/* Compile src into dir/rel (an object named as if it lived at rel in user/). */
static bool compile(const char *dir, const char *rel, const char *src)
{
	char out[1024];
	int rc = netns_run(NULL, out, sizeof(out),
			   "mkdir -p %s/$(dirname %s) && printf '%%s\\n' '%s' | "
			   "cc -x c -c -o %s/%s - 2>&1",
			   dir, rel, src, dir, rel);

	if (rc)
		printf("%s\n", out);
	return rc == 0;
}

void test_deps(void)
{
	char out[16384], dir[512];
	int rc;

	snprintf(dir, sizeof(dir), "%s/deps", test__tmpdir());
	if (test__start_subtest("tree_has_no_cycles")) {
		rc = deps_check(out, sizeof(out), "");
		if (!ASSERT_EQ(rc, 0, "tools/deps --check on the build"))
			printf("%s\n", out);
		ASSERT_HAS_STR(out, "no cycles", "summary line");
	}
	if (test__start_subtest("file_cycle_fails")) {
		char objs[1200];

		if (!ASSERT_TRUE(compile(dir, "user/work/ping.o",
					 "void pong(void); void ping(void) { pong(); }"),
				 "ping.o") ||
		    !ASSERT_TRUE(compile(dir, "user/work/pong.o",
					 "void ping(void); void pong(void) { ping(); }"),
				 "pong.o"))
			return;
		snprintf(objs, sizeof(objs), "%s/user/work/ping.o %s/user/work/pong.o", dir, dir);
		rc = deps_check(out, sizeof(out), objs);
		ASSERT_NEQ(rc, 0, "a file cycle fails the check");
		ASSERT_HAS_STR(out,
			       "files call each other in a circle: user/work/ping user/work/pong",
			       "names both files");
		ASSERT_HAS_STR(out, "user/work/pong -> user/work/ping: ping",
			       "names the back-call");
	}
	if (test__start_subtest("folder_backcall_fails")) {
		char obj[600];

		/* lib/ is the bottom layer: one call up into work/ closes a folder cycle */
		if (!ASSERT_TRUE(compile(dir, "user/lib/backcall.o",
					 "struct worker; void worker_free(struct worker *w, int t);"
					 " void lib_backcall(void) { worker_free(0, 0); }"),
				 "backcall.o"))
			return;
		snprintf(obj, sizeof(obj), "%s/user/lib/backcall.o", dir);
		rc = deps_check(out, sizeof(out), obj);
		ASSERT_NEQ(rc, 0, "a call from lib/ up into work/ fails the check");
		ASSERT_HAS_STR(out, "folders call each other in a circle", "folder cycle reported");
		ASSERT_HAS_STR(out, "backcall->user/work/worker:worker_free",
			       "names the back-call");
	}
}
