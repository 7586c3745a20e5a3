/* SPDX-License-Identifier: MIT */
/* ticker.h -- a thread that calls one function every period until stopped
 *
 * The period is measured from the start of one call to the start of the next (CLOCK_MONOTONIC),
 * so a slow call delays the next one but does not shift the schedule for ever; a call that
 * overruns a whole period is followed at once by the next (missed ticks are not replayed).
 * ticker_stop() wakes the thread at once, waits for the call in progress and joins it.
 */
#ifndef SLUICE_TICKER_H
#define SLUICE_TICKER_H

#include <stdint.h>

struct ticker;
typedef void ticker_fn(void *arg);

/* Start a thread calling fn(arg) now and then every period_ns (> 0). NULL with errno set. */
struct ticker *ticker_start(uint64_t period_ns, ticker_fn *fn, void *arg);
/* Stop and join; fn is not called again once this returns. NULL-safe. */
void ticker_stop(struct ticker *t);

#endif /* SLUICE_TICKER_H */
