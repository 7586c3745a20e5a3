// SPDX-License-Identifier: MIT
/* loop.c -- one io_uring per ingress thread: accept, recv, send, timers, cross-thread wakeups
 *
 * Ownership: a connection slot is freed only when no operation of it is in flight (its
 * multishot recv has ended, its send has completed) and it is not waiting for the queue,
 * because the kernel or the journal thread may still hold its buffers or its pointer. To
 * close, the loop shuts the socket down (which ends the recv) and cancels the recv.
 *
 * Timers: a connection is on at most one of four FIFO lists (idle, request, linger, send),
 * each with one fixed timeout, so each list is ordered by deadline and the tick only looks
 * at heads. A send that stays in flight past --send-timeout-ms is cancelled by the tick.
 * Continuation sends (after a short send: the client reads slowly) carry a linked timeout
 * instead; first sends do not, because they almost always complete inline and arming and
 * disarming a linked timeout per response cost ~8 % of a core in the /healthz benchmark.
 * The ring is created on the loop's own thread (SINGLE_ISSUER binds it to the creating task).
 *
 * Older kernels (enum loop_feature): without a buffer ring (5.19) the same buffers are
 * handed to the kernel with IORING_OP_PROVIDE_BUFFERS, one SQE per returned buffer; without
 * multishot accept (5.19) each accept completion arms the next; without multishot recv
 * (6.0) each recv asks for at most one buffer's length and is re-armed on completion, the
 * path a multishot recv takes when it ends. Multishot recv is probed on a socketpair before
 * the first connection, because a kernel that ignores the flag would read 0 bytes (a
 * multishot recv has length 0) and the connection would look closed; a multishot accept is
 * refused with -EINVAL as it is submitted by kernels without it, which switches it off. The
 * floor is then Linux 5.7 (IORING_OP_PROVIDE_BUFFERS); make test-kernels runs it on 5.10.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "admit/admission.h"
#include "ingress/conn.h"
#include "lib/log.h"
#include "ingress/loop.h"

#define BGID 1

struct slot {
	struct conn *c;
	uint32_t gen;
	uint32_t next_free;
};

struct loop {
	struct loop_opts o;
	struct router *router;
	int thread_no, lfd, efd, port;
	struct io_uring ring;
	bool ring_ok, defer, accept_armed, drain_started, stop;
	unsigned feat;		/* enum loop_feature in use */
	const char *ring_flags; /* the setup flags the kernel took, for the log */
	struct io_uring_buf_ring *br;
	char *bufs;
	size_t br_bytes;
	struct slot *slots;
	uint32_t nslots, free_head;
	unsigned nconns;
	struct conn *head[CONN_T_MAX], *tail[CONN_T_MAX];
	uint64_t timeout_ns[CONN_T_MAX];
	struct __kernel_timespec tick_ts, send_ts;
	uint64_t wake_val;
	pthread_mutex_t inbox_lock;
	struct loop_msg *inbox;
	size_t inbox_n, inbox_cap;
	uint64_t drain_deadline; /* atomic; 0 = not draining */
};

static struct io_uring_sqe *get_sqe(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	int err;

	if (!sqe) {
		err = io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
		if (!sqe) { /* the ring refuses submissions: nothing sane is left to do */
			log_error("loop: cannot submit to the ring", "thread=%d err=\"%s\"",
				  l->thread_no, strerror(err < 0 ? -err : EBUSY));
			abort();
		}
	}
	return sqe;
}

