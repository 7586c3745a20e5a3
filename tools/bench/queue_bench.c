// SPDX-License-Identifier: MIT
/* queue_bench.c -- durable queue throughput against the disk's own write+fdatasync limit
 *
 * Run 1 (the system): P producer threads append events to a journal (each keeping W appends
 * outstanding, as many HTTP clients would), a pool_set feeds them to a worker pool whose
 * handler acks at once: msgs/s durable and fully processed (append -> fdatasync -> dispatch
 * -> ack) and the enqueue-to-durable latency (p50/p99).
 * Run 2 (the anchor, same disk, same run): a plain loop writing G records of the same size
 * and one fdatasync per group, G = the mean batch the journal achieved in run 1. That is the
 * most this disk allows at that group size; the ratio is what the journal keeps of it.
 * Run 3: the dispatcher alone (push/pop over 1,000 tenants x 3 classes) against DESIGN.md's
 * 50,000 msg/s queue target.
 *
 * Journal and anchor alternate for --rounds rounds; medians and the median ratio are printed.
 *
 *	queue_bench [--dir DIR] [--seconds S] [--rounds N] [--producers P] [--window W]
 *		    [--size BYTES]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "lib/clock.h"
#include "work/dispatch.h"
#include "lib/log.h"
#include "work/pool.h"
#include "queue/journal/journal.h"

struct opts {
	const char *dir;
	double seconds;
	int producers, window, rounds;
	uint32_t size;
};

/* One producer: W appends in flight; latencies (ns) of completed appends in lat[]. */
struct producer {
	struct queue *q;
	const struct opts *o;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int outstanding;
	uint64_t sent, ok, failed, deadline;
	uint64_t *lat;
	size_t nlat, cap;
};

struct pending {
	struct producer *p;
	uint64_t t0;
};

static void on_durable(void *arg, int err, uint64_t id)
{
	struct pending *pd = arg;
	struct producer *p = pd->p;
	uint64_t dt = clock_mono_ns() - pd->t0;

	pthread_mutex_lock(&p->lock);
	if (err) {
		p->failed++;
	} else {
		p->ok++;
		if (p->nlat < p->cap)
			p->lat[p->nlat++] = dt;
	}
	/* wake the producer only when half its window is free: fewer wakeups, as an io_uring
	 * loop draining an eventfd once per batch would see them */
	if (--p->outstanding == p->o->window / 2 || !p->outstanding)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
	free(pd);
}

