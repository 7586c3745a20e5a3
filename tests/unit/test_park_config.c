// SPDX-License-Identifier: MIT
/* test_park_config.c -- park.* and release.* settings of an upstream: defaults, errors, and
 * the release ramp they give */
#include <errno.h>

#include "test_progs.h"
#include "work/release.h"

#define MS 1000000ULL

void test_park_config(void)
{
	struct park_config c;
	char err[160] = "";

	park_config_default(&c);
	ASSERT_EQ(c.after_ns, 5000 * MS, "park.after_ms 5 s");
	ASSERT_EQ(c.max, 100000, "park.max");
	ASSERT_EQ(c.ramp_ns, 30000 * MS, "release.ramp_ms 30 s");
	ASSERT_EQ(c.rate_max, 50, "release.rate_max");
	ASSERT_OK(park_config_set(&c, "park.after_ms", "250", err, sizeof(err)), "after");
	ASSERT_EQ(c.after_ns, 250 * MS, "in ns");
	ASSERT_OK(park_config_set(&c, "release.ramp_ms", "0", err, sizeof(err)), "no ramp");
	ASSERT_EQ(park_config_set(&c, "release.rate_max", "0", err, sizeof(err)), -EINVAL,
		  "rate 0 refused");
	ASSERT_HAS_STR(err, "release.rate_max = 0", "names the input");
	ASSERT_EQ(park_config_set(&c, "park.later", "1", err, sizeof(err)), -ENOENT, "unknown");

	/* the ramp: slow start over ramp_ms after the breaker closes */
	park_config_default(&c);
	ASSERT_NEAR_PCT(release_ramp_rate(&c, 0), 2.5, 1, "5 % of 50/s at once");
	ASSERT_NEAR_PCT(release_ramp_rate(&c, 15000 * MS), 25, 1, "half way: half the rate");
	ASSERT_NEAR_PCT(release_ramp_rate(&c, 30000 * MS), 50, 1, "rate_max at ramp_ms");
	ASSERT_NEAR_PCT(release_ramp_rate(&c, 3600000 * MS), 50, 1, "and not above");
	c.ramp_ns = 0;
	ASSERT_NEAR_PCT(release_ramp_rate(&c, 0), 50, 1, "no ramp: rate_max at once");
}