static int listen_socket(const struct loop_opts *o, int *port)
{
	int fd = socket(o->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, o->addr, o->addrlen) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

struct loop *loop_new(const struct loop_opts *opts, struct router *router, int thread_no)
{
	struct loop *l = calloc(1, sizeof(*l));
	int err;

	if (!l)
		return NULL;
	l->o = *opts;
	l->o.entries = l->o.entries ? l->o.entries : 1024;
	l->o.bufs = l->o.bufs ? l->o.bufs : 1024;
	l->o.buf_size = l->o.buf_size ? l->o.buf_size : 4096;
	l->o.max_conns_per_loop = l->o.max_conns_per_loop ? l->o.max_conns_per_loop : 65536;
	l->o.tick_ms = l->o.tick_ms ? l->o.tick_ms : 100;
	l->o.send_timeout_ms = l->o.send_timeout_ms ? l->o.send_timeout_ms : 10000;
	l->router = router;
	l->thread_no = thread_no;
	l->efd = -1;
	pthread_mutex_init(&l->inbox_lock, NULL);
	l->lfd = listen_socket(&l->o, &l->port);
	if (l->lfd < 0) {
		err = -l->lfd;
		log_error("loop: cannot listen", "thread=%d err=\"%s\"", thread_no, strerror(err));
		goto fail;
	}
	l->efd = eventfd(0, EFD_CLOEXEC);
	l->nslots = l->o.max_conns_per_loop + 1; /* slot 0 unused: idx 0 = loop-wide ops */
	l->slots = calloc(l->nslots, sizeof(*l->slots));
	if (l->efd < 0 || !l->slots) {
		err = errno ? errno : ENOMEM;
		goto fail;
	}
	for (uint32_t i = 1; i < l->nslots; i++)
		l->slots[i].next_free = i + 1 < l->nslots ? i + 1 : 0;
	l->free_head = 1;
	return l;
fail:
	loop_free(l);
	errno = err;
	return NULL;
}

int loop_port(const struct loop *l)
{
	return l->port;
}

unsigned loop_conns(const struct loop *l)
{
	return __atomic_load_n(&l->nconns, __ATOMIC_RELAXED);
}

bool loop_defer_taskrun(const struct loop *l)
{
	return l->defer;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (uint32_t i = 1; l->slots && i < l->nslots; i++) {
		struct conn *c = l->slots[i].c;

		/* a connection still waiting for the queue may be referenced by the journal
		 * thread until the queue is closed; the caller closes the queue first */
		if (c) {
			close(c->fd);
			conn_fini(c);
			free(c);
		}
	}
	free(l->slots);
	if (l->ring_ok)
		io_uring_queue_exit(&l->ring);
	if (l->bufs)
		munmap(l->bufs, (size_t)l->o.bufs * l->o.buf_size);
	if (l->br)
		munmap(l->br, l->br_bytes);
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->efd >= 0)
		close(l->efd);
	free(l->inbox);
	pthread_mutex_destroy(&l->inbox_lock);
	free(l);
}

/* ---- timers ---------------------------------------------------------------------- */

static void timer_unlink(struct loop *l, struct conn *c)
{
	if (c->timer == CONN_T_NONE)
		return;
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		l->head[c->timer] = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		l->tail[c->timer] = c->tprev;
	c->tprev = c->tnext = NULL;
	c->timer = CONN_T_NONE;
}

static void timer_sync(struct loop *l, struct conn *c)
{
	enum conn_timer k = c->send_busy ? CONN_T_SEND
			    : c->out.len ? CONN_T_NONE
					 : conn_timer_kind(c);

	if (k == c->timer)
		return;
	timer_unlink(l, c);
	if (k == CONN_T_NONE)
		return;
	c->timer = k;
	c->timer_since = admission_now();
	c->tprev = l->tail[k];
	if (l->tail[k])
		l->tail[k]->tnext = c;
	else
		l->head[k] = c;
	l->tail[k] = c;
}

/* ---- connections ----------------------------------------------------------------- */

static struct conn *conn_lookup(struct loop *l, uint64_t ud)
{
	uint32_t idx = loop_ud_idx(ud);

	if (!idx || idx >= l->nslots || !l->slots[idx].c ||
	    (l->slots[idx].gen & LOOP_UD_GEN_MASK) != loop_ud_gen(ud))
		return NULL;
	return l->slots[idx].c;
}

static void arm_recv(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (l->feat & LOOP_FEAT_MULTISHOT_RECV)
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	else /* before 6.0 a buffer-select recv reads the SQE's length, not the buffer's */
		io_uring_prep_recv(sqe, c->fd, NULL, l->o.buf_size, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_RECV, c->idx, c->gen));
	c->recv_busy = true;
}

static void maybe_free(struct loop *l, struct conn *c)
{
	if (c->recv_busy || c->send_busy || c->phase == CONN_WAIT)
		return;
	timer_unlink(l, c);
	close(c->fd);
	l->slots[c->idx].c = NULL;
	l->slots[c->idx].gen++;
	l->slots[c->idx].next_free = l->free_head;
	l->free_head = c->idx;
	conn_fini(c);
	free(c);
	__atomic_sub_fetch(&l->nconns, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&l->router->open_conns, 1, __ATOMIC_RELAXED);
}

