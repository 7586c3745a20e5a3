// SPDX-License-Identifier: MIT
/* breaker_noise.c -- how often does the real breaker open on random failures alone?
 *
 *   breaker-noise [--calls 600] [--runs 4000]
 *
 * For each window/minimum pair and failure rate, runs the breaker
 * (user/sink/upstream/breaker.c, on a fake clock, default thresholds otherwise) over `calls`
 * calls that each fail with the
 * given probability, and prints the fraction of runs in which it ever opened, plus how
 * many failed calls it needs to open when the upstream is down. This is the table in
 * docs/upstreams.md ("Window and minimum calls: noise against speed").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array_size.h"
#include "sink/upstream/breaker.h"
#include "sink/upstream/retry.h"

static uint64_t fake_now(void *ctx)
{
	return *(uint64_t *)ctx;
}

/* 1 when a run of n calls failing with probability p opened the breaker. */
static int opens(const struct breaker_config *cfg, double p, int n)
{
	uint64_t now = 1000000000ULL;
	struct breaker *b = breaker_new("noise", cfg, fake_now, &now, NULL, NULL);
	struct breaker_permit permit;
	int opened = 0;

	for (int i = 0; b && i < n && !opened; i++) {
		bool failed = (double)(retry_rand() >> 11) / 9007199254740992.0 < p;

		now += 1000000; /* 1 ms apart: a count window does not care */
		if (breaker_acquire(b, &permit)) {
			opened = 1;
			break;
		}
		breaker_record(b, &permit, failed, 1000);
		opened = breaker_state(b) == BREAKER_OPEN;
	}
	breaker_free(b);
	return opened;
}

static int calls_to_open(const struct breaker_config *cfg)
{
	int n = 0;

	while (n < 100000 && !opens(cfg, 1.0, n))
		n++;
	return n;
}

int main(int argc, char **argv)
{
	static const int pairs[][2] = {{20, 10},  {50, 20},  {100, 20},
				       {100, 40}, {100, 50}, {100, 100}};
	static const double rates[] = {0.2, 0.3, 0.4};
	int calls = 600, runs = 4000;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--calls"))
			calls = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	if (calls < 1 || runs < 1)
		return fprintf(stderr, "breaker-noise: --calls and --runs must be >= 1\n"), 2;
	printf("breaker opens on noise alone: %d calls, %d runs, threshold 50 %%\n", calls, runs);
	printf("%-16s %14s", "window/minimum", "calls to open");
	for (size_t r = 0; r < ARRAY_SIZE(rates); r++)
		printf("  at %2.0f %% fail", rates[r] * 100);
	printf("\n");
	for (size_t k = 0; k < ARRAY_SIZE(pairs); k++) {
		struct breaker_config cfg;

		breaker_config_default(&cfg);
		cfg.window_size = (uint32_t)pairs[k][0];
		cfg.minimum_calls = (uint32_t)pairs[k][1];
		printf("%6d / %-7d %14d", pairs[k][0], pairs[k][1], calls_to_open(&cfg));
		for (size_t r = 0; r < ARRAY_SIZE(rates); r++) {
			int n = 0;

			for (int i = 0; i < runs; i++)
				n += opens(&cfg, rates[r], calls);
			printf("  %11.2f %%", 100.0 * n / runs);
		}
		printf("\n");
	}
	return 0;
}
