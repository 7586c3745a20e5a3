// SPDX-License-Identifier: MIT
/* consumer_parts.c -- the Kafka consumer's partition table: class of a topic, partition
 * lookup and creation (a leaf under consumer.c, consumer_group.c and consumer_stats.c)
 *
 * parts[c] is indexed by partition number and grows (doubling) as partitions are assigned;
 * a partition stays in the table once seen, assigned or not. Callers hold k->lock.
 */
#include <stdlib.h>
#include <string.h>

#include "queue/kafka/consumer_int.h"

int kconsumer_class(const struct kconsumer *k, const char *topic)
{
	for (int c = 0; c < QUEUE_CLASS_MAX; c++)
		if (!strcmp(k->topics[c], topic))
			return c;
	return -1;
}

struct kpart *kconsumer_part(struct kconsumer *k, uint32_t c, int32_t p)
{
	return c < QUEUE_CLASS_MAX && p >= 0 && p < k->nparts[c] ? k->parts[c][p] : NULL;
}

struct kpart *kconsumer_part_get(struct kconsumer *k, uint32_t c, int32_t p)
{
	struct kpart *kp = kconsumer_part(k, c, p);

	if (kp)
		return kp;
	if (p >= k->nparts[c]) {
		int32_t n = p + 1 > 2 * k->nparts[c] ? p + 1 : 2 * k->nparts[c];
		struct kpart **a = realloc(k->parts[c], (size_t)n * sizeof(*a));

		if (!a)
			return NULL;
		memset(a + k->nparts[c], 0, (size_t)(n - k->nparts[c]) * sizeof(*a));
		k->parts[c] = a;
		k->nparts[c] = n;
	}
	kp = calloc(1, sizeof(*kp));
	if (!kp)
		return NULL;
	kp->class = c;
	kp->partition = p;
	kp->sent = kp->lag = kp->committed = kp->high = -1;
	kafka_offsets_init(&kp->t);
	k->parts[c][p] = kp;
	return kp;
}
