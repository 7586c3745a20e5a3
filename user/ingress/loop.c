// SPDX-License-Identifier: MIT
/* loop.c -- one io_uring per ingress thread: accept, recv, send, timers, cross-thread wakeups
 *
 * Ownership: a connection slot is freed only when no operation of it is in flight (its
 * multishot recv has ended, its send has completed) and it is not waiting for the queue,
 * because the kernel or the journal thread may still hold its buffers or its pointer. To
 * close, the loop shuts the socket down (which ends the recv) and cancels the recv.
 *
 * Timers: a connection is on at most one of six FIFO lists (new, idle, request, linger, send,
 * handshake), each with one fixed timeout, so each list is ordered by deadline and the tick
 * only looks at heads. A send that stays in flight past --send-timeout-ms is cancelled by the tick.
 * Continuation sends (after a short send: the client reads slowly) carry a linked timeout
 * instead; first sends do not, because they almost always complete inline and arming and
 * disarming a linked timeout per response cost ~8 % of a core in the /healthz benchmark.
 * The ring is created on the loop's own thread (SINGLE_ISSUER binds it to the creating task).
 *
 * TLS connections (accepted on the second listener) carry a tls_conn. Received bytes go
 * through it and only plaintext reaches the connection; the connection's output is sealed
 * into ciphertext when a send starts (not before, so its backpressure on c->out works as for
 * plain HTTP), and the ciphertext is moved into c->sending, which no later feed can move
 * while the kernel reads it. A handshake is on its own timer list from accept until it is
 * done (its sends do not restart it), and a connection whose handshake failed sends what
 * the engine has to say (an alert, or a plain 400 to plain HTTP) and closes. A TLS
 * connection idle (keep-alive, nothing received) for TLS_TRIM_NS gives OpenSSL's record
 * buffers back (tls_conn_trim), and any idle connection its empty output buffers: the tick
 * walks the idle list behind a cursor, trim_next, the first idle connection not yet looked
 * at; the list is in deadline order, so everything before the cursor is done and each
 * connection is looked at once per idle spell. The engine gives a handshake's buffers back
 * itself. Freed record buffers sit between live connections' objects, where glibc keeps
 * them resident; after such releases the tick asks malloc_trim() to hand the free pages to
 * the kernel, at most once per HEAP_TRIM_NS (3,000 TLS connections idle after a request
 * each: 19 -> 17 KB of RSS per connection).
 *
 * Older kernels (enum loop_feature): without a buffer ring (5.19) the same buffers are
 * handed to the kernel with IORING_OP_PROVIDE_BUFFERS, one SQE per returned buffer; without
 * multishot accept (5.19) each accept completion arms the next; without multishot recv
 * (6.0) each recv asks for at most one buffer's length and is re-armed on completion, the
 * path a multishot recv takes when it ends. Multishot recv is probed once per process on a
 * ring and socketpair of its own (loop_new), because a kernel that ignores the flag would
 * read 0 bytes (a multishot recv has length 0) and the connection would look closed; a
 * multishot accept is refused with -EINVAL as it is submitted by kernels without it, which
 * switches it off. The floor is then Linux 5.7 (IORING_OP_PROVIDE_BUFFERS); make
 * test-kernels runs it on 5.10.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "admit/admission.h"
#include "ingress/api.h"
#include "ingress/conn.h"
#include "ingress/inbox.h"
#include "ingress/loop.h"
#include "ingress/src_rate.h"
#include "ingress/srclimit.h"
#include "ingress/tls.h"
#include "lib/array_size.h"
#include "lib/clock.h"
#include "lib/log.h"

#define BGID 1
#define ACCEPT_PAUSE_NS                                                                            \
	100000000ULL		    /* after EMFILE/ENFILE/ENOBUFS/ENOMEM: no accept for 100 ms    \
				     */
#define ACCEPT_LOG_NS 1000000000ULL /* at most one "accept failed" line a second per loop */
#define TLS_TRIM_NS   1000000000ULL /* idle this long: a TLS connection's buffers go back */
#define HEAP_TRIM_NS  1000000000ULL /* at most one malloc_trim() a second per loop */

