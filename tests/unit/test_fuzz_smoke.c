// SPDX-License-Identifier: MIT
/* test_fuzz_smoke.c -- run each libFuzzer target briefly (ASan+UBSan) over the committed
 * seed corpus plus generated inputs (50,000; 2,000 for journal recovery, which opens a
 * journal per input); `make fuzz` runs them for longer */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_progs.h"

static const char *corpus_root(void)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/../tests/fuzz/corpus", test__outdir());
	if (!access(path, R_OK))
		return path;
	return access("tests/fuzz/corpus", R_OK) ? NULL : "tests/fuzz/corpus";
}

static void run_target(const char *name, int runs)
{
	char bin[1024], work[1024], cmd[4096];
	const char *seeds = corpus_root();
	int status;

	snprintf(bin, sizeof(bin), "%s/fuzz/fuzz_%s", test__outdir(), name);
	if (access(bin, X_OK)) {
		test__skip("%s not built (make test builds it; needs clang's libFuzzer)", bin);
		return;
	}
	if (!seeds) {
		test__skip("seed corpus tests/fuzz/corpus not found");
		return;
	}
	/* new inputs go to a scratch dir first on the command line, never into the seeds */
	snprintf(work, sizeof(work), "%s/corpus-%s", test__tmpdir(), name);
	mkdir(work, 0755);
	snprintf(cmd, sizeof(cmd), "%s -runs=%d -seed=1 %s %s/%s > %s/%s.log 2>&1", bin, runs, work,
		 seeds, name, test__tmpdir(), name);
	status = system(cmd);
	if (!ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, name)) {
		char line[512];
		FILE *f;

		snprintf(cmd, sizeof(cmd), "%s/%s.log", test__tmpdir(), name);
		f = fopen(cmd, "r");
		while (f && fgets(line, sizeof(line), f))
			fputs(line, stdout); /* the finding: shown because the test failed */
		if (f)
			fclose(f);
	}
}

void test_fuzz_smoke(void)
{
	if (test__start_subtest("http_parser"))
		run_target("http_parser", 50000);
	if (test__start_subtest("chunked"))
		run_target("chunked", 50000);
	if (test__start_subtest("envelope"))
		run_target("envelope", 50000);
	if (test__start_subtest("journal_recover"))
		run_target("journal_recover", 2000);
}