static void close_conn(struct loop *l, struct conn *c)
{
	if (!c->closing) {
		c->closing = true;
		timer_unlink(l, c);
		shutdown(c->fd, SHUT_RDWR); /* ends the multishot recv */
		if (c->recv_busy) {
			struct io_uring_sqe *sqe = get_sqe(l);

			io_uring_prep_cancel64(sqe, loop_ud_encode(LOOP_OP_RECV, c->idx, c->gen),
					       0);
			io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_CANCEL, 0, 0));
		}
	}
	maybe_free(l, c);
}

static void start_send(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (!c->sending.len) { /* swap buffers: out keeps collecting while this one is sent */
		struct obuf t = c->sending;

		c->sending = c->out;
		c->out = t;
		c->out.len = 0;
		c->sent = 0;
	}
	sqe = get_sqe(l);
	io_uring_prep_send(sqe, c->fd, c->sending.p + c->sent, c->sending.len - c->sent,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_SEND, c->idx, c->gen));
	if (c->sent) { /* continuation of a short send: a slow reader, bound this one */
		sqe->flags |= IOSQE_IO_LINK;
		sqe = get_sqe(l);
		io_uring_prep_link_timeout(sqe, &l->send_ts, 0);
		io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_SEND_TIMEOUT, c->idx, c->gen));
	}
	c->send_busy = true;
	timer_unlink(l, c); /* each send restarts the send deadline: progress was made */
	timer_sync(l, c);
}

void loop_conn_update(struct loop *l, struct conn *c)
{
	if (c->closing) {
		maybe_free(l, c);
		return;
	}
	if (c->abort) {
		close_conn(l, c);
		return;
	}
	if (!c->send_busy && c->out.len)
		start_send(l, c);
	if (!c->send_busy && !c->out.len && c->phase != CONN_WAIT) {
		if (c->peer_eof && (c->close_after_send || c->phase == CONN_HEAD)) {
			close_conn(l, c);
			return;
		}
		if (c->close_after_send && !c->shut) {
			shutdown(c->fd, SHUT_WR); /* FIN after the answer; linger for input */
			c->shut = true;
		}
	}
	timer_sync(l, c);
}

/* Counted before the close: a client that sees the close may ask /metrics at once, and
 * another thread answers it (test_ingress_conn/max_conns failed on that under load). */
static void refuse(struct loop *l, int fd, const char *reason)
{
	metric_add(metrics_series(l->router->f_refused, (const char *[]){reason}), 1);
	close(fd);
}

static void peer_addr(int fd, struct sluice_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(a, 0, sizeof(*a));
	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return;
	if (ss.ss_family == AF_INET) {
		a->a[10] = a->a[11] = 0xff;
		memcpy(&a->a[12], &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		memcpy(a->a, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	}
}

static void on_accept(struct loop *l, int fd)
{
	struct router *r = l->router;
	struct sluice_addr peer;
	struct conn *c;
	uint32_t idx;
	int one = 1;

	if (l->drain_started)
		return (void)close(fd);
	if (__atomic_add_fetch(&r->open_conns, 1, __ATOMIC_RELAXED) > (unsigned)r->cfg->max_conns) {
		__atomic_sub_fetch(&r->open_conns, 1, __ATOMIC_RELAXED);
		return refuse(l, fd, "max_conns");
	}
	peer_addr(fd, &peer);
	idx = l->free_head;
	c = idx ? malloc(sizeof(*c)) : NULL;
	if (!c || admission_denied(r->adm, &peer, admission_now())) {
		__atomic_sub_fetch(&r->open_conns, 1, __ATOMIC_RELAXED);
		free(c);
		return refuse(l, fd, !idx ? "no_slot" : c ? "denied" : "no_memory");
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l->free_head = l->slots[idx].next_free;
	conn_init(c, r, fd, &peer);
	c->loop = l;
	c->idx = idx;
	c->gen = l->slots[idx].gen & LOOP_UD_GEN_MASK;
	l->slots[idx].c = c;
	__atomic_add_fetch(&l->nconns, 1, __ATOMIC_RELAXED);
	arm_recv(l, c);
	timer_sync(l, c);
}

static void arm_accept(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (l->feat & LOOP_FEAT_MULTISHOT_ACCEPT)
		io_uring_prep_multishot_accept(sqe, l->lfd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, l->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_ACCEPT, 0, 0));
	l->accept_armed = true;
}

static void return_buf(struct loop *l, unsigned bid)
{
	struct io_uring_sqe *sqe;

	if (l->feat & LOOP_FEAT_BUF_RING) {
		io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * l->o.buf_size, l->o.buf_size,
				      bid, io_uring_buf_ring_mask(l->o.bufs), 0);
		io_uring_buf_ring_advance(l->br, 1);
		return;
	}
	sqe = get_sqe(l);
	io_uring_prep_provide_buffers(sqe, l->bufs + (size_t)bid * l->o.buf_size,
				      (int)l->o.buf_size, 1, BGID, (int)bid);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_PROVIDE, 0, 0));
}

