/* SPDX-License-Identifier: MIT */
/* cdeny.h -- the deny list cluster-wide: an auto-deny on one node reaches every node's deny map
 *
 * When --deny-after puts a source on this node's deny list (admission.c), the request's
 * thread only queues it here (cdeny_note: a small ring, never blocking; a full ring drops
 * and counts). On the cluster thread (lib/cluster.h, every --lease-period-ms) the hook
 * appends the queued denies to one Redis stream, sluice:cluster:deny (XADD MAXLEN ~ 10000:
 * fields node, addr as 32 hex digits, until_ms on the wall clock), then reads what was
 * added since its last id (XREAD, no blocking) and puts every other node's source on this
 * node's deny list (admission_deny: the userspace list and the XDP deny map) for what is
 * left of its deadline. A node that starts reads the stream from the beginning, so it gets
 * the denies still running. Deadlines are wall clock: nodes' clocks are assumed in sync
 * to well under the deny time (NTP).
 */
#ifndef SLUICE_CDENY_H
#define SLUICE_CDENY_H

#include <stdbool.h>
#include <stdint.h>

struct admission;
struct cluster;
struct metrics;
struct sluice_addr;

#define CDENY_STREAM_MAXLEN 10000
#define CDENY_RING	    256

struct cdeny_stats {
	uint64_t sent;	   /* this node's denies appended to the stream */
	uint64_t received; /* other nodes' denies put on this node's list */
	uint64_t dropped;  /* queue full, or Redis did not take them */
};

/* cl, adm and m are borrowed; m may be NULL (no metrics). Registers itself with
 * admission_on_auto_deny and cluster_add_hook (before cluster_run). NULL + errno. */
struct cdeny *cdeny_new(struct cluster *cl, struct admission *adm, struct metrics *m);
/* After the cluster thread stopped. NULL-safe. */
void cdeny_free(struct cdeny *c);

/* The admission hook (any thread, never blocks). */
void cdeny_note(void *arg, const struct sluice_addr *peer, unsigned secs);
/* One round on the cluster thread: send what is queued, copy what others sent. */
void cdeny_hook(struct cluster *cl, bool up, void *arg);
void cdeny_stats(struct cdeny *c, struct cdeny_stats *out);

#endif /* SLUICE_CDENY_H */