static void *producer_run(void *arg)
{
	struct producer *p = arg;
	char *buf = malloc(p->o->size);
	struct queue_rec r = {.len = p->o->size, .data = buf};

	memset(buf, 'e', p->o->size);
	for (uint64_t i = 0; i % 64 || clock_mono_ns() < p->deadline; i++) {
		struct pending *pd = malloc(sizeof(*pd));

		pthread_mutex_lock(&p->lock);
		while (p->outstanding >= p->o->window)
			pthread_cond_wait(&p->cv, &p->lock);
		p->outstanding++;
		pthread_mutex_unlock(&p->lock);
		r.class = (uint32_t)(i % 3);
		r.tenant = (uint32_t)(i % 1000);
		*pd = (struct pending){.p = p, .t0 = clock_mono_ns()};
		if (queue_append(p->q, &r, on_durable, pd)) {
			free(pd);
			pthread_mutex_lock(&p->lock);
			p->outstanding--;
			p->failed++;
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		p->sent++;
	}
	pthread_mutex_lock(&p->lock);
	while (p->outstanding)
		pthread_cond_wait(&p->cv, &p->lock);
	pthread_mutex_unlock(&p->lock);
	free(buf);
	return NULL;
}

static enum pool_verdict ack_now(void *arg, struct pool *p, struct queue_entry *e)
{
	return POOL_ACK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double durable_per_s, done_per_s, mean_batch, fsyncs_per_s, p50_ms, p99_ms;
};

/* Wait until the pool finished `want` entries or 10 s passed. */
static void wait_done(struct pool_set *s, uint64_t want)
{
	uint64_t until = clock_mono_ns() + 10000000000ull;

	while (pool_set_done(s) < want && clock_mono_ns() < until)
		usleep(1000);
}

static int run_journal(const struct opts *o, struct result *res)
{
	struct journal_cfg jc = {.dir = o->dir};
	struct pool_cfg pc = {
	    .name = "bench", .threads = 2, .max_inflight = 1024, .handler = ack_now};
	struct producer *pr = calloc(o->producers, sizeof(*pr));
	struct queue *q = journal_open(&jc);
	struct pool *pool = q ? pool_new(&pc, q) : NULL;
	struct pool_set_cfg sc = {.queue = q, .pools = &pool, .npools = 1};
	struct pool_set *set = pool ? pool_set_new(&sc) : NULL;
	pthread_t *th = calloc(o->producers, sizeof(*th));
	uint64_t t0, t1, ok = 0, failed = 0, *all, n = 0;
	struct queue_stats st;

	if (!set || !pr || !th) {
		fprintf(stderr, "queue_bench: --dir %s: cannot set up the journal: %s\n", o->dir,
			strerror(errno));
		return -1;
	}
	t0 = clock_mono_ns();
	for (int i = 0; i < o->producers; i++) {
		pr[i] = (struct producer){
		    .q = q, .o = o, .deadline = t0 + (uint64_t)(o->seconds * 1e9), .cap = 4u << 20};
		pthread_mutex_init(&pr[i].lock, NULL);
		pthread_cond_init(&pr[i].cv, NULL);
		pr[i].lat = malloc(pr[i].cap * sizeof(uint64_t));
		pthread_create(&th[i], NULL, producer_run, &pr[i]);
	}
	for (int i = 0; i < o->producers; i++) {
		pthread_join(th[i], NULL);
		ok += pr[i].ok;
		failed += pr[i].failed;
	}
	wait_done(set, ok);
	t1 = clock_mono_ns();
	queue_stats(q, &st);
	all = malloc((ok + 1) * sizeof(*all));
	for (int i = 0; i < o->producers; i++) {
		memcpy(all + n, pr[i].lat, pr[i].nlat * sizeof(*all));
		n += pr[i].nlat;
		free(pr[i].lat);
	}
	qsort(all, n, sizeof(*all), cmp_u64);
	res->durable_per_s = ok / ((t1 - t0) / 1e9);
	res->done_per_s = pool_set_done(set) / ((t1 - t0) / 1e9);
	res->mean_batch = st.fsyncs ? (double)st.durable / st.fsyncs : 0;
	res->fsyncs_per_s = st.fsyncs / ((t1 - t0) / 1e9);
	res->p50_ms = n ? all[n / 2] / 1e6 : 0;
	res->p99_ms = n ? all[n * 99 / 100] / 1e6 : 0;
	if (failed)
		fprintf(stderr, "queue_bench: %llu appends failed\n", (unsigned long long)failed);
	pool_set_free(set);
	pool_free(pool);
	queue_free(q);
	free(all);
	free(pr);
	free(th);
	return 0;
}

/* The anchor: G records of (header + size) bytes per write+fdatasync, for `seconds`. */
static double run_raw(const struct opts *o, int group)
{
	char path[4096];
	size_t rec = o->size + 40, len = rec * (size_t)group;
	char *buf = malloc(len);
	uint64_t t0 = clock_mono_ns(), deadline = t0 + (uint64_t)(o->seconds * 1e9), recs = 0;
	off_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/raw-anchor", o->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !buf) {
		fprintf(stderr, "queue_bench: %s: %s\n", path, strerror(errno));
		free(buf);
		return 0;
	}
	memset(buf, 'r', len);
	while (clock_mono_ns() < deadline) {
		if (pwrite(fd, buf, len, off) != (ssize_t)len || fdatasync(fd) < 0)
			break;
		off += (off_t)len;
		recs += (uint64_t)group;
		if (off > (off_t)(256 << 20)) { /* stay small on disk, like rotated segments */
			off = 0;
			ftruncate(fd, 0);
		}
	}
	close(fd);
	unlink(path);
	free(buf);
	return recs / ((clock_mono_ns() - t0) / 1e9);
}

