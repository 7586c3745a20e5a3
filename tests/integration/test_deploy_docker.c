// SPDX-License-Identifier: MIT
/* test_deploy_docker.c -- the Dockerfile's runtime stage can run what the build produces
 *
 * No image can be built here (no registry), so this is static: tools/deploy/image-libs maps
 * every shared library the built sluiced and sluicectl link, and every command the
 * Kubernetes manifests run inside the image, to its Debian package and checks the runtime
 * stage installs it (listed, pulled in by a listed package, or part of bookworm-slim). A copy
 * of the Dockerfile without one library's package must fail (the negative control). The
 * image's users and tags must be the ones the manifests name.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netns.h"
#include "test_progs.h"

#define COMMANDS "/bin/sh /bin/cp /bin/mv /bin/sleep"

static void subtest_libs(void)
{
	static char out[65536];
	const char *o = test__outdir(), *t = test__tmpdir();

	if (!ASSERT_OK(
		netns_run(NULL, out, sizeof(out),
			  "tools/deploy/image-libs Dockerfile sluiced %s/sluiced %s/sluicectl "
			  "-- " COMMANDS,
			  o, o),
		"runtime stage provides every library and command"))
		printf("%s\n", out);
	ASSERT_HAS_STR(out, "libbpf.so.1 -> libbpf1", "libraries were checked");
	ASSERT_HAS_STR(out, "/bin/sleep -> coreutils", "commands were checked");
	ASSERT_FALSE(strstr(out, "MISSING"), "nothing missing");
	/* the manifests run nothing else from the image */
	ASSERT_NEQ(netns_run(NULL, out, sizeof(out),
			     "grep -rhoE '/(usr/)?s?bin/[a-z]+' deploy/k8s --include='*.yaml' | "
			     "grep -vxE '/bin/(sh|sleep)'"),
		   0, "only /bin/sh and /bin/sleep by path");
	ASSERT_OK(
	    netns_run(NULL, out, sizeof(out),
		      "grep -rhoE \"sh, -c, '[^']*'\" deploy/k8s --include='*.yaml' | "
		      "sed -E \"s/^sh, -c, '//; s/'$//\" | tr '&;' '\\n\\n' | awk '{print $1}' | "
		      "grep . | sort -u | tr '\\n' ' '"),
	    "commands inside sh -c");
	ASSERT_STREQ(out, "cp mv ", "cp and mv inside sh -c, nothing else");
	/* negative control: drop one library's package */
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "sed 's/ liburing2 / /' Dockerfile > %s/Dockerfile", t),
		  "doctored copy");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out),
			    "tools/deploy/image-libs %s/Dockerfile sluiced %s/sluiced", t, o),
		  1, "a missing package fails");
	ASSERT_HAS_STR(out, "MISSING /lib/x86_64-linux-gnu/liburing.so.2 -> liburing2",
		       "names the library and its package");
}

static void subtest_users_tags(void)
{
	char out[4096], version[32] = "";
	FILE *f = fopen("VERSION", "r");

	if (f) {
		if (fgets(version, sizeof(version), f))
			version[strcspn(version, "\n")] = 0;
		fclose(f);
	}
	ASSERT_TRUE(version[0], "VERSION");
	/* workers run as the image's user, PgBouncer as its stage's */
	ASSERT_OK(
	    netns_run(
		NULL, out, sizeof(out),
		"awk '/^FROM .* AS sluiced$/,/^ENTRYPOINT/' Dockerfile | grep -qx 'USER "
		"10001' && grep -q 'runAsUser: 10001' deploy/k8s/workers/worker-deployment.yaml"),
	    "sluiced image user = worker runAsUser");
	ASSERT_OK(
	    netns_run(NULL, out, sizeof(out),
		      "awk '/^FROM .* AS pgbouncer$/,/^ENTRYPOINT/' Dockerfile | grep -qx 'USER "
		      "10002' && grep -q 'runAsUser: 10002' deploy/k8s/workers/pgbouncer.yaml"),
	    "pgbouncer image user = its runAsUser");
	/* every kustomize image tag is this version */
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "grep -rh 'newTag:' deploy/k8s | grep -vx '  newTag: \"%s\"'", version)
		      ? 0
		      : 1,
		  "image tags = VERSION");
	/* the ENTRYPOINT and the manifests' args agree: args only, no command, for sluiced */
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "grep -qx 'ENTRYPOINT \\[\"/usr/local/bin/sluiced\"\\]' Dockerfile"),
		  "entrypoint is sluiced");
}

void test_deploy_docker(void)
{
	if (access(".output", F_OK) && access(test__outdir(), F_OK)) {
		test__skip("no build directory");
		return;
	}
	if (test__start_subtest("runtime_libraries"))
		subtest_libs();
	if (test__start_subtest("users_and_tags"))
		subtest_users_tags();
}
