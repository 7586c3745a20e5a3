// SPDX-License-Identifier: MIT
/* test_deploy_k8s.c -- deploy/k8s renders with kubectl 1.20, validates, and is least privilege
 *
 * Every overlay is rendered the way a platform engineer would (`kubectl kustomize`, with
 * Debian's kubectl 1.20 = kustomize 2.0.3, the oldest renderer we support), validated
 * offline against the pinned Kubernetes and CRD schemas (tools/deploy/k8s.mjs, with a
 * negative control that must fail), and then read back as JSON to check what the manifests
 * promise: the capability set, seccomp, read-only roots, probes on the admin port, a PDB
 * that lets a drain through at the autoscaler's minimum, NetworkPolicies, no committed
 * secret, a config change that reaches the pods, every sluiced flag they use exists, and
 * HTTPS from a referenced kubernetes.io/tls Secret that sluiced reloads when it rotates.
 * These are static checks: no cluster runs here.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "netns.h"
#include "test_progs.h"

#define KUBECTL120 "/opt/sluice/deb/kubernetes-client/usr/bin/kubectl"
#define K8S_TOOL   "tools/deploy/k8s.mjs"
#define ADMIN_PORT 9464

static const char *const overlays[] = {"single-node", "cluster", "cluster-hpa"};
#define N_OVERLAYS (sizeof(overlays) / sizeof(overlays[0]))

static bool tools_present(void)
{
	if (access(KUBECTL120, X_OK)) {
		test__skip("%s missing (tools/setup unpacks kubernetes-client)", KUBECTL120);
		return false;
	}
	if (access("tools/deploy/node_modules/kubernetes-models", R_OK) ||
	    netns_run(NULL, NULL, 0, "node --version")) {
		test__skip("node or tools/deploy/node_modules missing (tools/setup runs npm ci)");
		return false;
	}
	return true;
}

/* Render overlay of the tree at root (NULL: this one) into DIR/<overlay>.yaml. */
static int render(const char *root, const char *overlay, char *yaml, size_t len)
{
	char out[4096];
	int rc;

	snprintf(yaml, len, "%s/%s-%s.yaml", test__tmpdir(), root ? "copy" : "tree", overlay);
	rc = netns_run(NULL, out, sizeof(out),
		       KUBECTL120 " kustomize %s/deploy/k8s/overlays/%s > %s", root ? root : ".",
		       overlay, yaml);
	if (rc)
		printf("kubectl kustomize %s: %s\n", overlay, out);
	return rc;
}

static json_t *load_docs(const char *yaml)
{
	char json[600], out[4096];
	json_error_t e;
	json_t *docs;

	snprintf(json, sizeof(json), "%s.json", yaml);
	if (netns_run(NULL, out, sizeof(out), "node " K8S_TOOL " json %s > %s", yaml, json)) {
		printf("%s\n", out);
		return NULL;
	}
	docs = json_load_file(json, 0, &e);
	if (!docs)
		printf("%s: %s\n", json, e.text);
	return docs;
}

static json_t *render_docs(const char *root, const char *overlay)
{
	char yaml[512];

	return render(root, overlay, yaml, sizeof(yaml)) ? NULL : load_docs(yaml);
}

/* A dotted path with array indices as numbers: "spec.template.spec.containers.0.name". */
static json_t *at(json_t *o, const char *path)
{
	char part[64];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, path, n);
		part[n] = 0;
		o = json_is_array(o) ? json_array_get(o, strtoul(part, NULL, 10))
				     : json_object_get(o, part);
		path += n + (path[n] == '.');
	}
	return o;
}

static const char *str_at(json_t *o, const char *path)
{
	return json_string_value(at(o, path));
}

static json_t *find_doc(json_t *docs, const char *kind, const char *name)
{
	size_t i;
	json_t *d;

	json_array_foreach(docs, i,
			   d) if (!strcmp(str_at(d, "kind") ?: "", kind) &&
				  !strcmp(str_at(d, "metadata.name") ?: "", name)) return d;
	return NULL;
}

static json_t *find_named(json_t *arr, const char *name)
{
	size_t i;
	json_t *e;

	json_array_foreach(arr, i, e) if (!strcmp(str_at(e, "name") ?: "", name)) return e;
	return NULL;
}

static bool arr_has_str(json_t *arr, const char *s)
{
	size_t i;
	json_t *e;

	json_array_foreach(arr, i, e) if (json_is_string(e) &&
					  !strcmp(json_string_value(e), s)) return true;
	return false;
}