static void on_recv(struct loop *l, struct io_uring_cqe *cqe)
{
	struct conn *c = conn_lookup(l, cqe->user_data);
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		if (c && !c->closing && cqe->res > 0)
			conn_on_data(c, l->bufs + (size_t)bid * l->o.buf_size, (size_t)cqe->res);
		return_buf(l, bid);
	}
	if (!c)
		return;
	if (!more)
		c->recv_busy = false;
	if (cqe->res == 0)
		c->peer_eof = true;
	else if (cqe->res < 0 && cqe->res != -ENOBUFS)
		c->abort = true;
	if (!more && !c->closing && !c->peer_eof && !c->abort)
		arm_recv(l, c); /* multishot ended (buffers ran out): re-arm */
	loop_conn_update(l, c);
}

static void on_send(struct loop *l, struct io_uring_cqe *cqe)
{
	struct conn *c = conn_lookup(l, cqe->user_data);

	if (!c)
		return;
	c->send_busy = false;
	if (cqe->res < 0) {
		c->abort = true; /* timed out (-ECANCELED) or the peer is gone */
	} else {
		c->sent += (size_t)cqe->res;
		if (c->sent == c->sending.len) {
			c->sending.len = 0;
			if (!c->closing)
				conn_on_sent(c);
		} else if (!c->closing) {
			start_send(l, c); /* short send: the rest */
		}
	}
	loop_conn_update(l, c);
}

/* ---- wakeups, drain, tick --------------------------------------------------------- */

int loop_post(struct loop *l, const struct loop_msg *msg)
{
	uint64_t one = 1;

	pthread_mutex_lock(&l->inbox_lock);
	if (l->inbox_n == l->inbox_cap) {
		size_t cap = l->inbox_cap ? l->inbox_cap * 2 : 64;
		struct loop_msg *p = realloc(l->inbox, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&l->inbox_lock);
			return -ENOMEM;
		}
		l->inbox = p;
		l->inbox_cap = cap;
	}
	if (msg)
		l->inbox[l->inbox_n++] = *msg;
	pthread_mutex_unlock(&l->inbox_lock);
	return write(l->efd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

void loop_drain(struct loop *l, uint64_t deadline_ns)
{
	__atomic_store_n(&l->drain_deadline, deadline_ns ? deadline_ns : 1, __ATOMIC_RELEASE);
	loop_post(l, NULL);
}

static void arm_wake(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_read(sqe, l->efd, &l->wake_val, sizeof(l->wake_val), 0);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_WAKE, 0, 0));
}

static void start_drain(struct loop *l)
{
	struct io_uring_sqe *sqe;

	l->drain_started = true;
	if (l->accept_armed) {
		sqe = get_sqe(l);
		io_uring_prep_cancel64(sqe, loop_ud_encode(LOOP_OP_ACCEPT, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_CANCEL, 0, 0));
	}
	for (uint32_t i = 1; i < l->nslots; i++) {
		struct conn *c = l->slots[i].c;

		if (c && !c->closing) {
			conn_drain(c);
			loop_conn_update(l, c);
		}
	}
}