/* A connection and what the loop keeps about its I/O. */
struct lconn {
	struct conn c;
	uint32_t idx, gen;
	int fd;
	struct tls_conn *tls; /* NULL for plain HTTP */
	bool tls_open;	      /* handshake done and seen by the loop */
	bool tls_answer;      /* c->sending holds a sealed answer (kept once sent) */
	bool send_busy, recv_busy, closing, shut;
	bool src_counted; /* holds one count in the per-source table */
	enum conn_timer timer;
	uint64_t timer_since;
	struct lconn *tprev, *tnext;
};

struct slot {
	struct lconn *c;
	uint32_t gen;
	uint32_t next_free;
};

struct loop {
	struct loop_opts o;
	struct api *api;
	struct inbox *inbox;
	int thread_no, lfd, port, tls_lfd, tls_port;
	struct io_uring ring;
	bool ring_ok, defer, accept_armed[2], drain_started, stop; /* [1]: the TLS listener */

	unsigned feat;		/* enum loop_feature in use */
	bool accept_ms[2];	/* the armed accept of each listener is multishot */
	const char *ring_flags; /* the setup flags the kernel took, for the log */

	struct io_uring_buf_ring *br;
	char *bufs;
	size_t br_bytes;
	struct slot *slots;
	uint32_t nslots, free_head;
	unsigned nconns;
	struct lconn *head[CONN_T_MAX], *tail[CONN_T_MAX];
	struct lconn *trim_next; /* on the idle list: the first one not yet trimmed */
	unsigned released;	 /* connections that gave buffers back since the last heap trim */
	uint64_t heap_trimmed_at;
	uint64_t timeout_ns[CONN_T_MAX];
	struct __kernel_timespec tick_ts, send_ts;
	uint64_t wake_val;
	uint64_t drain_deadline;      /* atomic; 0 = not draining */
	uint64_t accept_paused_until; /* CLOCK_MONOTONIC ns; 0 = accepting */
	uint64_t accept_failures;     /* since start, this loop */
	uint64_t accept_logged_at;    /* last "accept failed" line */
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

static int listen_socket(const struct sockaddr *addr, socklen_t addrlen, bool reuseport, int *port)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, addr, addrlen) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* Multishot recv (6.0), asked of the kernel on a ring and a socketpair of its own: one byte
 * must come back in a completion that promises more. Older kernels refuse the flag, or
 * ignore it and read 0 bytes (a multishot recv has length 0), which would make every
 * connection look closed. 1 when the kernel has it, 0 when not, -errno when it could not be
 * asked. The probe's descriptors are closed before it returns. */
static int probe_multishot_recv(void)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	int sv[2] = {-1, -1}, err, step;
	char buf[16];
	bool ok = false;

	err = io_uring_queue_init(4, &ring, 0);
	if (err)
		return err;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || write(sv[1], "x", 1) != 1) {
		err = -errno;
		goto out;
	}
	for (step = 0; step < 2 && !err; step++) {
		sqe = io_uring_get_sqe(&ring);
		if (step == 0) {
			io_uring_prep_provide_buffers(sqe, buf, sizeof(buf), 1, BGID, 0);
		} else {
			io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = BGID;
		}
		err = io_uring_submit_and_wait(&ring, 1);
		if (err >= 0 && !(err = io_uring_wait_cqe(&ring, &cqe))) {
			if (step == 0 && cqe->res < 0)
				err = cqe->res;
			ok = step == 1 && cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE);
			io_uring_cqe_seen(&ring, cqe);
		}
	}
out:
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	io_uring_queue_exit(&ring); /* ends a multishot recv still armed */
	return err < 0 ? err : ok;
}

/* Whether loops may use multishot recv. Asked once per process, from the first loop_new():
 * on the starting thread, before the loop opens a descriptor of its own, so the process's
 * descriptor numbers are the same with the probe as without (test_ingress_conn's
 * accept_backoff gives sluiced exactly one spare descriptor). If the kernel cannot be asked,
 * loops take one-shot recv, which works on every kernel, and the log says why. */
static bool multishot_recv_usable(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int known = -1; /* 1 yes, 0 no */
	int r;

	pthread_mutex_lock(&lock);
	if (known < 0) {
		r = probe_multishot_recv();
		if (r < 0)
			log_warn("loop: cannot probe for multishot recv, using one-shot recv",
				 "err=\"%s\"", strerror(-r));
		known = r > 0;
	}
	r = known;
	pthread_mutex_unlock(&lock);
	return r;
}