static long long int_at(json_t *o, const char *path)
{
	json_t *v = at(o, path);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* ---- subtests --------------------------------------------------------------------------- */

static void subtest_render_validate(void)
{
	char yaml[512], out[8192];

	for (size_t i = 0; i < N_OVERLAYS; i++) {
		if (!ASSERT_OK(render(NULL, overlays[i], yaml, sizeof(yaml)), overlays[i]))
			continue;
		if (!ASSERT_OK(
			netns_run(NULL, out, sizeof(out), "node " K8S_TOOL " validate %s", yaml),
			"every document valid"))
			printf("%s\n", out);
		ASSERT_HAS_STR(out, ", 0 errors", "validator counted");
	}
}

/* The validator must catch what a careless edit does: a misspelt hardening field (which the
 * OpenAPI schema alone would accept), a string where an integer goes, a CRD field of the
 * wrong type, a kind nobody knows. */
static void subtest_validate_negative(void)
{
	char yaml[512], bad[600], out[8192];

	if (!ASSERT_OK(render(NULL, "cluster", yaml, sizeof(yaml)), "render"))
		return;
	snprintf(bad, sizeof(bad), "%s/bad.yaml", test__tmpdir());
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "sed -e 's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/' "
			    "-e 's/failureThreshold: 120/failureThreshold: \"120\"/' "
			    "-e 's/lagThreshold: \"1000\"/lagThreshold: 1000/' %s > %s && "
			    "printf -- '---\\napiVersion: example.com/v1\\nkind: Nope\\nmetadata: "
			    "{name: x}\\n' >> %s",
			    yaml, bad, bad),
		  "doctored copy");
	ASSERT_NEQ(netns_run(NULL, out, sizeof(out), "node " K8S_TOOL " validate %s", bad), 0,
		   "validator refuses it");
	ASSERT_HAS_STR(out, "securityContext/readOnlyRootFilesytem: unknown field",
		       "misspelt field");
	ASSERT_HAS_STR(out, "startupProbe/failureThreshold must be integer", "wrong type");
	ASSERT_HAS_STR(out,
		       "ScaledObject/sluice-worker: data/spec/triggers/0/metadata/lagThreshold",
		       "CRD field checked");
	ASSERT_HAS_STR(out, "no schema for example.com/v1 Nope", "unknown kind");
}

static void subtest_generated(void)
{
	char out[4096];
	const char *t = test__tmpdir();

	if (!ASSERT_OK(netns_run(NULL, out, sizeof(out), "node tools/deploy/gen.mjs --check"),
		       "generated files up to date (make deploy-gen)"))
		printf("%s\n", out);
	/* negative control: a rule added to the source makes the PrometheusRule stale */
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "mkdir -p %s/root && cp -r deploy %s/root/ && "
			    "printf '      - alert: Extra\\n        expr: vector(1)\\n' >> "
			    "%s/root/deploy/prometheus/rules.yaml",
			    t, t, t),
		  "copy with an extra rule");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out),
			    "node tools/deploy/gen.mjs --check --root %s/root", t),
		  1, "stale copy detected");
	ASSERT_HAS_STR(out, "stale: deploy/k8s/base/prometheusrule.yaml", "names the file");
}

/* Pod-level and container-level security of one container. */
static void check_container(json_t *pod, json_t *c, const char *what, bool root_ok)
{
	json_t *sc = json_object_get(c, "securityContext");
	json_t *psc = json_object_get(pod, "securityContext");
	char tag[256];

	snprintf(tag, sizeof(tag), "%s: allowPrivilegeEscalation false", what);
	ASSERT_TRUE(json_is_false(at(sc, "allowPrivilegeEscalation")), tag);
	snprintf(tag, sizeof(tag), "%s: readOnlyRootFilesystem", what);
	ASSERT_TRUE(json_is_true(at(sc, "readOnlyRootFilesystem")), tag);
	snprintf(tag, sizeof(tag), "%s: not privileged", what);
	ASSERT_FALSE(json_is_true(at(sc, "privileged")), tag);
	snprintf(tag, sizeof(tag), "%s: drops ALL", what);
	ASSERT_TRUE(arr_has_str(at(sc, "capabilities.drop"), "ALL"), tag);
	snprintf(tag, sizeof(tag), "%s: seccomp set", what);
	ASSERT_TRUE(str_at(sc, "seccompProfile.type") || str_at(psc, "seccompProfile.type"), tag);
	if (!root_ok) {
		snprintf(tag, sizeof(tag), "%s: runAsNonRoot", what);
		ASSERT_TRUE(json_is_true(at(sc, "runAsNonRoot")) ||
				json_is_true(at(psc, "runAsNonRoot")),
			    tag);
		snprintf(tag, sizeof(tag), "%s: adds no capability", what);
		ASSERT_EQ(json_array_size(at(sc, "capabilities.add")), 0, tag);
	}
}