/* The dispatcher alone: push one, pop one, over 1,000 tenants and 3 classes. */
static double run_dispatch(double seconds)
{
	struct dispatch d;
	struct queue_entry *ents = calloc(100000, sizeof(*ents));
	uint64_t n = 0, t0 = clock_mono_ns(), deadline = t0 + (uint64_t)(seconds * 1e9), now = 1;

	dispatch_init(&d, NULL);
	for (int i = 0; i < 100000; i++) {
		ents[i] = (struct queue_entry){.class = i % 3, .tenant = i % 1000, .enq_ns = 1};
		dispatch_push(&d, &ents[i], now);
	}
	while (clock_mono_ns() < deadline) {
		for (int k = 0; k < 10000; k++, n++) {
			struct queue_entry *e = dispatch_pop(&d, ++now, DISPATCH_ALL_CLASSES);

			dispatch_push(&d, e, now);
		}
	}
	n = (uint64_t)(n / ((clock_mono_ns() - t0) / 1e9));
	dispatch_fini(&d);
	free(ents);
	return (double)n;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"dir", 1, 0, 'd'},	   {"seconds", 1, 0, 's'}, {"producers", 1, 0, 'p'},
	    {"window", 1, 0, 'w'}, {"size", 1, 0, 'b'},	   {"rounds", 1, 0, 'r'},
	    {0, 0, 0, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->dir = optarg;
			break;
		case 's':
			o->seconds = atof(optarg);
			break;
		case 'p':
			o->producers = atoi(optarg);
			break;
		case 'w':
			o->window = atoi(optarg);
			break;
		case 'b':
			o->size = (uint32_t)atoi(optarg);
			break;
		case 'r':
			o->rounds = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: queue_bench [--dir DIR] [--seconds S] [--rounds N] "
					"[--producers P] [--window W] [--size BYTES]\n");
			return -1;
		}
	}
	if (o->seconds <= 0 || o->producers < 1 || o->window < 1 || o->size < 1 ||
	    o->size > (1u << 20) || o->rounds < 1 || o->rounds > 16) {
		fprintf(stderr, "queue_bench: --seconds > 0, --producers >= 1, --window >= 1, "
				"--size 1..1048576, --rounds 1..16 expected\n");
		return -1;
	}
	return 0;
}

/* Journal and anchor alternate, round after round, so a noisy neighbour on the shared disk
 * or CPU hits both; the ratio reported is the median of the per-round ratios. */
static int run_rounds(const struct opts *o)
{
	double ratio[16] = {0}, done[16] = {0}, raw[16] = {0}, p99[16] = {0};

	for (int i = 0; i < o->rounds; i++) {
		struct result r;
		int group;

		if (run_journal(o, &r))
			return -1;
		group = r.mean_batch >= 1 ? (int)(r.mean_batch + 0.5) : 1;
		raw[i] = run_raw(o, group);
		done[i] = r.done_per_s;
		p99[i] = r.p99_ms;
		ratio[i] = raw[i] > 0 ? r.done_per_s / raw[i] : 0;
		printf(
		    "round %d: journal %.0f msgs/s durable+dispatched+acked (durable %.0f), "
		    "append->durable p50 %.2f ms p99 %.2f ms, %.0f fdatasync/s, mean batch %.1f; "
		    "anchor write+fdatasync group %d: %.0f msgs/s; ratio %.2f\n",
		    i + 1, r.done_per_s, r.durable_per_s, r.p50_ms, r.p99_ms, r.fsyncs_per_s,
		    r.mean_batch, group, raw[i], ratio[i]);
	}
	printf("median: journal %.0f msgs/s, p99 append->durable %.2f ms, anchor %.0f msgs/s\n",
	       bench_median(done, o->rounds), bench_median(p99, o->rounds),
	       bench_median(raw, o->rounds));
	printf("ratio journal/anchor (median of rounds): %.2f (target >= 0.50)\n",
	       bench_median(ratio, o->rounds));
	printf("ratio journal/200k target: %.2f (target >= 1.00)\n",
	       bench_median(done, o->rounds) / 200000.0);
	return 0;
}

int main(int argc, char **argv)
{
	char tmp[] = "/var/tmp/sluice-queue-bench-XXXXXX";
	struct opts o = {.seconds = 2, .producers = 4, .window = 512, .size = 256, .rounds = 3};
	struct opts one;
	double disp;
	char cmd[4200];

	if (parse(argc, argv, &o))
		return 2;
	if (!o.dir && !(o.dir = mkdtemp(tmp))) {
		perror("queue_bench: mkdtemp /var/tmp");
		return 1;
	}
	mkdir(o.dir, 0755);
	log_set_level(LOG_WARN);
	printf("queue_bench: dir=%s seconds=%.1f rounds=%d producers=%d window=%d size=%u\n", o.dir,
	       o.seconds, o.rounds, o.producers, o.window, o.size);
	if (run_rounds(&o))
		return 1;
	one = o;
	one.seconds = o.seconds < 1 ? o.seconds : 1;
	printf("anchor: write+fdatasync, group 1: %.0f fdatasync/s (the disk's sync rate)\n",
	       run_raw(&one, 1));
	disp = run_dispatch(one.seconds);
	printf("dispatch alone: %.0f msgs/s; ratio to the 50k DESIGN target: %.1f\n", disp,
	       disp / 50000.0);
	if (!strcmp(o.dir, tmp)) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd))
			fprintf(stderr, "queue_bench: could not remove %s\n", tmp);
	}
	return 0;
}