static void on_wake(struct loop *l)
{
	struct loop_msg *msgs;
	size_t n;

	pthread_mutex_lock(&l->inbox_lock);
	msgs = l->inbox;
	n = l->inbox_n;
	l->inbox = NULL;
	l->inbox_n = l->inbox_cap = 0;
	pthread_mutex_unlock(&l->inbox_lock);
	for (size_t i = 0; i < n; i++) {
		struct conn *c =
		    conn_lookup(l, loop_ud_encode(LOOP_OP_NONE, msgs[i].idx, msgs[i].gen));

		if (!c || c->phase != CONN_WAIT)
			continue;
		if (c->closing) {
			c->phase = CONN_DONE; /* the client left; the event is durable anyway */
			maybe_free(l, c);
			continue;
		}
		conn_on_durable(c, msgs[i].err, msgs[i].id);
		loop_conn_update(l, c);
	}
	free(msgs);
	if (!l->drain_started && __atomic_load_n(&l->drain_deadline, __ATOMIC_ACQUIRE))
		start_drain(l);
	arm_wake(l);
}

static void arm_tick(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_timeout(sqe, &l->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_TICK, 0, 0));
}

static void on_tick(struct loop *l)
{
	uint64_t now = admission_now(), deadline;

	for (int k = CONN_T_IDLE; k < CONN_T_MAX; k++) {
		struct conn *c;

		while ((c = l->head[k]) && now - c->timer_since >= l->timeout_ns[k]) {
			timer_unlink(l, c);
			if (k == CONN_T_SEND) { /* the client does not read: cancel, then close */
				struct io_uring_sqe *sqe = get_sqe(l);

				io_uring_prep_cancel64(
				    sqe, loop_ud_encode(LOOP_OP_SEND, c->idx, c->gen), 0);
				io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_CANCEL, 0, 0));
				c->abort = true;
				continue;
			}
			conn_on_timeout(c);
			loop_conn_update(l, c);
		}
	}
	deadline = __atomic_load_n(&l->drain_deadline, __ATOMIC_ACQUIRE);
	if (deadline && now >= deadline) {
		if (l->nconns)
			log_warn("loop: drain deadline passed, closing the rest",
				 "thread=%d conns=%u", l->thread_no, l->nconns);
		l->stop = true;
	}
	arm_tick(l);
}

/* ---- setup and run ------------------------------------------------------------------ */

static int ring_setup(struct loop *l)
{
	static const unsigned flag_sets[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	int err = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p = {.flags = flag_sets[i] | IORING_SETUP_CQSIZE,
					    .cq_entries = l->o.entries * 8};

		err = io_uring_queue_init_params(l->o.entries, &l->ring, &p);
		if (!err) {
			l->defer = i == 0;
			l->ring_flags = i == 0	 ? "SINGLE_ISSUER|DEFER_TASKRUN"
					: i == 1 ? "COOP_TASKRUN (DEFER_TASKRUN refused: Linux 6.1)"
						 : "none (COOP_TASKRUN refused: Linux 5.19)";
			return 0;
		}
	}
	return err;
}

/* Submit what is queued and take the next completion of op (setup only, so nothing but
 * buffer hand-backs can complete meanwhile; a failed one is reported). */
static int next_cqe(struct loop *l, enum loop_op op, struct io_uring_cqe *out)
{
	struct io_uring_cqe *cqe;
	int err;

	for (;;) {
		err = io_uring_submit_and_wait(&l->ring, 1);
		if (err < 0)
			return err;
		err = io_uring_wait_cqe(&l->ring, &cqe);
		if (err)
			return err;
		*out = *cqe;
		io_uring_cqe_seen(&l->ring, cqe);
		if (loop_ud_op(out->user_data) == op)
			return 0;
		if (out->res < 0)
			log_warn("loop: handing a receive buffer back failed",
				 "thread=%d err=\"%s\"", l->thread_no, strerror(-out->res));
	}
}

/* Without a buffer ring: all buffers handed over at once with IORING_OP_PROVIDE_BUFFERS. */
static int provide_all(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);
	struct io_uring_cqe cqe;
	int err;

	io_uring_prep_provide_buffers(sqe, l->bufs, (int)l->o.buf_size, (int)l->o.bufs, BGID, 0);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_PROVIDE, 0, 0));
	err = next_cqe(l, LOOP_OP_PROVIDE, &cqe);
	return err ? err : cqe.res < 0 ? cqe.res : 0; /* 5.x answers the count, 6.x 0 */
}