static void check_all_containers(json_t *doc, bool root_ok)
{
	json_t *pod = at(doc, "spec.template.spec"), *c;
	const char *lists[] = {"containers", "initContainers"};
	char what[128];
	size_t i;

	ASSERT_TRUE(json_is_false(json_object_get(pod, "automountServiceAccountToken")),
		    "no service account token");
	ASSERT_FALSE(json_is_true(json_object_get(pod, "hostPID")), "no hostPID");
	ASSERT_FALSE(json_is_true(json_object_get(pod, "hostIPC")), "no hostIPC");
	for (int l = 0; l < 2; l++)
		json_array_foreach(json_object_get(pod, lists[l]), i, c)
		{
			snprintf(what, sizeof(what), "%s/%s", str_at(doc, "metadata.name"),
				 str_at(c, "name"));
			check_container(pod, c, what, root_ok);
		}
}

static void check_probes(json_t *c, const char *what)
{
	const char *probes[] = {"startupProbe", "readinessProbe", "livenessProbe"};
	char tag[160];

	for (int i = 0; i < 3; i++) {
		json_t *p = json_object_get(c, probes[i]);
		json_t *port = at(p, "httpGet.port");
		json_t *ports = json_object_get(c, "ports");
		json_t *named =
		    json_is_string(port) ? find_named(ports, json_string_value(port)) : NULL;

		snprintf(tag, sizeof(tag), "%s: %s on the admin port", what, probes[i]);
		ASSERT_EQ(int_at(named, "containerPort"), ADMIN_PORT, tag);
	}
	ASSERT_STREQ(str_at(c, "readinessProbe.httpGet.path"), "/readyz", "readiness = /readyz");
}

static void subtest_least_privilege(void)
{
	json_t *docs = render_docs(NULL, "cluster"), *ds, *c, *add, *sc;
	long long grace, drain = 30, pre;

	if (!ASSERT_OK_PTR(docs, "cluster rendered"))
		return;
	ds = find_doc(docs, "DaemonSet", "sluice-ingress");
	if (!ASSERT_OK_PTR(ds, "ingress DaemonSet"))
		goto out;
	check_all_containers(ds, true);
	c = find_named(at(ds, "spec.template.spec.containers"), "sluiced");
	sc = json_object_get(c, "securityContext");
	add = at(sc, "capabilities.add");
	ASSERT_EQ(json_array_size(add), 3, "exactly three capabilities added");
	ASSERT_TRUE(arr_has_str(add, "BPF") && arr_has_str(add, "NET_ADMIN") &&
			arr_has_str(add, "PERFMON"),
		    "BPF, NET_ADMIN, PERFMON (test_deploy_caps proves each is needed)");
	ASSERT_STREQ(str_at(sc, "seccompProfile.type"), "Localhost", "Localhost seccomp");
	ASSERT_STREQ(str_at(sc, "seccompProfile.localhostProfile"), "profiles/sluiced.json",
		     "the profile the seccomp DaemonSet installs");
	check_probes(c, "ingress");
	ASSERT_GE(int_at(c, "startupProbe.periodSeconds") *
		      int_at(c, "startupProbe.failureThreshold"),
		  600, "startup allows 10 min of journal recovery");
	/* preStop sleep, then the drain, within the grace period */
	pre = atoll(str_at(c, "lifecycle.preStop.exec.command.1") ?: "0");
	grace = int_at(ds, "spec.template.spec.terminationGracePeriodSeconds");
	ASSERT_GT(pre, 0, "preStop sleeps");
	ASSERT_GE(grace, pre + drain, "grace >= preStop + --drain-timeout-ms");
	ASSERT_TRUE(json_array_size(at(ds, "spec.template.spec.tolerations")) > 0, "tolerations");
	ASSERT_TRUE(json_is_true(at(ds, "spec.template.spec.hostNetwork")),
		    "host network (XDP NIC)");
	ASSERT_TRUE(find_doc(docs, "PriorityClass",
			     str_at(ds, "spec.template.spec.priorityClassName") ?: "?") != NULL,
		    "its PriorityClass is rendered");
	ASSERT_TRUE(find_doc(docs, "DaemonSet", "sluice-seccomp-profile") != NULL,
		    "the profile reaches every node");
	ASSERT_STREQ(str_at(find_doc(docs, "DaemonSet", "sluice-seccomp-profile"),
			    "spec.template.spec.tolerations.0.operator"),
		     "Exists", "on every node, tainted or not");

	/* workers and PgBouncer: restricted */
	const char *deps[] = {"sluice-worker", "pgbouncer"};

	for (int i = 0; i < 2; i++) {
		json_t *d = find_doc(docs, "Deployment", deps[i]);

		if (!ASSERT_OK_PTR(d, deps[i]))
			continue;
		check_all_containers(d, false);
		ASSERT_STREQ(str_at(d, "metadata.namespace"), "sluice",
			     "in the restricted namespace");
	}
	c = find_named(
	    at(find_doc(docs, "Deployment", "sluice-worker"), "spec.template.spec.containers"),
	    "sluiced");
	check_probes(c, "worker");
	ASSERT_STREQ(json_string_value(json_object_get(
			 at(find_doc(docs, "Namespace", "sluice"), "metadata.labels"),
			 "pod-security.kubernetes.io/enforce")),
		     "restricted", "workers' namespace restricted");
	ASSERT_STREQ(json_string_value(json_object_get(
			 at(find_doc(docs, "Namespace", "sluice-ingress"), "metadata.labels"),
			 "pod-security.kubernetes.io/enforce")),
		     "privileged", "ingress namespace privileged (hostNetwork, hostPath, caps)");
out:
	json_decref(docs);
}