struct loop *loop_new(const struct loop_opts *opts, struct api *api, int thread_no)
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
	l->api = api;
	l->thread_no = thread_no;
	l->tls_lfd = -1;
	l->feat = LOOP_FEAT_ALL & ~l->o.features_off;
	if ((l->feat & LOOP_FEAT_MULTISHOT_RECV) && !multishot_recv_usable())
		l->feat &= ~LOOP_FEAT_MULTISHOT_RECV;
	l->lfd = listen_socket(l->o.addr, l->o.addrlen, !l->o.admin, &l->port);
	if (l->lfd < 0) {
		err = -l->lfd;
		log_error("loop: cannot listen", "thread=%d err=\"%s\"", thread_no, strerror(err));
		goto fail;
	}
	if (l->o.tls_addr) {
		l->tls_lfd = listen_socket(l->o.tls_addr, l->o.tls_addrlen, true, &l->tls_port);
		if (l->tls_lfd < 0) {
			err = -l->tls_lfd;
			log_error("loop: cannot listen for TLS", "thread=%d err=\"%s\"", thread_no,
				  strerror(err));
			goto fail;
		}
	}
	l->inbox = inbox_new();
	l->nslots = l->o.max_conns_per_loop + 1; /* slot 0 unused: idx 0 = loop-wide ops */
	l->slots = calloc(l->nslots, sizeof(*l->slots));
	if (!l->inbox || !l->slots) {
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

int loop_tls_port(const struct loop *l)
{
	return l->tls_lfd >= 0 ? l->tls_port : 0;
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
		struct lconn *lc = l->slots[i].c;

		/* a connection still waiting for the queue may be referenced by the journal
		 * thread until the queue is closed; the caller closes the queue first */
		if (lc) {
			close(lc->fd);
			conn_fini(&lc->c);
			tls_conn_free(lc->tls);
			free(lc);
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
	if (l->tls_lfd >= 0)
		close(l->tls_lfd);
	inbox_free(l->inbox);
	free(l);
}

/* ---- timers ---------------------------------------------------------------------- */

static void timer_unlink(struct loop *l, struct lconn *c)
{
	if (c->timer == CONN_T_NONE)
		return;
	if (c == l->trim_next)
		l->trim_next = c->tnext;
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

static bool tls_handshaking(const struct lconn *c)
{
	return c->tls && !c->closing && tls_conn_deadline(c->tls);
}

static void timer_sync(struct loop *l, struct lconn *c)
{
	enum conn_timer k = tls_handshaking(c)		 ? CONN_T_HANDSHAKE
			    : c->send_busy		 ? CONN_T_SEND
			    : c->c.out.len || c->closing ? CONN_T_NONE
							 : conn_timer_kind(&c->c);

	if (k == c->timer)
		return;
	timer_unlink(l, c);
	if (k == CONN_T_NONE)
		return;
	c->timer = k;
	c->timer_since = clock_mono_ns();
	c->tprev = l->tail[k];
	if (l->tail[k])
		l->tail[k]->tnext = c;
	else
		l->head[k] = c;
	l->tail[k] = c;
	if (k == CONN_T_IDLE && !l->trim_next)
		l->trim_next = c;
}

/* Connections idle for TLS_TRIM_NS give their buffers back: the output buffers (empty while
 * idle) and a TLS connection's record buffers; then the heap its free pages. */
static void trim_idle(struct loop *l, uint64_t now)
{
	struct lconn *c;

	while ((c = l->trim_next) && now - c->timer_since >= TLS_TRIM_NS) {
		if (!c->send_busy && !c->c.out.len && !c->c.sending.len) {
			obuf_fini(&c->c.out);
			obuf_fini(&c->c.sending);
		}
		if (c->tls) {
			tls_conn_trim(c->tls);
			l->released++;
		}
		l->trim_next = c->tnext;
	}
	if (l->released && now - l->heap_trimmed_at >= HEAP_TRIM_NS) {
		malloc_trim(0);
		l->released = 0;
		l->heap_trimmed_at = now;
	}
}

/* ---- connections ----------------------------------------------------------------- */

static struct lconn *conn_lookup(struct loop *l, uint64_t ud)
{
	uint32_t idx = loop_ud_idx(ud);

	if (!idx || idx >= l->nslots || !l->slots[idx].c ||
	    (l->slots[idx].gen & LOOP_UD_GEN_MASK) != loop_ud_gen(ud))
		return NULL;
	return l->slots[idx].c;
}

static void arm_recv(struct loop *l, struct lconn *c)
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

static void maybe_free(struct loop *l, struct lconn *c)
{
	if (c->recv_busy || c->send_busy || c->c.phase == CONN_WAIT)
		return;
	timer_unlink(l, c);
	close(c->fd);
	if (c->src_counted)
		srclimit_release(l->o.per_source, &c->c.peer);
	l->slots[c->idx].c = NULL;
	l->slots[c->idx].gen++;
	l->slots[c->idx].next_free = l->free_head;
	l->free_head = c->idx;
	conn_fini(&c->c);
	tls_conn_free(c->tls);
	free(c);
	__atomic_sub_fetch(&l->nconns, 1, __ATOMIC_RELAXED);
	if (!l->o.admin)
		__atomic_sub_fetch(&l->api->open_conns, 1, __ATOMIC_RELAXED);
}

static void close_conn(struct loop *l, struct lconn *c)
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

static void start_send(struct loop *l, struct lconn *lc)
{
	struct conn *c = &lc->c;
	struct io_uring_sqe *sqe;

	if (!c->sending.len && !lc->tls) { /* swap: out keeps collecting while this is sent */
		struct obuf t = c->sending;

		c->sending = c->out;
		c->out = t;
		c->out.len = 0;
		c->sent = 0;
	}
	sqe = get_sqe(l);
	io_uring_prep_send(sqe, lc->fd, c->sending.p + c->sent, c->sending.len - c->sent,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_SEND, lc->idx, lc->gen));
	if (c->sent) { /* continuation of a short send: a slow reader, bound this one */
		sqe->flags |= IOSQE_IO_LINK;
		sqe = get_sqe(l);
		io_uring_prep_link_timeout(sqe, &l->send_ts, 0);
		io_uring_sqe_set_data64(sqe,
					loop_ud_encode(LOOP_OP_SEND_TIMEOUT, lc->idx, lc->gen));
	}
	lc->send_busy = true;
	timer_unlink(l, lc); /* each send restarts the send deadline: progress was made */
	timer_sync(l, lc);
}

/* ---- TLS ------------------------------------------------------------------------------- */

/* The handshake finished: a verified client certificate names the tenant from now on. The
 * engine gave the handshake's buffers back (a heap trim is due). */
static void tls_opened(struct loop *l, struct lconn *lc)
{
	uint8_t fp[TLS_SHA256_LEN];

	lc->tls_open = true;
	l->released++;
	if (!tls_conn_peer_sha256(lc->tls, fp))
		conn_set_client_cert(&lc->c, fp);
}

/* The engine gave up: send what it has to say (an alert, or the plain 400 to plain HTTP)
 * and close; without anything to say, close now. */
static void tls_failed(struct lconn *lc)
{
	const char *p;

	log_debug("tls: connection failed", "reason=%s detail=\"%s\"",
		  tls_fail_name(tls_conn_reason(lc->tls)), tls_conn_reason_detail(lc->tls));
	if (!tls_conn_output(lc->tls, &p) || lc->c.out.len) {
		lc->c.abort = true;
		return;
	}
	lc->c.close_after_send = true;
	lc->c.phase = CONN_DONE; /* discard what else arrives, linger, close */
}

/* Received ciphertext: through the engine, the plaintext on to the connection. */
static void tls_on_data(struct loop *l, struct lconn *lc, const char *data, size_t len)
{
	int st = tls_conn_feed(lc->tls, data, len);
	const char *p;
	size_t n;

	if (st < 0) {
		lc->c.abort = true;
		return;
	}
	if (st == TLS_HS_FAILED) {
		tls_failed(lc);
		return;
	}
	if (st == TLS_HS_DONE && !lc->tls_open)
		tls_opened(l, lc);
	n = tls_conn_plain(lc->tls, &p);
	if (n) {
		conn_on_data(&lc->c, p, n); /* takes or stashes all of it */
		tls_conn_plain_consume(lc->tls, n);
	}
	if (tls_conn_peer_closed(lc->tls))
		lc->c.peer_eof = true;
}

/* A send can start: encrypt what the connection wrote, after its final answer the
 * close_notify, and move all ciphertext into c->sending. -errno. */
static int tls_seal(struct lconn *lc)
{
	struct conn *c = &lc->c;
	int err;

	lc->tls_answer = false;
	if (lc->tls_open && c->out.len) {
		err = tls_conn_write(lc->tls, c->out.p, c->out.len);
		if (err)
			return err;
		c->out.len = 0;
		lc->tls_answer = true;
	}
	if (lc->tls_open && c->close_after_send && c->phase == CONN_DONE)
		tls_conn_close_notify(lc->tls);
	c->sent = 0;
	return tls_conn_take_output(lc->tls, &c->sending);
}

/* After the connection changed its output or its wish to close: submit a send or the close
 * as needed. */
static void conn_update(struct loop *l, struct lconn *lc)
{
	struct conn *c = &lc->c;

	if (lc->closing) {
		maybe_free(l, lc);
		return;
	}
	if (lc->tls && !c->abort && !lc->send_busy && !c->sending.len && tls_seal(lc))
		c->abort = true;
	if (c->abort) {
		close_conn(l, lc);
		return;
	}
	if (!lc->send_busy && (c->out.len || c->sending.len))
		start_send(l, lc);
	if (!lc->send_busy && !c->out.len && c->phase != CONN_WAIT) {
		if (c->peer_eof && (c->close_after_send || c->phase == CONN_HEAD)) {
			close_conn(l, lc);
			return;
		}
		if (c->close_after_send && !lc->shut) {
			shutdown(lc->fd, SHUT_WR); /* FIN after the answer; linger for input */
			lc->shut = true;
		}
	}
	timer_sync(l, lc);
}

/* Counted before the close: a client that sees the close may ask /metrics at once, and
 * another thread answers it (test_ingress_conn/max_conns failed on that under load). */
static void refuse(struct loop *l, int fd, const char *reason)
{
	api_count_refused(l->api, reason);
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

/* A TLS connection from peer may start its handshake: under the per-source rate (a source
 * above it goes on the deny list) and the cap on handshakes in progress. NULL when refused
 * (counted, fd closed). */
static struct tls_conn *tls_admit(struct loop *l, int fd, const struct sluice_addr *peer)
{
	uint64_t now = clock_mono_ns();
	struct tls_conn *t;

	if (l->o.tls_rate && !src_rate_pass(l->o.tls_rate, peer, now)) {
		admission_deny(l->api->adm, peer, now, l->o.tls_deny_secs);
		refuse(l, fd, "tls_handshake_rate");
		return NULL;
	}
	t = tls_conn_new(l->o.tls, now);
	if (!t)
		refuse(l, fd, errno == EBUSY ? "tls_handshakes" : "no_memory");
	return t;
}

/* An accepted connection (TLS when t) gets slot l->free_head (the caller checked there is
 * one). */
static void start_conn(struct loop *l, int fd, struct lconn *c, const struct sluice_addr *peer,
		       struct tls_conn *t, bool counted)
{
	uint32_t idx = l->free_head;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l->free_head = l->slots[idx].next_free;
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->tls = t;
	c->idx = idx;
	c->gen = l->slots[idx].gen & LOOP_UD_GEN_MASK;
	c->src_counted = counted;
	conn_init(&c->c, l->api, l->inbox, loop_ud_encode(LOOP_OP_NONE, c->idx, c->gen), peer,
		  l->o.admin);
	l->slots[idx].c = c;
	__atomic_add_fetch(&l->nconns, 1, __ATOMIC_RELAXED);
	arm_recv(l, c);
	timer_sync(l, c);
}

/* The admin listener: bounded by its own slots only (a scrape must get through while the
 * public port is full), no per-source count; the deny list still applies. */
static void accept_admin(struct loop *l, int fd)
{
	struct sluice_addr peer;
	struct lconn *c;

	peer_addr(fd, &peer);
	c = l->free_head ? malloc(sizeof(*c)) : NULL;
	if (!c || admission_denied(l->api->adm, &peer, clock_mono_ns())) {
		refuse(l, fd, !l->free_head ? "no_slot" : c ? "denied" : "no_memory");
		free(c);
		return;
	}
	start_conn(l, fd, c, &peer, NULL, false);
}

/* A source over --max-conns-per-source may still connect when a tenant configured it (a
 * load balancer or a NAT in front of many clients). */
static bool source_exempt(struct loop *l, const struct sluice_addr *peer)
{
	struct tenants *t = tenants_ref_acquire(l->api->tenants);
	bool exempt = tenants_by_source(t, peer) != NULL;

	tenants_put(t);
	return exempt;
}

/* Take a per-source count for peer. NULL when admitted (*counted says whether a count was
 * taken: exempt sources over the limit are not counted), else the refusal reason. */
static const char *per_source(struct loop *l, const struct sluice_addr *peer, bool *counted)
{
	int err;

	*counted = false;
	if (!l->o.per_source)
		return NULL;
	err = srclimit_acquire(l->o.per_source, peer);
	*counted = !err;
	if (err == -EBUSY && !source_exempt(l, peer))
		return "max_conns_per_source";
	return err == -ENOMEM ? "no_memory" : NULL;
}

static void on_accept(struct loop *l, int fd, bool tls)
{
	struct tls_conn *t = NULL;
	struct api *r = l->api;
	const char *why = NULL;
	struct sluice_addr peer;
	bool counted = false;
	struct lconn *c;
	uint32_t idx;

	if (l->drain_started)
		return (void)close(fd);
	if (l->o.admin)
		return accept_admin(l, fd);
	if (__atomic_add_fetch(&r->open_conns, 1, __ATOMIC_RELAXED) > r->limits->max_conns) {
		__atomic_sub_fetch(&r->open_conns, 1, __ATOMIC_RELAXED);
		return refuse(l, fd, "max_conns");
	}
	peer_addr(fd, &peer);
	idx = l->free_head;
	c = idx ? malloc(sizeof(*c)) : NULL;
	if (!c || admission_denied(r->adm, &peer, clock_mono_ns()))
		why = !idx ? "no_slot" : c ? "denied" : "no_memory";
	else
		why = per_source(l, &peer, &counted);
	if (why)
		refuse(l, fd, why);
	else if (tls && !(t = tls_admit(l, fd, &peer))) /* refused and counted there */
		why = "tls";
	if (why) {
		if (counted)
			srclimit_release(l->o.per_source, &peer);
		__atomic_sub_fetch(&r->open_conns, 1, __ATOMIC_RELAXED);
		free(c);
		return;
	}
	start_conn(l, fd, c, &peer, t, counted);
}

static void arm_accept(struct loop *l, bool tls)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	l->accept_ms[tls] = l->feat & LOOP_FEAT_MULTISHOT_ACCEPT;
	if (l->accept_ms[tls])
		io_uring_prep_multishot_accept(sqe, tls ? l->tls_lfd : l->lfd, NULL, NULL,
					       SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, tls ? l->tls_lfd : l->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_ACCEPT, tls, 0));
	l->accept_armed[tls] = true;
}

static void cancel_accept(struct loop *l, bool tls)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_cancel64(sqe, loop_ud_encode(LOOP_OP_ACCEPT, tls, 0), 0);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_CANCEL, 0, 0));
}