/* The receive buffers: a buffer ring when the kernel has one (5.19), else provide_all(). */
static int bufs_setup(struct loop *l)
{
	struct io_uring_buf_reg reg = {0};
	int err;

	l->bufs = mmap(NULL, (size_t)l->o.bufs * l->o.buf_size, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (l->bufs == MAP_FAILED) {
		l->bufs = NULL;
		return -ENOMEM;
	}
	if (!(l->feat & LOOP_FEAT_BUF_RING))
		return provide_all(l);
	l->br_bytes = (size_t)l->o.bufs * sizeof(struct io_uring_buf);
	l->br = mmap(NULL, l->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (l->br == MAP_FAILED) {
		l->br = NULL;
		return -ENOMEM;
	}
	reg.ring_addr = (unsigned long)l->br;
	reg.ring_entries = l->o.bufs;
	reg.bgid = BGID;
	err = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (err == -EINVAL) { /* an unknown register opcode: before 5.19 */
		munmap(l->br, l->br_bytes);
		l->br = NULL;
		l->feat &= ~LOOP_FEAT_BUF_RING;
		return provide_all(l);
	}
	if (err)
		return err;
	io_uring_buf_ring_init(l->br);
	for (unsigned i = 0; i < l->o.bufs; i++)
		io_uring_buf_ring_add(l->br, l->bufs + (size_t)i * l->o.buf_size, l->o.buf_size, i,
				      io_uring_buf_ring_mask(l->o.bufs), (int)i);
	io_uring_buf_ring_advance(l->br, (int)l->o.bufs);
	return 0;
}

/* Multishot recv (6.0), tried on a socketpair: one byte must come back in a completion that
 * promises more. Older kernels refuse the flag or ignore it and read 0 bytes. */
static int probe_multishot_recv(struct loop *l)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe cqe;
	int sv[2], err;
	bool ok;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	if (write(sv[1], "x", 1) != 1) {
		err = -errno;
		goto out;
	}
	sqe = get_sqe(l);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_PROBE, 0, 0));
	err = next_cqe(l, LOOP_OP_PROBE, &cqe);
	ok = !err && cqe.res == 1 && (cqe.flags & IORING_CQE_F_MORE);
	if (!err && (cqe.flags & IORING_CQE_F_MORE))
		shutdown(sv[1], SHUT_WR); /* EOF ends it */
	while (!err) {
		if (cqe.flags & IORING_CQE_F_BUFFER)
			return_buf(l, cqe.flags >> IORING_CQE_BUFFER_SHIFT);
		if (!(cqe.flags & IORING_CQE_F_MORE))
			break;
		err = next_cqe(l, LOOP_OP_PROBE, &cqe);
	}
	if (!ok)
		l->feat &= ~LOOP_FEAT_MULTISHOT_RECV;
out:
	close(sv[0]);
	close(sv[1]);
	return err;
}

static const struct {
	unsigned bit;
	const char *name, *what, *key, *on, *off, *since;
} features[] = {
    {LOOP_FEAT_BUF_RING, "buf_ring", "buffer ring", "buffers", "ring", "provide_buffers", "5.19"},
    {LOOP_FEAT_MULTISHOT_ACCEPT, "multishot_accept", "multishot accept", "accept", "multishot",
     "one-shot", "5.19"},
    {LOOP_FEAT_MULTISHOT_RECV, "multishot_recv", "multishot recv", "recv", "multishot", "one-shot",
     "6.0"},
};
#define NFEATURES (sizeof(features) / sizeof(features[0]))

int loop_features_parse(const char *list, unsigned *bits)
{
	*bits = 0;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		unsigned bit = len == 3 && !strncmp(p, "all", 3) ? LOOP_FEAT_ALL : 0;

		for (size_t i = 0; !bit && i < NFEATURES; i++)
			if (strlen(features[i].name) == len && !strncmp(p, features[i].name, len))
				bit = features[i].bit;
		if (!bit)
			return -EINVAL;
		*bits |= bit;
		p += len + (p[len] == ',');
	}
	return 0;
}

/* What the ring runs on, logged once by the first loop: each feature, or the fallback and
 * the kernel version that would have it. */