static void subtest_service_accounts(void)
{
	for (size_t o = 0; o < N_OVERLAYS; o++) {
		json_t *docs = render_docs(NULL, overlays[o]), *d;
		size_t i;
		int n = 0;

		if (!ASSERT_OK_PTR(docs, overlays[o]))
			continue;
		json_array_foreach(docs, i, d)
		{
			const char *k = str_at(d, "kind");

			if (!strcmp(k, "ServiceAccount")) {
				n++;
				ASSERT_TRUE(json_is_false(
						json_object_get(d, "automountServiceAccountToken")),
					    "SA automount off");
			}
			/* nothing secret is committed: Secrets are created by the operator */
			ASSERT_FALSE(!strcmp(k, "Secret"), "no Secret rendered");
		}
		ASSERT_GT(n, 0, "service accounts rendered");
		json_decref(docs);
	}
}

/* A drain must be able to evict a worker even at the autoscaler's minimum. */
static void subtest_pdb_vs_min_replicas(void)
{
	json_t *keda = render_docs(NULL, "cluster"), *hpa = render_docs(NULL, "cluster-hpa");
	long long min_avail, mins[3];

	if (!ASSERT_OK_PTR(keda, "cluster") || !ASSERT_OK_PTR(hpa, "cluster-hpa"))
		goto out;
	min_avail =
	    int_at(find_doc(keda, "PodDisruptionBudget", "sluice-worker"), "spec.minAvailable");
	mins[0] = int_at(find_doc(keda, "ScaledObject", "sluice-worker"), "spec.minReplicaCount");
	mins[1] =
	    int_at(find_doc(hpa, "HorizontalPodAutoscaler", "sluice-worker"), "spec.minReplicas");
	mins[2] = int_at(find_doc(keda, "Deployment", "sluice-worker"), "spec.replicas");
	ASSERT_GE(min_avail, 1, "PDB keeps one worker");
	for (int i = 0; i < 3; i++)
		ASSERT_LT(min_avail, mins[i], "PDB minAvailable below every minimum replica count");
	ASSERT_STREQ(
	    str_at(find_doc(keda, "ScaledObject", "sluice-worker"), "spec.triggers.0.type"),
	    "kafka", "KEDA scales on Kafka consumer lag");
	ASSERT_STREQ(str_at(find_doc(hpa, "HorizontalPodAutoscaler", "sluice-worker"),
			    "spec.metrics.0.external.metric.name"),
		     "sluice_queue_lag_seconds", "HPA on queue lag (adapter rule shipped)");
	ASSERT_EQ(find_doc(hpa, "ScaledObject", "sluice-worker"), NULL,
		  "one autoscaler per overlay");
out:
	json_decref(keda);
	json_decref(hpa);
}

/* Is this pod (labels) selected by policy p (same namespace)? */
static bool selects(json_t *p, json_t *labels)
{
	json_t *want = at(p, "spec.podSelector.matchLabels"), *v;
	const char *k;

	json_object_foreach(want, k,
			    v) if (!json_equal(json_object_get(labels, k), v)) return false;
	return true;
}