/* accept(2) failed with err. Out of descriptors or memory, the connection stays in the
 * listen backlog and the next accept fails the same way at once: re-arming at once spun a
 * core and wrote a million log lines in 5 s. So accepts pause (the tick resumes them) and
 * the log line is rate-limited, counting what it did not print. */
static void on_accept_error(struct loop *l, int err, bool armed, bool tls)
{
	bool starved = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
	uint64_t now = clock_mono_ns();

	if (err == ECANCELED)
		return;
	l->accept_failures++;
	api_count_accept_failure(l->api, err);
	if (starved) {
		l->accept_paused_until = now + ACCEPT_PAUSE_NS;
		if (armed) /* a multishot that survived the error: stop it too */
			cancel_accept(l, tls);
	}
	if (l->accept_logged_at && now - l->accept_logged_at < ACCEPT_LOG_NS)
		return;
	l->accept_logged_at = now;
	log_warn("loop: accept failed", "thread=%d tls=%d err=\"%s\" failures=%llu paused_ms=%d",
		 l->thread_no, tls, strerror(err), (unsigned long long)l->accept_failures,
		 starved ? (int)(ACCEPT_PAUSE_NS / 1000000) : 0);
}

/* The pause after a starved accept is over: arm what is not armed. */
static void resume_accepts(struct loop *l)
{
	l->accept_paused_until = 0;
	for (int tls = 0; tls < 2 && !l->drain_started; tls++)
		if (!l->accept_armed[tls] && (!tls || l->tls_lfd >= 0))
			arm_accept(l, tls);
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
	struct lconn *lc = conn_lookup(l, cqe->user_data);
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		const char *data = l->bufs + (size_t)bid * l->o.buf_size;

		if (lc && !lc->closing && cqe->res > 0 && lc->tls)
			tls_on_data(l, lc, data, (size_t)cqe->res);
		else if (lc && !lc->closing && cqe->res > 0)
			conn_on_data(&lc->c, data, (size_t)cqe->res);
		return_buf(l, bid);
	}
	if (!lc)
		return;
	if (!more)
		lc->recv_busy = false;
	if (cqe->res == 0) {
		lc->c.peer_eof = true;
		if (lc->tls)
			tls_conn_eof(lc->tls); /* mid-handshake: a failure (counted) */
	} else if (cqe->res < 0 && cqe->res != -ENOBUFS)
		lc->c.abort = true;
	if (!more && !lc->closing && !lc->c.peer_eof && !lc->c.abort)
		arm_recv(l, lc); /* multishot ended (buffers ran out): re-arm */
	conn_update(l, lc);
}

