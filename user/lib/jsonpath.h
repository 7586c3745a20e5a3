/* SPDX-License-Identifier: MIT */
/* jsonpath.h -- look up a dotted path ("company.size") in nested JSON objects
 *
 * Shared by the lead-scoring model (payload features), the fallback cache key and the
 * upstream answer reader (score field). Only object members: no arrays, no escapes; a
 * path segment is at most 63 bytes. Returns a borrowed reference or NULL.
 */
#ifndef SLUICE_JSONPATH_H
#define SLUICE_JSONPATH_H

#include <jansson.h>
#include <string.h>

static inline json_t *json_path_get(const json_t *obj, const char *path)
{
	char part[64];

	while (obj && *path) {
		size_t len = strcspn(path, ".");

		if (!json_is_object(obj) || len >= sizeof(part))
			return NULL;
		memcpy(part, path, len);
		part[len] = 0;
		obj = json_object_get(obj, part);
		path += len + (path[len] == '.');
	}
	return (json_t *)obj;
}

#endif /* SLUICE_JSONPATH_H */