static void log_features(const struct loop *l, unsigned wanted)
{
	char s[512];
	size_t n = 0;

	if (l->thread_no != 0)
		return;
	for (size_t i = 0; i < NFEATURES && n < sizeof(s); i++) {
		if (l->feat & features[i].bit)
			n += (size_t)snprintf(s + n, sizeof(s) - n, " %s=%s", features[i].key,
					      features[i].on);
		else if (wanted & features[i].bit)
			n += (size_t)snprintf(s + n, sizeof(s) - n,
					      " %s=\"%s (%s needs Linux %s)\"", features[i].key,
					      features[i].off, features[i].what, features[i].since);
		else
			n += (size_t)snprintf(s + n, sizeof(s) - n, " %s=\"%s (%s turned off)\"",
					      features[i].key, features[i].off, features[i].what);
	}
	log_info("loop: io_uring ready", "flags=\"%s\"%s", l->ring_flags, s);
}

static void dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
	switch (loop_ud_op(cqe->user_data)) {
	case LOOP_OP_ACCEPT:
		if (cqe->res == -EINVAL && (l->feat & LOOP_FEAT_MULTISHOT_ACCEPT))
			l->feat &=
			    ~LOOP_FEAT_MULTISHOT_ACCEPT; /* before 5.19: one per connection */
		else if (cqe->res >= 0)
			on_accept(l, cqe->res);
		else if (cqe->res != -ECANCELED)
			log_warn("loop: accept failed", "err=\"%s\"", strerror(-cqe->res));
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			l->accept_armed = false;
			if (!l->drain_started)
				arm_accept(l);
		}
		break;
	case LOOP_OP_RECV:
		on_recv(l, cqe);
		break;
	case LOOP_OP_SEND:
		on_send(l, cqe);
		break;
	case LOOP_OP_TICK:
		on_tick(l);
		break;
	case LOOP_OP_WAKE:
		on_wake(l);
		break;
	case LOOP_OP_PROVIDE:
		if (cqe->res < 0) /* the buffer is lost to the pool; recv still has the others */
			log_warn("loop: handing a receive buffer back failed",
				 "thread=%d err=\"%s\"", l->thread_no, strerror(-cqe->res));
		break;
	default: /* SEND_TIMEOUT, CANCEL: the operation they target reports */
		break;
	}
}

/* A kernel without multishot accept (before 5.19) refuses it as the SQE is submitted: settle
 * that before saying what the loop runs on (dispatch() re-arms a one-shot accept). */
static void settle_accept(struct loop *l)
{
	struct io_uring_cqe *cqe;

	io_uring_submit(&l->ring);
	while (!io_uring_peek_cqe(&l->ring, &cqe)) {
		dispatch(l, cqe);
		io_uring_cqe_seen(&l->ring, cqe);
	}
}

int loop_run(struct loop *l)
{
	int err;

	l->feat = LOOP_FEAT_ALL & ~l->o.features_off;
	if ((err = ring_setup(l)))
		return err;
	l->ring_ok = true;
	if ((err = bufs_setup(l)))
		return err;
	if ((l->feat & LOOP_FEAT_MULTISHOT_RECV) && (err = probe_multishot_recv(l)))
		return err;
	l->tick_ts.tv_nsec = (long long)l->o.tick_ms % 1000 * 1000000;
	l->tick_ts.tv_sec = l->o.tick_ms / 1000;
	l->send_ts.tv_sec = l->o.send_timeout_ms / 1000;
	l->send_ts.tv_nsec = (long long)l->o.send_timeout_ms % 1000 * 1000000;
	l->timeout_ns[CONN_T_IDLE] = (uint64_t)l->router->cfg->idle_timeout_ms * 1000000;
	l->timeout_ns[CONN_T_REQUEST] = (uint64_t)l->router->cfg->header_timeout_ms * 1000000;
	l->timeout_ns[CONN_T_LINGER] = 2000000000ULL; /* unread input after a final answer */
	l->timeout_ns[CONN_T_SEND] = (uint64_t)l->o.send_timeout_ms * 1000000;
	arm_accept(l);
	settle_accept(l);
	log_features(l, LOOP_FEAT_ALL & ~l->o.features_off);
	arm_wake(l);
	arm_tick(l);
	while (!l->stop) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		err = io_uring_submit_and_wait(&l->ring, 1);
		if (err < 0 && err != -EINTR && err != -ETIME && err != -EBUSY)
			return err;
		io_uring_for_each_cqe(&l->ring, head, cqe)
		{
			dispatch(l, cqe);
			n++;
		}
		io_uring_cq_advance(&l->ring, n);
		if (l->drain_started && !l->nconns)
			l->stop = true;
	}
	return 0;
}
