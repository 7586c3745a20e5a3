// SPDX-License-Identifier: MIT
/* test_readme.c -- the README's `sluiced --help` block is the binary's own option list
 *
 * The README promises "`sluiced --help` prints this list". Every option line the binary prints
 * must appear in the README's Options block verbatim, and the block must name no option the
 * binary lacks, so an option added, renamed or re-described in code fails here until the
 * README says the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns.h"
#include "test_progs.h"

/* The lines from "Options:" up to the first blank line or code fence, '\n'-joined. */
static int options_block(const char *text, char *out, size_t len)
{
	const char *p = strstr(text, "\nOptions:\n");
	size_t n = 0;

	if (!p)
		return -1;
	p += strlen("\nOptions:\n");
	while (*p && *p != '\n' && strncmp(p, "```", 3)) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) + 1 : strlen(p);

		if (n + l + 1 > len)
			return -1;
		memcpy(out + n, p, l);
		n += l;
		p += l;
	}
	out[n] = '\0';
	return 0;
}

/* Each line of want must be a whole line of have; say which one is missing. */
static bool lines_within(const char *want, const char *have, const char *what)
{
	bool ok = true;

	for (const char *p = want; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char line[512];
		const char *h = have;
		bool found = false;

		snprintf(line, sizeof(line), "%.*s", (int)l, p);
		for (size_t ll = strlen(line); (h = strstr(h, line)); h += ll)
			if ((h == have || h[-1] == '\n') && (h[ll] == '\n' || !h[ll])) {
				found = true;
				break;
			}
		if (!found) {
			printf("%s: missing line: %s\n", what, line);
			ok = false;
		}
		p += l + (e ? 1 : 0);
	}
	return ok;
}

void test_readme(void)
{
	static char help[32768], help_opts[16384], readme_opts[16384];
	char bin[512], *readme = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(bin, sizeof(bin), "%s/sluiced", test__outdir());
	netns_run(NULL, help, sizeof(help), "%s --help", bin);
	f = fopen("README.md", "r");
	if (!f) {
		ASSERT_OK_PTR(f, "open README.md");
		return;
	}
	if (getdelim(&readme, &len, '\0', f) < 0)
		readme = NULL;
	fclose(f);
	if (!ASSERT_OK_PTR(readme, "read README.md"))
		return;
	if (!ASSERT_OK(options_block(help, help_opts, sizeof(help_opts)), "help Options block") ||
	    !ASSERT_OK(options_block(readme, readme_opts, sizeof(readme_opts)),
		       "README Options block"))
		goto out;
	ASSERT_GT(strlen(help_opts), 1000, "help lists the options");
	ASSERT_TRUE(lines_within(help_opts, readme_opts, "README lacks what --help says"),
		    "README has every option line of --help");
	ASSERT_TRUE(lines_within(readme_opts, help_opts, "--help lacks what README says"),
		    "README names no option --help lacks");
out:
	free(readme);
}