static void subtest_network_policies(void)
{
	json_t *docs = render_docs(NULL, "cluster"), *d, *p, *rule;
	const char *deps[] = {"sluice-worker", "pgbouncer"};
	size_t i, j;

	if (!ASSERT_OK_PTR(docs, "cluster"))
		return;
	for (int n = 0; n < 2; n++) {
		json_t *labels =
		    at(find_doc(docs, "Deployment", deps[n]), "spec.template.metadata.labels");
		int ing = 0, egr = 0;

		json_array_foreach(docs, i, p)
		{
			if (strcmp(str_at(p, "kind"), "NetworkPolicy") || !selects(p, labels))
				continue;
			ing += arr_has_str(at(p, "spec.policyTypes"), "Ingress");
			egr += arr_has_str(at(p, "spec.policyTypes"), "Egress");
			/* no ingress rule open to everyone */
			json_array_foreach(at(p, "spec.ingress"), j, rule)
			    ASSERT_GT(json_array_size(json_object_get(rule, "from")), 0,
				      "every ingress rule names its sources");
		}
		ASSERT_GE(ing, 2, "ingress: default deny + its own policy");
		ASSERT_GE(egr, 2, "egress: default deny + its own policy");
	}
	d = find_doc(docs, "NetworkPolicy", "sluice-worker");
	json_array_foreach(at(d, "spec.ingress"), j, rule)
	{
		ASSERT_EQ(int_at(rule, "ports.0.port"), ADMIN_PORT, "only the admin port is open");
		ASSERT_STREQ(json_string_value(
				 json_object_get(at(rule, "from.0.namespaceSelector.matchLabels"),
						 "kubernetes.io/metadata.name")),
			     "monitoring", "admin port from the monitoring namespace only");
	}
	/* where workers may go: DNS, PgBouncer, Kafka, Redis, HTTPS upstreams; nothing else */
	{
		static const long long want[] = {53, 6432, 9092, 6379, 443};
		long long seen[16];
		size_t ns = 0, k;
		json_t *port;

		json_array_foreach(at(d, "spec.egress"), j, rule)
		    json_array_foreach(json_object_get(rule, "ports"), k, port) if (ns < 16)
			seen[ns++] = int_at(port, "port");
		for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
			bool found = false;

			for (k = 0; k < ns; k++)
				found |= seen[k] == want[w];
			ASSERT_TRUE(found, "worker egress port allowed");
		}
		for (k = 0; k < ns; k++) {
			bool listed = false;

			for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++)
				listed |= seen[k] == want[w];
			ASSERT_TRUE(listed, "no other worker egress port");
		}
	}
	ASSERT_STREQ(
	    json_string_value(json_object_get(at(find_doc(docs, "NetworkPolicy", "pgbouncer"),
						 "spec.ingress.0.from.0.podSelector.matchLabels"),
					      "app.kubernetes.io/component")),
	    "worker", "PgBouncer only from workers");
	ASSERT_TRUE(find_doc(docs, "NetworkPolicy", "default-deny") &&
			json_object_size(at(find_doc(docs, "NetworkPolicy", "default-deny"),
					    "spec.podSelector")) == 0,
		    "default deny selects every pod");
	json_decref(docs);
}

/* The name of the ConfigMap behind a workload's volume "config". */
static const char *config_name(json_t *docs, const char *kind, const char *name)
{
	return str_at(
	    find_named(at(find_doc(docs, kind, name), "spec.template.spec.volumes"), "config"),
	    "configMap.name");
}

/* A changed tenants or routes file renders a new ConfigMap name into the pod template: the
 * workload rolls and every sluiced reads the new file (the reload path). */
static void subtest_config_reload(void)
{
	json_t *before = NULL, *after = NULL, *cm;
	char root[400], out[4096];
	const char *a, *b;

	snprintf(root, sizeof(root), "%s/copy", test__tmpdir());
	if (!ASSERT_OK(
		netns_run(NULL, out, sizeof(out), "mkdir -p %s && cp -r deploy %s/", root, root),
		"copy of deploy/"))
		return;
	before = render_docs(root, "cluster");
	ASSERT_OK(
	    netns_run(NULL, out, sizeof(out),
		      "printf '[beta]\\nkey = %064d\\n' 1 >> %s/deploy/k8s/base/tenants.ini && "
		      "printf '[route lead.created]\\nclass = critical\\nstep = store "
		      "pool=db\\n' >> %s/deploy/k8s/workers/routes.ini",
		      0, root, root),
	    "edit tenants and routes");
	after = render_docs(root, "cluster");
	if (!ASSERT_OK_PTR(before, "before") || !ASSERT_OK_PTR(after, "after"))
		goto out;
	a = config_name(before, "DaemonSet", "sluice-ingress");
	b = config_name(after, "DaemonSet", "sluice-ingress");
	ASSERT_TRUE(a && b && strcmp(a, b), "ingress pod template names a new ConfigMap");
	cm = find_doc(after, "ConfigMap", b ?: "?");
	ASSERT_HAS_STR(
	    json_string_value(json_object_get(json_object_get(cm, "data"), "tenants.ini")),
	    "[beta]", "which holds the new tenant");
	a = config_name(before, "Deployment", "sluice-worker");
	b = config_name(after, "Deployment", "sluice-worker");
	ASSERT_TRUE(a && b && strcmp(a, b), "worker pod template names a new ConfigMap");
out:
	json_decref(before);
	json_decref(after);
}

static void check_flag(const char *help, const char *name, const char *where)
{
	char needle[96], tag[200];

	snprintf(needle, sizeof(needle), "  --%s ", name);
	if (strstr(help, needle))
		return;
	snprintf(needle, sizeof(needle), "  --%s\n", name);
	if (strstr(help, needle))
		return;
	snprintf(tag, sizeof(tag), "%s: --%s is a sluiced option", where, name);
	ASSERT_TRUE(false, tag);
}

