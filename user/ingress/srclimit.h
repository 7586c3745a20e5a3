/* SPDX-License-Identifier: MIT */
/* srclimit.h -- open connections per source address, so one address cannot take all of
 * --max-conns
 *
 * One table shared by every ingress thread (a source's connections land on any thread:
 * SO_REUSEPORT spreads them by 4-tuple), behind one mutex taken twice per connection (at
 * accept and at close). Only sources with open connections have an entry, so it holds at
 * most --max-conns entries and grows on demand. Exemptions (a tenant's configured sources:
 * a load balancer or a NAT carries many clients) are the caller's decision.
 */
#ifndef SLUICE_INGRESS_SRCLIMIT_H
#define SLUICE_INGRESS_SRCLIMIT_H

#include <linux/types.h>

#include "sluice/abi.h"

struct srclimit;

/* A table allowing max connections per source (max >= 1). NULL + errno. */
struct srclimit *srclimit_new(unsigned max);
/* NULL is a no-op. */
void srclimit_free(struct srclimit *s);
/* Count one more connection from a. 0, -EBUSY when a already has max (nothing counted),
 * or -ENOMEM when the table cannot grow (nothing counted). */
int srclimit_acquire(struct srclimit *s, const struct sluice_addr *a);
/* One connection from a, counted by srclimit_acquire(), has closed. */
void srclimit_release(struct srclimit *s, const struct sluice_addr *a);
/* Open connections of a (0 when none). */
unsigned srclimit_count(struct srclimit *s, const struct sluice_addr *a);

#endif /* SLUICE_INGRESS_SRCLIMIT_H */
