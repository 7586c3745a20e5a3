// SPDX-License-Identifier: MIT
/* tenants_name.c -- the one rule for tenant names, for the tenants file and sluicectl alike
 *
 * A name travels into Redis keys, metric labels, logfmt lines and queue records, so it is
 * held to bytes none of them treat specially: letters, digits, '.', '_' and '-', starting
 * with a letter or digit ("acme:eu" once shared acme's duplicate keys). "none" and
 * "anonymous" are sluicectl's names for the two reserved slots. Its own file, so that
 * sluicectl can use it without the tenants file parser (inih) behind it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admit/tenants.h"

int tenants_name_check(const char *name, char *why, size_t len)
{
	size_t n = strlen(name);

	if (!n || n >= SLUICE_NAME_LEN) {
		snprintf(why, len, "%s (1-%d characters)", n ? "too long" : "empty",
			 SLUICE_NAME_LEN - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');

		if (!alnum && (!i || !strchr("._-", ch))) {
			snprintf(
			    why, len,
			    "only letters, digits, '.', '_' and '-' are allowed, starting with "
			    "a letter or digit");
			return -EINVAL;
		}
	}
	if (!strcmp(name, "none") || !strcmp(name, "anonymous")) {
		snprintf(why, len, "reserved: sluicectl names slot %d so",
			 strcmp(name, "none") ? SLUICE_SLOT_ANON : SLUICE_SLOT_NONE);
		return -EINVAL;
	}
	return 0;
}
