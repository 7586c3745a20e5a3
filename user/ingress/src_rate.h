/* SPDX-License-Identifier: MIT */
/* src_rate.h -- a rate per source address (TLS handshakes per client), shared by all threads
 *
 * A fixed table of GCRA states keyed by source address (gcra.h, burst = one second's worth).
 * A source is looked up in a window of 8 slots after its hash; a new source takes a free
 * slot in the window or the one idle longest, so memory is bounded whatever the number of
 * sources, and a flood of distinct addresses only forgets the quietest ones.
 */
#ifndef SLUICE_SRC_RATE_H
#define SLUICE_SRC_RATE_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

#include "sluice/abi.h"

struct src_rate;

/* rate events per second and source (> 0), over slots sources (rounded up to a power of
 * two). NULL + errno. */
struct src_rate *src_rate_new(unsigned rate, unsigned slots);
void src_rate_free(struct src_rate *r);
/* One event from src at now (CLOCK_MONOTONIC ns): true while within the rate. */
bool src_rate_pass(struct src_rate *r, const struct sluice_addr *src, uint64_t now);

#endif /* SLUICE_SRC_RATE_H */
