// SPDX-License-Identifier: MIT
/* test_sluicectl_args.c -- sluicectl's option lookups: values as given, and a name that the
 * command's option table does not declare aborts instead of reading "not given"
 *
 * Links tools/sluicectl/args.o. The abort runs in a forked child whose stderr goes to a
 * pipe, so the message can be checked: it must name the command and the option.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "test_progs.h"

static const struct ctl_opt opts[] = {
    {"ttl", "DURATION", 0, "how long"},
    {"all", NULL, CTL_OPT_FLAG, "every one"},
    {"permille", "CLASS=N", CTL_OPT_REPEAT, "repeatable"},
    {NULL},
};

static const struct ctl_cmd cmd = {"deny", "add", "ADDR", 1, 1, opts, "test row", NULL};

static struct ctl_args args(void)
{
	struct ctl_args a = {.opts = opts, .cmd = &cmd};

	a.nval[0] = 1;
	a.val[0][0] = "30s";
	a.nval[2] = 2;
	a.val[2][0] = "low=500";
	a.val[2][1] = "normal=100";
	return a;
}

static void subtest_declared(void)
{
	struct ctl_args a = args();

	ASSERT_STREQ(ctl_opt_get(&a, "ttl"), "30s", "given value");
	ASSERT_EQ(ctl_opt_get(&a, "all"), NULL, "declared, not given: NULL");
	ASSERT_EQ(ctl_opt_count(&a, "all"), 0, "count of a flag not given");
	ASSERT_EQ(ctl_opt_count(&a, "permille"), 2, "repeated option counted");
	ASSERT_STREQ(ctl_opt_nth(&a, "permille", 1), "normal=100", "nth value");
	ASSERT_EQ(ctl_opt_nth(&a, "permille", 2), NULL, "past the last value");
	ASSERT_STREQ(ctl_opt_get(&a, "permille"), "normal=100", "get: the last one");
}

/* Run lookup(name) in a child; its stderr into msg. Returns the wait status. */
static int in_child(int which, const char *name, char *msg, size_t len)
{
	int fds[2], status = 0;
	ssize_t n, got = 0;
	pid_t pid;

	if (pipe(fds))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		struct ctl_args a = args();

		setrlimit(RLIMIT_CORE, &no_core);
		dup2(fds[1], 2);
		if (which == 0)
			ctl_opt_get(&a, name);
		else if (which == 1)
			ctl_opt_count(&a, name);
		else
			ctl_opt_nth(&a, name, 0);
		_exit(0);
	}
	close(fds[1]);
	while (got + 1 < (ssize_t)len && (n = read(fds[0], msg + got, len - 1 - got)) > 0)
		got += n;
	msg[got] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void subtest_undeclared_aborts(void)
{
	static const char *const what[] = {"get", "count", "nth"};
	char msg[512];

	for (int i = 0; i < 3; i++) {
		int st = in_child(i, "tll", msg, sizeof(msg));

		ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, what[i]);
		ASSERT_HAS_STR(msg, "`deny add` reads option --tll", what[i]);
		ASSERT_HAS_STR(msg, "does not declare", what[i]);
	}
	ASSERT_EQ(in_child(0, "ttl", msg, sizeof(msg)), 0, "a declared name does not abort");
}

void test_sluicectl_args(void)
{
	if (test__start_subtest("declared"))
		subtest_declared();
	if (test__start_subtest("undeclared_aborts"))
		subtest_undeclared_aborts();
}
