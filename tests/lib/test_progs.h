/* SPDX-License-Identifier: MIT */
/* test_progs.h -- a test_progs-style runner: discovery, subtests, ASSERT_* that return bool
 *
 * A test is any `void test_<name>(void)` in tests/{prog_tests,unit,integration,scenario};
 * the build greps them into a table. Each test runs in a forked child with its stdout and
 * stderr captured; the capture is shown only when something failed (or with -v). Inside
 * a test, test__start_subtest("x") opens subtest "name/x" (false when filtered out) and
 * test__skip("why") marks the current (sub)test skipped with a reason. ASSERT_* print
 * file:line and both values on failure and return false, so the idiom is
 *	if (!ASSERT_OK(err, "load")) goto out;
 */
#ifndef SLUICE_TEST_PROGS_H
#define SLUICE_TEST_PROGS_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

bool test__start_subtest(const char *name);
void test__skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void test__fail(void);
/* root, and a BPF filesystem at /sys/fs/bpf (mounted when missing); skips when not */
bool test__require_root(void);
bool test__bpffs(void);
/* path of a fresh scratch directory for this test (removed afterwards) */
const char *test__tmpdir(void);
/* the build directory (binaries such as sluicectl and pktgen live there) */
const char *test__outdir(void);
extern bool test__verbose;

#define _CHECK(cond, tag, fmt, ...)                                                                \
	({                                                                                         \
		bool ___ok = !(cond);                                                              \
		if (!___ok) {                                                                      \
			test__fail();                                                              \
			fprintf(stdout, "%s:%d: FAIL: %s: " fmt "\n", __FILE__, __LINE__, tag,     \
				##__VA_ARGS__);                                                    \
		} else if (test__verbose) {                                                        \
			fprintf(stdout, "%s:%d: ok: %s\n", __FILE__, __LINE__, tag);               \
		}                                                                                  \
		___ok;                                                                             \
	})

#define ASSERT_TRUE(a, name)  _CHECK(!(a), (name), "unexpected false")
#define ASSERT_FALSE(a, name) _CHECK((a), (name), "unexpected true")

#define _ASSERT_CMP(a, b, op, name)                                                                \
	({                                                                                         \
		__typeof__(a) ___a = (a);                                                          \
		__typeof__(b) ___b = (b);                                                          \
		_CHECK(!(___a op ___b), (name), "%s %s %s: %lld vs %lld (0x%llx vs 0x%llx)", #a,   \
		       #op, #b, (long long)___a, (long long)___b, (unsigned long long)___a,        \
		       (unsigned long long)___b);                                                  \
	})

#define ASSERT_EQ(a, b, name)  _ASSERT_CMP(a, b, ==, name)
#define ASSERT_NEQ(a, b, name) _ASSERT_CMP(a, b, !=, name)
#define ASSERT_LT(a, b, name)  _ASSERT_CMP(a, b, <, name)
#define ASSERT_LE(a, b, name)  _ASSERT_CMP(a, b, <=, name)
#define ASSERT_GT(a, b, name)  _ASSERT_CMP(a, b, >, name)
#define ASSERT_GE(a, b, name)  _ASSERT_CMP(a, b, >=, name)

/* |a - b| <= b * pct / 100 */
#define ASSERT_NEAR_PCT(a, b, pct, name)                                                           \
	({                                                                                         \
		double ___a = (double)(a), ___b = (double)(b);                                     \
		double ___d = ___a > ___b ? ___a - ___b : ___b - ___a;                             \
		_CHECK(___d > ___b * (pct) / 100.0, (name), "%s = %.1f not within %g%% of %.1f",   \
		       #a, ___a, (double)(pct), ___b);                                             \
	})

#define ASSERT_STREQ(a, b, name)                                                                   \
	({                                                                                         \
		const char *___sa = (a), *___sb = (b);                                             \
		_CHECK(!___sa || !___sb || strcmp(___sa, ___sb), (name), "\"%s\" != \"%s\"",       \
		       ___sa ? ___sa : "(null)", ___sb ? ___sb : "(null)");                        \
	})

#define ASSERT_HAS_STR(hay, needle, name)                                                          \
	({                                                                                         \
		const char *___h = (hay), *___n = (needle);                                        \
		_CHECK(!___h || !strstr(___h, ___n), (name), "\"%s\" not found in \"%.400s\"",     \
		       ___n, ___h ? ___h : "(null)");                                              \
	})

/* exactly 0 is success; a negative value is printed as -errno */
#define ASSERT_OK(res, name)                                                                       \
	({                                                                                         \
		long long ___r = (res);                                                            \
		_CHECK(___r != 0, (name), "error %lld (%s)", ___r,                                 \
		       ___r < 0 ? strerror((int)-___r) : "");                                      \
	})

#define ASSERT_ERR(res, name)                                                                      \
	({                                                                                         \
		long long ___r = (res);                                                            \
		_CHECK(___r >= 0, (name), "unexpected success: %lld", ___r);                       \
	})

#define ASSERT_OK_PTR(p, name)                                                                     \
	({                                                                                         \
		const void *___p = (p);                                                            \
		_CHECK(!___p, (name), "unexpected NULL (errno %d: %s)", errno, strerror(errno));   \
	})

#endif /* SLUICE_TEST_PROGS_H */