/* Every flag in the pod args and every key in the sluiced.conf files is one sluiced knows. */
static void subtest_flags_exist(void)
{
	static char help[32768];
	char bin[512], name[64];
	json_t *docs, *d, *arg;
	size_t i, j;

	snprintf(bin, sizeof(bin), "%s/sluiced", test__outdir());
	netns_run(NULL, help, sizeof(help), "%s --help", bin);
	if (!ASSERT_HAS_STR(help, "--journal-dir", "sluiced --help"))
		return;
	for (size_t o = 0; o < N_OVERLAYS; o++) {
		docs = render_docs(NULL, overlays[o]);
		if (!ASSERT_OK_PTR(docs, overlays[o]))
			continue;
		json_array_foreach(docs, i, d)
		{
			json_t *c = find_named(at(d, "spec.template.spec.containers"), "sluiced");
			const char *conf = json_string_value(
			    json_object_get(json_object_get(d, "data"), "sluiced.conf"));

			json_array_foreach(json_object_get(c, "args"), j, arg)
			{
				const char *s = json_string_value(arg);

				if (s && sscanf(s, "--%63[a-z0-9-]", name) == 1)
					check_flag(help, name, str_at(d, "metadata.name"));
			}
			for (const char *l = conf; l && *l;
			     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
				if (sscanf(l, "%63[a-z0-9-] =", name) == 1 && *l != '#')
					check_flag(help, name, str_at(d, "metadata.name"));
		}
		json_decref(docs);
	}
}

/* What the worker runs with for sluiced option name: "--name=V" in its args, else "name = V"
 * in its sluiced.conf, else the "(default V)" of `sluiced --help`. false when the option is
 * unknown to this sluiced. */
static bool worker_setting(json_t *args, const char *conf, const char *help, const char *name,
			   char *out, size_t len)
{
	char needle[96];
	const char *l, *d;
	size_t i;
	json_t *a;

	snprintf(needle, sizeof(needle), "--%s=", name);
	json_array_foreach(args, i,
			   a) if (!strncmp(json_string_value(a) ?: "", needle, strlen(needle)))
	{
		snprintf(out, len, "%s", json_string_value(a) + strlen(needle));
		return true;
	}
	snprintf(needle, sizeof(needle), "%s =", name);
	for (l = conf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
		if (!strncmp(l, needle, strlen(needle))) {
			snprintf(out, len, "%.*s", (int)strcspn(l + strlen(needle) + 1, "\n"),
				 l + strlen(needle) + 1);
			return true;
		}
	snprintf(needle, sizeof(needle), "\n  --%s ", name);
	l = strstr(help, needle);
	d = l ? strstr(l, "(default ") : NULL;
	if (!d || d > strchr(l + 1, '\n'))
		return false;
	snprintf(out, len, "%.*s", (int)strcspn(d + 9, ")"), d + 9);
	return true;
}

/* KEDA reads the lag of the consumer group the workers join, on the topics they read, from
 * the brokers they use: each named in the ScaledObject must be what the worker's flags,
 * sluiced.conf and defaults make it. */
static void subtest_keda_matches_workers(void)
{
	static char help[32768];
	char bin[512], want[256], tag[300];
	json_t *docs = render_docs(NULL, "cluster"), *so, *dep, *args, *d;
	const char *conf = NULL, *topic;
	size_t i;

	snprintf(bin, sizeof(bin), "%s/sluiced", test__outdir());
	netns_run(NULL, help, sizeof(help), "%s --help", bin);
	if (!ASSERT_OK_PTR(docs, "cluster") || !ASSERT_HAS_STR(help, "--journal-dir", "--help"))
		goto out;
	so = at(find_doc(docs, "ScaledObject", "sluice-worker"), "spec.triggers.0.metadata");
	dep = find_doc(docs, "Deployment", "sluice-worker");
	args = at(find_named(at(dep, "spec.template.spec.containers"), "sluiced"), "args");
	json_array_foreach(docs, i, d)
	{
		const char *c =
		    json_string_value(json_object_get(json_object_get(d, "data"), "sluiced.conf"));

		if (c && strstr(c, "\nrole = worker\n") &&
		    !strcmp(str_at(d, "kind") ?: "", "ConfigMap"))
			conf = c;
	}
	if (!ASSERT_OK_PTR(so, "ScaledObject trigger") || !ASSERT_OK_PTR(args, "worker args") ||
	    !ASSERT_OK_PTR(conf, "the workers' sluiced.conf"))
		goto out;
	if (ASSERT_TRUE(worker_setting(args, conf, help, "kafka-brokers", want, sizeof(want)),
			"kafka-brokers"))
		ASSERT_STREQ(str_at(so, "bootstrapServers"), want,
			     "KEDA asks the workers' brokers");
	/* the consumer comes with the worker branch: without it sluiced has no --kafka-group */
	if (worker_setting(args, conf, help, "kafka-group", want, sizeof(want)))
		ASSERT_STREQ(str_at(so, "consumerGroup"), want, "KEDA reads the workers' group");
	else
		printf("sluiced has no --kafka-group yet: consumerGroup %s not checked\n",
		       str_at(so, "consumerGroup") ?: "(none)");
	/* no topic: every topic the group consumes; else one of the class topics */
	topic = str_at(so, "topic");
	if (topic &&
	    ASSERT_TRUE(worker_setting(args, conf, help, "kafka-topic-prefix", want, sizeof(want)),
			"kafka-topic-prefix")) {
		snprintf(tag, sizeof(tag), "KEDA topic %s is %s.critical|normal|low", topic, want);
		ASSERT_TRUE(!strncmp(topic, want, strlen(want)) && topic[strlen(want)] == '.' &&
				(!strcmp(topic + strlen(want) + 1, "critical") ||
				 !strcmp(topic + strlen(want) + 1, "normal") ||
				 !strcmp(topic + strlen(want) + 1, "low")),
			    tag);
	}
out:
	json_decref(docs);
}

/* kustomize 2.0.3 writes "annotations: {}" and "labels: {}" on merged ConfigMaps; 5 omits them */
static char *canon(json_t *d)
{
	json_t *meta = json_object_get(d, "metadata");
	const char *empty[] = {"annotations", "labels"};

	for (int i = 0; i < 2; i++)
		if (json_is_object(json_object_get(meta, empty[i])) &&
		    !json_object_size(json_object_get(meta, empty[i])))
			json_object_del(meta, empty[i]);
	return json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
}

/* A newer kubectl (kustomize 5) renders the same objects; only the hash suffixes differ. */
static void subtest_newer_kubectl(void)
{
	char out[4096], yaml[512], other[600];
	json_t *a, *b, *d;
	size_t i, j;
	int missing = 0;

	if (netns_run(NULL, out, sizeof(out), "kubectl version --client 2>&1") ||
	    strstr(out, "v1.20.")) {
		test__skip("no other kubectl on PATH");
		return;
	}
	for (size_t o = 0; o < N_OVERLAYS; o++) {
		if (!ASSERT_OK(render(NULL, overlays[o], yaml, sizeof(yaml)), "1.20"))
			continue;
		snprintf(other, sizeof(other), "%s.new.yaml", yaml);
		if (!ASSERT_OK(netns_run(NULL, out, sizeof(out),
					 "kubectl kustomize deploy/k8s/overlays/%s 2>/dev/null | "
					 "sed -E 's/-[a-z0-9]{10}$/-HASH/' > %s && "
					 "sed -i -E 's/-[a-z0-9]{10}$/-HASH/' %s",
					 overlays[o], other, yaml),
			       "newer kubectl renders"))
			continue;
		a = load_docs(yaml);
		b = load_docs(other);
		ASSERT_EQ(json_array_size(a), json_array_size(b), "same number of objects");
		json_array_foreach(a, i, d)
		{
			char *s = canon(d);
			bool found = false;
			json_t *e;

			json_array_foreach(b, j, e)
			{
				char *t = canon(e);

				found |= !strcmp(s, t);
				free(t);
			}
			if (!found && missing++ < 3)
				printf("%s: only 1.20 renders %s\n", overlays[o], s);
			free(s);
		}
		json_decref(a);
		json_decref(b);
	}
	ASSERT_EQ(missing, 0, "identical objects");
}

/* The value of "--name=VALUE" among a container's args, or NULL. */
static const char *arg_value(json_t *c, const char *name)
{
	size_t i, n = strlen(name);
	json_t *a;

	json_array_foreach(json_object_get(c, "args"), i, a)
	{
		const char *s = json_string_value(a);

		if (s && !strncmp(s, "--", 2) && !strncmp(s + 2, name, n) && s[2 + n] == '=')
			return s + 3 + n;
	}
	return NULL;
}

/* HTTPS in every overlay: --tls-listen on a port the pod declares (container and host
 * port), certificate and key read from a read-only mount of a kubernetes.io/tls Secret that
 * is referenced, not committed, and whose files kubelet keeps updating (no subPath), with
 * --tls-watch-s so sluiced reloads a rotated one by itself. The documented
 * `kubectl create secret tls` step makes a Secret the schema accepts, in the DaemonSet's
 * namespace, with the keys the volume asks for. */
static void subtest_tls_secret(void)
{
	char cmd_out[8192], secret[600], crt[600], key[600];
	const char *t = test__tmpdir();
	json_t *made = NULL;

	snprintf(crt, sizeof(crt), "%s/tls-cert.pem", t);
	snprintf(key, sizeof(key), "%s/tls-key.pem", t);
	snprintf(secret, sizeof(secret), "%s/secret-tls.yaml", t);
	if (!ASSERT_OK(netns_run(NULL, cmd_out, sizeof(cmd_out),
				 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
				 "-nodes -days 1 -subj /CN=ingress.example -keyout %s -out %s "
				 "2>&1 && " KUBECTL120 " -n sluice-ingress create secret tls "
				 "sluice-tls --cert=%s --key=%s --dry-run=client -o yaml > %s",
				 key, crt, crt, key, secret),
		       "kubectl create secret tls, offline") ||
	    !ASSERT_OK(
		netns_run(NULL, cmd_out, sizeof(cmd_out), "node " K8S_TOOL " validate %s", secret),
		"that Secret is valid"))
		printf("%s\n", cmd_out);
	made = load_docs(secret);
	ASSERT_STREQ(str_at(made, "0.type"), "kubernetes.io/tls", "its type");
	for (size_t o = 0; o < N_OVERLAYS; o++) {
		json_t *docs = render_docs(NULL, overlays[o]), *ds, *c, *vol, *m = NULL, *port;
		const char *listen, *cert, *tkey, *mount = NULL, *colon;
		char want[300];
		size_t i;

		if (!ASSERT_OK_PTR(docs, overlays[o]))
			continue;
		ds = find_doc(docs, "DaemonSet", "sluice-ingress");
		c = find_named(at(ds, "spec.template.spec.containers"), "sluiced");
		listen = arg_value(c, "tls-listen");
		cert = arg_value(c, "tls-cert");
		tkey = arg_value(c, "tls-key");
		if (!ASSERT_OK_PTR(listen, "--tls-listen passed") ||
		    !ASSERT_OK_PTR(cert, "--tls-cert passed") ||
		    !ASSERT_OK_PTR(tkey, "--tls-key passed"))
			goto next;
		ASSERT_GT(atoll(arg_value(c, "tls-watch-s") ?: "0"), 0,
			  "--tls-watch-s: a rotated Secret is reloaded without a restart");
		colon = strrchr(listen, ':');
		port = find_named(json_object_get(c, "ports"), "https");
		ASSERT_EQ(int_at(port, "containerPort"), colon ? atoll(colon + 1) : -2,
			  "the TLS port is a container port");
		ASSERT_EQ(int_at(port, "hostPort"), int_at(port, "containerPort"),
			  "and the host port (host network)");
		vol = find_named(at(ds, "spec.template.spec.volumes"), "tls");
		ASSERT_STREQ(str_at(vol, "secret.secretName"), str_at(made, "0.metadata.name"),
			     "the volume is the Secret the documented command makes");
		ASSERT_STREQ(str_at(made, "0.metadata.namespace"), str_at(ds, "metadata.namespace"),
			     "in the DaemonSet's namespace");
		ASSERT_EQ(json_array_size(at(vol, "secret.items")), 2, "two files from it");
		json_array_foreach(json_object_get(c, "volumeMounts"), i, m)
		{
			if (!strcmp(str_at(m, "name") ?: "", "tls")) {
				mount = str_at(m, "mountPath");
				ASSERT_TRUE(json_is_true(json_object_get(m, "readOnly")),
					    "read-only");
				ASSERT_FALSE(json_object_get(m, "subPath") != NULL,
					     "no subPath (kubelet would not update it)");
			}
		}
		if (!ASSERT_OK_PTR(mount, "the Secret is mounted"))
			goto next;
		json_array_foreach(at(vol, "secret.items"), i, m)
		{
			const char *k = str_at(m, "key") ?: "?";
			bool is_key = !strcmp(k, "tls.key");

			ASSERT_OK_PTR(json_object_get(at(made, "0.data"), k),
				      "a key kubernetes.io/tls Secrets have");
			snprintf(want, sizeof(want), "%s/%s", mount, str_at(m, "path") ?: "?");
			ASSERT_STREQ(is_key ? tkey : cert, want,
				     is_key ? "--tls-key is the mounted tls.key"
					    : "--tls-cert is the mounted tls.crt");
		}
	next:
		json_decref(docs);
	}
	json_decref(made);
}

void test_deploy_k8s(void)
{
	if (!tools_present())
		return;
	if (test__start_subtest("render_validate"))
		subtest_render_validate();
	if (test__start_subtest("validate_negative_control"))
		subtest_validate_negative();
	if (test__start_subtest("generated_up_to_date"))
		subtest_generated();
	if (test__start_subtest("least_privilege"))
		subtest_least_privilege();
	if (test__start_subtest("service_accounts_no_secrets"))
		subtest_service_accounts();
	if (test__start_subtest("pdb_vs_min_replicas"))
		subtest_pdb_vs_min_replicas();
	if (test__start_subtest("network_policies"))
		subtest_network_policies();
	if (test__start_subtest("config_reload"))
		subtest_config_reload();
	if (test__start_subtest("flags_exist"))
		subtest_flags_exist();
	if (test__start_subtest("keda_matches_workers"))
		subtest_keda_matches_workers();
	if (test__start_subtest("newer_kubectl_same_objects"))
		subtest_newer_kubectl();
	if (test__start_subtest("tls_secret"))
		subtest_tls_secret();
}
