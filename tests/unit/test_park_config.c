// SPDX-License-Identifier: MIT
/* test_park_config.c -- park.* and release.* settings of an upstream: defaults, errors */
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
}