static void on_send(struct loop *l, struct io_uring_cqe *cqe)
{
	struct lconn *lc = conn_lookup(l, cqe->user_data);
	struct conn *c;

	if (!lc)
		return;
	c = &lc->c;
	lc->send_busy = false;
	if (cqe->res < 0) {
		c->abort = true; /* timed out (-ECANCELED) or the peer is gone */
	} else {
		c->sent += (size_t)cqe->res;
		if (c->sent == c->sending.len) {
			c->sending.len = 0;
			/* TLS: the engine's output buffer was handed over (tls_seal); one that
			 * held an answer goes back to it with the next seal, for the next answer
			 * (trim_idle frees it once idle), handshake flights are freed now */
			if (lc->tls && !lc->tls_answer)
				obuf_fini(&c->sending);
			if (!lc->closing)
				conn_on_sent(c);
		} else if (!lc->closing) {
			start_send(l, lc); /* short send: the rest */
		}
	}
	conn_update(l, lc);
}

/* ---- wakeups, drain, tick --------------------------------------------------------- */

void loop_drain(struct loop *l, uint64_t deadline_ns)
{
	__atomic_store_n(&l->drain_deadline, deadline_ns ? deadline_ns : 1, __ATOMIC_RELEASE);
	inbox_wake(l->inbox);
}

static void arm_wake(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_read(sqe, inbox_fd(l->inbox), &l->wake_val, sizeof(l->wake_val), 0);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_WAKE, 0, 0));
}

static void start_drain(struct loop *l)
{
	l->drain_started = true;
	for (int tls = 0; tls < 2; tls++)
		if (l->accept_armed[tls])
			cancel_accept(l, tls);
	for (uint32_t i = 1; i < l->nslots; i++) {
		struct lconn *lc = l->slots[i].c;

		if (lc && !lc->closing) {
			conn_drain(&lc->c);
			conn_update(l, lc);
		}
	}
}

static void on_wake(struct loop *l)
{
	struct inbox_msg msgs[64];
	size_t n;

	while ((n = inbox_take(l->inbox, msgs, ARRAY_SIZE(msgs)))) {
		for (size_t i = 0; i < n; i++) {
			struct lconn *lc = conn_lookup(l, msgs[i].token);

			if (!lc || lc->c.phase != CONN_WAIT)
				continue;
			if (lc->closing) {
				/* the client left; the event is durable anyway */
				lc->c.phase = CONN_DONE;
				maybe_free(l, lc);
				continue;
			}
			conn_on_durable(&lc->c, msgs[i].err, msgs[i].id);
			conn_update(l, lc);
		}
	}
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
	uint64_t now = clock_mono_ns(), deadline;

	for (int k = CONN_T_NONE + 1; k < CONN_T_MAX; k++) {
		struct lconn *c;

		while ((c = l->head[k]) && now - c->timer_since >= l->timeout_ns[k]) {
			timer_unlink(l, c);
			if (k == CONN_T_SEND) { /* the client does not read: cancel, then close */
				struct io_uring_sqe *sqe = get_sqe(l);

				io_uring_prep_cancel64(
				    sqe, loop_ud_encode(LOOP_OP_SEND, c->idx, c->gen), 0);
				io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_CANCEL, 0, 0));
				c->c.abort = true;
				continue;
			}
			if (k == CONN_T_HANDSHAKE) { /* counted by the engine; nothing to answer */
				tls_conn_check_timeout(c->tls, now);
				c->c.abort = true;
				conn_update(l, c);
				continue;
			}
			conn_on_timeout(&c->c);
			conn_update(l, c);
		}
	}
	trim_idle(l, now);
	if (l->accept_paused_until && now >= l->accept_paused_until)
		resume_accepts(l);
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

	for (size_t i = 0; i < ARRAY_SIZE(flag_sets); i++) {
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

/* Without a buffer ring: all buffers handed over at once with IORING_OP_PROVIDE_BUFFERS (at
 * setup, so its completion is the only one). */
static int provide_all(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);
	struct io_uring_cqe *cqe;
	int err;

	io_uring_prep_provide_buffers(sqe, l->bufs, (int)l->o.buf_size, (int)l->o.bufs, BGID, 0);
	io_uring_sqe_set_data64(sqe, loop_ud_encode(LOOP_OP_PROVIDE, 0, 0));
	err = io_uring_submit_and_wait(&l->ring, 1);
	if (err < 0 || (err = io_uring_wait_cqe(&l->ring, &cqe)))
		return err;
	err = cqe->res < 0 ? cqe->res : 0; /* 5.x answers the count, 6.x 0 */
	io_uring_cqe_seen(&l->ring, cqe);
	return err;
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

/* What the ring runs on, logged once by the first loop: each feature, or the fallback and
 * the kernel version that would have it. */
static void log_features(const struct loop *l, unsigned wanted)
{
	char s[512];

	if (l->thread_no == 0)
		log_info("loop: io_uring ready", "flags=\"%s\"%s", l->ring_flags,
			 loop_features_describe(l->feat, wanted, s, sizeof(s)));
}

static void dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
	switch (loop_ud_op(cqe->user_data)) {
	case LOOP_OP_ACCEPT: {
		bool tls = loop_ud_idx(cqe->user_data) == 1;

		/* a multishot accept refused: before 5.19, one accept per connection from now */
		if (cqe->res == -EINVAL && l->accept_ms[tls])
			l->feat &= ~LOOP_FEAT_MULTISHOT_ACCEPT;
		else if (cqe->res >= 0)
			on_accept(l, cqe->res, tls);
		else
			on_accept_error(l, -cqe->res, cqe->flags & IORING_CQE_F_MORE, tls);
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			l->accept_armed[tls] = false;
			if (!l->drain_started && !l->accept_paused_until)
				arm_accept(l, tls);
		}
		break;
	}
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

	if ((err = ring_setup(l)))
		return err;
	l->ring_ok = true;
	if ((err = bufs_setup(l)))
		return err;
	l->tick_ts.tv_nsec = (long long)l->o.tick_ms % 1000 * 1000000;
	l->tick_ts.tv_sec = l->o.tick_ms / 1000;
	l->send_ts.tv_sec = l->o.send_timeout_ms / 1000;
	l->send_ts.tv_nsec = (long long)l->o.send_timeout_ms % 1000 * 1000000;
	l->timeout_ns[CONN_T_NEW] = l->api->limits->header_ns;
	l->timeout_ns[CONN_T_IDLE] = l->api->limits->idle_ns;
	l->timeout_ns[CONN_T_REQUEST] = l->api->limits->header_ns;
	l->timeout_ns[CONN_T_LINGER] = 2000000000ULL; /* unread input after a final answer */
	l->timeout_ns[CONN_T_SEND] = (uint64_t)l->o.send_timeout_ms * 1000000;
	l->timeout_ns[CONN_T_HANDSHAKE] =
	    l->o.tls_timeout_ns ? l->o.tls_timeout_ns : 10000000000ULL;
	arm_accept(l, false);
	if (l->tls_lfd >= 0)
		arm_accept(l, true);
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
