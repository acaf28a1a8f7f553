/* SPDX-License-Identifier: MIT */
/*
 * uring_server: an HTTP/1.1 server on io_uring whose receive buffers are
 * chosen by the kernel from a provided-buffer ring that a cbm heap keeps
 * full of first buffers (pbuf.h), and whose larger request buffers and
 * response buffers come from the same heap (or one pool, with --pool, or
 * malloc, with --malloc). A provided-buffer ring names user memory per
 * buffer and registers none, so any heap buffer will do. Run it with
 * --help.
 *
 * Workers: one thread per CPU, each with its own io_uring, its own
 * SO_REUSEPORT listening socket (multishot accept) and its own
 * provided-buffer ring, so no connection is touched by two threads.
 *
 * Receive: one multishot receive per connection, with buffer selection:
 * the kernel takes a buffer from the ring for each piece of data and
 * names it in the completion. The worker takes the buffer out of the ring
 * (the ring gets a fresh one from the heap after the batch), and the
 * buffer becomes the connection's rx: the bytes received and not yet
 * answered. A request that comes in several pieces is gathered into the
 * first piece's buffer, and the others go straight back to the heap; one
 * that fills that buffer moves to a larger one (grow_rx: the class that
 * holds the whole request once its head says how long it is, else twice
 * the size), up to --max-request, past which it is 413. An
 * idle connection holds no buffer at all: here, unlike epoll_server, the
 * number of connections is not bounded by the heap.
 *
 * Backpressure: while a connection's answers are going out, what it sends
 * is queued as the received buffers themselves (chunks); at PAUSE_CHUNKS
 * its multishot receive is cancelled, so that the kernel's socket buffer,
 * and TCP's window, hold the rest, and it is armed again once the queue is
 * taken in. A client that pipelines ahead of its answers is slowed down,
 * not cut off, and costs a bounded number of buffers.
 *
 * Send: the responses to the complete requests in rx are built into one tx
 * first buffer from the heap and sent with one send; at most one send per
 * connection is in flight, so responses leave in order.
 *
 * Running dry. When the heap is at its ceiling the ring is not refilled;
 * a receive that finds the ring empty ends with ENOBUFS, and its
 * connection waits, its data still in the kernel, until the ring has
 * buffers again. A connection that already holds part of a request when
 * that happens is answered 503 and closed, so that buffers held by
 * half-received requests cannot starve everyone. A complete request that finds no buffer for its
 * response is answered 503 too. Faults (malformed, oversized, vanishing
 * clients) are handled as in epoll_server.c.
 *
 * Degrading: the server checks at start that io_uring and provided-buffer
 * rings (Linux 5.19) work here, and exits 3 saying what is missing if not.
 * Without multishot receive (before 6.0) it says so once and re-arms one
 * receive per completion instead, as --single-shot does on purpose;
 * without IORING_SETUP_DEFER_TASKRUN (before 6.1) it says so and runs
 * without.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"
#include "pbuf.h"
#include "server.h"

#define DRAIN_BYTES (64 * 1024)
#define DRAIN_SECONDS 2
/* Received buffers a connection may queue while its answers go out: at
 * PAUSE_CHUNKS its receive is cancelled (what is already on its way is
 * still queued), at MAX_CHUNKS it is closed. */
#define PAUSE_CHUNKS 4
#define MAX_CHUNKS 32
#define SQ_ENTRIES 512
#define CQ_ENTRIES 8192
#define BGID 0

/*
 * user_data: a connection's address with the operation in the low bits
 * (connections are malloc'd, so 16-aligned), or, with no address, one of
 * the worker's own operations.
 */
enum {
	OP_RECV = 1,
	OP_SEND = 2,
	UD_ACCEPT = 3,
	UD_WAKE = 4,
	UD_TICK = 5,
	UD_CANCEL = 6,
	OP_MASK = 7,
};

struct link {
	struct link *prev, *next;
};

#define CONN_OF(l, member)                                                     \
	((struct uconn *)(void *)((char *)(l)-offsetof(struct uconn, member)))

/* A received buffer, not yet moved into rx. */
struct chunk {
	char *buf;
	uint32_t off, len;
};

struct uconn {
	struct link node; /* in the live or the closing list */
	struct link wait; /* in the starved list, when starved */
	int fd;
	char *rx; /* heap buffer: received, not yet answered */
	size_t rx_len;
	size_t rx_cap;	/* bytes rx holds */
	size_t rx_need; /* the request in rx: its length once its head is
			   whole, else 0 */
	struct chunk chunks[MAX_CHUNKS]; /* received behind rx, in order */
	unsigned nchunks;
	const char *out; /* what the send in flight sends: tx, or canned */
	size_t out_len;
	char *tx; /* heap buffer holding out, or NULL */
	bool recv_armed;
	bool send_inflight;
	bool starved;  /* waiting for the ring to have buffers */
	bool paused;   /* receive cancelled until the chunks are in rx */
	bool closing;  /* on the closing list, waiting for its operations */
	bool draining; /* answered and shut down: discard until EOF */
	bool close_after;
	uint64_t last;
	size_t drained;
};

struct response {
	char *data; /* the 200 response, head and body */
	size_t head_len, len;
};

struct ur_worker {
	struct worker base;
	struct io_uring ring;
	struct pbuf_ring pbr;
	const struct response *resp;
	struct link live, closing, starved; /* list heads */
	struct __kernel_timespec tick_ts;
	uint64_t now;
	uint64_t enobufs; /* receives that found the ring empty */
	uint64_t pauses;  /* receives paused for backpressure */
	bool accept_armed, accept_paused, tick_armed, stopping;
	bool multishot_recv;
};

static struct response the_response;
static atomic_uint_fast64_t total_enobufs, total_dry, total_pauses;
static atomic_flag said_recv_fallback = ATOMIC_FLAG_INIT;
static atomic_flag said_taskrun_fallback = ATOMIC_FLAG_INIT;

static void
say_once(atomic_flag *flag, const char *what)
{
	if (!atomic_flag_test_and_set(flag))
		fprintf(stderr, "uring_server: %s\n", what);
}

/* An SQE; when the queue is full, submit what is in it first. (The
 * kernel takes submissions as long as it can post their completions, and
 * with IORING_FEAT_NODROP, 5.5, it keeps the ones that overflow.) */
static struct io_uring_sqe *
sqe_get(struct ur_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	while (sqe == NULL) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

static void
arm_accept(struct ur_worker *w)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	/* Multishot accept came with provided-buffer rings (5.19). */
	io_uring_prep_multishot_accept(sqe, w->base.listen_fd, NULL, NULL,
				       SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, UD_ACCEPT);
	w->accept_armed = true;
}

static void
arm_tick(struct ur_worker *w)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	w->tick_ts.tv_sec = 1;
	w->tick_ts.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, UD_TICK);
	w->tick_armed = true;
}

static void
arm_recv(struct ur_worker *w, struct uconn *c)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	/* Length 0: as much as the buffer the kernel picks holds. */
	if (w->multishot_recv)
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
	c->recv_armed = true;
}

static void
submit_send(struct ur_worker *w, struct uconn *c)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	io_uring_prep_send(sqe, c->fd, c->out, c->out_len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
	c->send_inflight = true;
}

static void
cancel_fd(struct ur_worker *w, int fd)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, UD_CANCEL);
}

static void
list_init(struct link *head)
{
	head->next = head->prev = head;
}

static bool
list_empty(const struct link *head)
{
	return head->next == head;
}

/* At the tail: the starved list is first come, first served. */
static void
list_add_tail(struct link *head, struct link *l)
{
	l->prev = head->prev;
	l->next = head;
	l->prev->next = l;
	head->prev = l;
}

static void
list_del(struct link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
}

/* Give back every byte received and not answered. */
static void
drop_input(struct ur_worker *w, struct uconn *c)
{
	bufs_put(&w->base.srv->bufs, c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	while (c->nchunks > 0)
		bufs_put(&w->base.srv->bufs, c->chunks[--c->nchunks].buf);
}

/*
 * Close c. Its operations may still be in flight, and the kernel may still
 * write into a buffer it picked or read from tx: so c only moves to the
 * closing list, its operations are cancelled, and reap() frees it once
 * their last completions are in. Handlers can therefore go on using c
 * after calling this.
 */
static void
conn_close(struct ur_worker *w, struct uconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	drop_input(w, c);
	if (c->recv_armed || c->send_inflight)
		cancel_fd(w, c->fd);
	if (c->starved) {
		c->starved = false;
		list_del(&c->wait);
	}
	list_del(&c->node);
	list_add_tail(&w->closing, &c->node);
}

/* Free the closed connections whose last completions are in. */
static void
reap(struct ur_worker *w)
{
	struct link *l = w->closing.next;

	while (l != &w->closing) {
		struct uconn *c = CONN_OF(l, node);

		l = l->next;
		if (!c->recv_armed && !c->send_inflight) {
			list_del(&c->node);
			close(c->fd);
			bufs_put(&w->base.srv->bufs, c->tx);
			free(c);
		}
	}
}

/* Send a canned error response, then drain. */
static void
answer_error(struct ur_worker *w, struct uconn *c, int status)
{
	served_error(&w->base.served, status);
	drop_input(w, c);
	c->out = http_error(status, &c->out_len);
	c->close_after = true;
	submit_send(w, c);
}

static void
start_drain(struct ur_worker *w, struct uconn *c)
{
	drop_input(w, c);
	c->draining = true;
	shutdown(c->fd, SHUT_WR);
}

/* Answer the complete requests in rx with one send (tx, a first buffer;
 * /metrics, one of its own size). Caller contract: no send in flight. */
static void
process(struct ur_worker *w, struct uconn *c)
{
	struct bufs *b = &w->base.srv->bufs;
	size_t limit = w->base.srv->max_request;
	char *tx = NULL;
	size_t tx_len = 0;

	c->rx_need = 0;
	while (c->rx_len > 0) {
		struct http_request req;
		enum http_result r = http_parse(c->rx, c->rx_len, limit, &req);
		size_t len;

		if (r == HTTP_PARTIAL) {
			c->rx_need = req.length;
			break;
		}
		if (r == HTTP_ERROR) {
			if (tx)
				break; /* after the answers before it */
			answer_error(w, c, req.status);
			return;
		}
		len = req.head ? w->resp->head_len : w->resp->len;
		if (req.metrics) {
			/* GET /metrics: the statistics in a buffer of their
			 * own size, sent alone (after the answers before). */
			if (tx)
				break;
			tx = metrics_build(b, req.head, &len);
			if (tx == NULL) {
				answer_error(w, c, errno == ENOMEM ? 503 : 500);
				return;
			}
			tx_len = len;
			w->base.served.requests++;
			c->rx_len -= req.length;
			memmove(c->rx, c->rx + req.length, c->rx_len);
			if (!req.keep_alive)
				c->close_after = true;
			break;
		}
		if (tx == NULL) {
			tx = bufs_get(b);
			if (tx == NULL) {
				answer_error(w, c, 503);
				return;
			}
		}
		if (tx_len + len > b->size)
			break; /* the rest after this send */
		memcpy(tx + tx_len, w->resp->data, len);
		tx_len += len;
		w->base.served.requests++;
		c->rx_len -= req.length;
		memmove(c->rx, c->rx + req.length, c->rx_len);
		if (!req.keep_alive) {
			c->close_after = true;
			break;
		}
	}
	if (c->rx_len == 0) {
		bufs_put(b, c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
	if (tx) {
		c->tx = tx;
		c->out = tx;
		c->out_len = tx_len;
		submit_send(w, c);
	}
}

/* Stop c's receive until its queued chunks are taken in. */
static void
pause_recv(struct ur_worker *w, struct uconn *c)
{
	struct io_uring_sqe *sqe;

	c->paused = true;
	w->pauses++;
	if (!c->recv_armed)
		return;
	sqe = sqe_get(w);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)c | OP_RECV, 0);
	io_uring_sqe_set_data64(sqe, UD_CANCEL);
}

/*
 * The request in rx is not whole and fills it: move it to a buffer of the
 * class that holds all of it once its head said how long it is, else of
 * twice the size, up to the limit (process() has answered 413 past it, so
 * rx is below it here). Returns false when no buffer could be had: c is
 * answered 503.
 */
static bool
grow_rx(struct ur_worker *w, struct uconn *c)
{
	char *rx = bufs_grow(&w->base.srv->bufs, c->rx, c->rx_len, c->rx_need,
			     w->base.srv->max_request, &c->rx_cap);

	if (rx == NULL) {
		answer_error(w, c, 503);
		return false;
	}
	c->rx = rx;
	return true;
}

/*
 * Answer what can be answered, moving queued chunks into rx as it makes
 * room, until a send is in flight or nothing is left; then let a paused
 * receive go on. process() answers a request past the limit with 413, and
 * a full rx below it grows, so whenever the copy below runs, rx has room.
 */
static void
pump(struct ur_worker *w, struct uconn *c)
{
	struct bufs *b = &w->base.srv->bufs;

	for (;;) {
		struct chunk *k = &c->chunks[0];
		size_t n;

		process(w, c);
		if (c->send_inflight || c->closing || c->draining ||
		    c->nchunks == 0)
			break;
		if (c->rx != NULL && c->rx_len == c->rx_cap && !grow_rx(w, c))
			break;
		n = k->len - k->off;
		if (c->rx == NULL) {
			/* The usual case: the kernel's buffer becomes rx,
			 * no copy. */
			memmove(k->buf, k->buf + k->off, n);
			c->rx = k->buf;
			c->rx_len = n;
			c->rx_cap = b->size;
			k->off = k->len;
		} else {
			if (n > c->rx_cap - c->rx_len)
				n = c->rx_cap - c->rx_len;
			memcpy(c->rx + c->rx_len, k->buf + k->off, n);
			c->rx_len += n;
			k->off += (uint32_t)n;
			if (k->off == k->len)
				bufs_put(b, k->buf);
		}
		if (k->off == k->len)
			memmove(c->chunks, c->chunks + 1,
				--c->nchunks * sizeof(*c->chunks));
	}
	if (c->paused && c->nchunks == 0 && !c->closing) {
		c->paused = false;
		if (!c->recv_armed && !c->starved)
			arm_recv(w, c);
	}
}

static void
on_data(struct ur_worker *w, struct uconn *c, char *buf, size_t n)
{
	/* Answered, to be closed, the answer maybe still on its way: what
	 * comes now is discarded, as while draining; queued, it would hold
	 * buffers, and the ring running dry would then shed the connection
	 * with a reset that can beat the answer to the client. */
	if (c->draining || c->close_after) {
		bufs_put(&w->base.srv->bufs, buf);
		c->drained += n;
		if (c->drained > DRAIN_BYTES)
			conn_close(w, c);
		return;
	}
	if (c->nchunks == MAX_CHUNKS) {
		/* Far ahead of its answers even after the pause. */
		bufs_put(&w->base.srv->bufs, buf);
		w->base.served.dropped++;
		conn_close(w, c);
		return;
	}
	c->chunks[c->nchunks++] = (struct chunk){buf, 0, (uint32_t)n};
	if (c->nchunks >= PAUSE_CHUNKS && !c->paused)
		pause_recv(w, c);
	if (!c->send_inflight)
		pump(w, c);
}

/* The ring was empty when data came for c. */
static void
on_starved(struct ur_worker *w, struct uconn *c)
{
	w->enobufs++;
	if (c->draining) {
		conn_close(w, c);
	} else if (c->rx != NULL || c->nchunks > 0) {
		/* Holding part of a request and asking for more: shed. */
		if (c->send_inflight) {
			w->base.served.dropped++;
			conn_close(w, c);
		} else {
			answer_error(w, c, 503);
		}
	} else {
		c->starved = true;
		list_add_tail(&w->starved, &c->wait);
	}
}

static void
on_recv(struct ur_worker *w, struct uconn *c, int res, unsigned flags)
{
	char *buf = NULL;

	if (!(flags & IORING_CQE_F_MORE))
		c->recv_armed = false;
	if (flags & IORING_CQE_F_BUFFER)
		buf = pbuf_ring_take(&w->pbr, flags >> IORING_CQE_BUFFER_SHIFT);
	if (c->closing) {
		bufs_put(&w->base.srv->bufs, buf);
		return;
	}
	c->last = w->now;
	if (res > 0) {
		on_data(w, c, buf, (size_t)res);
	} else {
		bufs_put(&w->base.srv->bufs, buf);
		if (res == -ENOBUFS) {
			on_starved(w, c);
		} else if (res == -ECANCELED && c->paused) {
			/* pause_recv's doing. */
		} else if (res == -EINVAL && w->multishot_recv) {
			say_once(&said_recv_fallback,
				 "multishot receive unsupported here (needs "
				 "Linux 6.0): one receive per submission");
			w->multishot_recv = false;
		} else {
			/* EOF, reset, error. Part of a request: vanished. */
			if (c->rx_len > 0)
				w->base.served.vanished++;
			conn_close(w, c);
		}
	}
	if (!c->closing && !c->recv_armed && !c->starved && !c->paused)
		arm_recv(w, c);
}

static void
on_send(struct ur_worker *w, struct uconn *c, int res)
{
	c->send_inflight = false;
	if (c->closing)
		return;
	c->last = w->now;
	if (res < 0) {
		w->base.served.dropped++;
		conn_close(w, c);
		return;
	}
	c->out += res;
	c->out_len -= (size_t)res;
	if (c->out_len > 0) {
		submit_send(w, c);
		return;
	}
	bufs_put(&w->base.srv->bufs, c->tx);
	c->tx = NULL;
	c->out = NULL;
	if (c->close_after)
		start_drain(w, c);
	else
		pump(w, c); /* requests that came in meanwhile */
}

static void
on_accept(struct ur_worker *w, int res, unsigned flags)
{
	struct uconn *c;
	int one = 1;

	if (!(flags & IORING_CQE_F_MORE))
		w->accept_armed = false;
	if (res < 0) {
		if (res != -ECANCELED && res != -EINTR &&
		    res != -ECONNABORTED) {
			/* Out of descriptors or memory: wait a tick. */
			w->base.served.accept_errors++;
			w->accept_paused = true;
		}
	} else if (w->stopping) {
		close(res);
	} else {
		setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			w->base.served.accept_errors++;
			close(res);
		} else {
			w->base.served.connections++;
			c->fd = res;
			c->last = w->now;
			list_add_tail(&w->live, &c->node);
			arm_recv(w, c);
		}
	}
	if (!w->accept_armed && !w->accept_paused && !w->stopping)
		arm_accept(w);
}

/* Once a second: close quiet connections, retry a paused accept. */
static void
on_tick(struct ur_worker *w)
{
	uint64_t idle = w->base.srv->opts.idle_timeout;
	struct link *l = w->live.next;

	w->tick_armed = false;
	if (w->stopping)
		return;
	while (l != &w->live) {
		struct uconn *c = CONN_OF(l, node);
		uint64_t limit = c->draining ? DRAIN_SECONDS : idle;

		l = l->next;
		if (w->now - c->last >= limit) {
			if (!c->draining)
				w->base.served.idle++;
			conn_close(w, c);
		}
	}
	if (w->accept_paused) {
		w->accept_paused = false;
		if (!w->accept_armed)
			arm_accept(w);
	}
	arm_tick(w);
}

static void
begin_stop(struct ur_worker *w)
{
	struct io_uring_sqe *sqe;

	w->stopping = true;
	if (w->accept_armed)
		cancel_fd(w, w->base.listen_fd);
	if (w->tick_armed) {
		sqe = sqe_get(w);
		io_uring_prep_cancel64(sqe, UD_TICK, 0);
		io_uring_sqe_set_data64(sqe, UD_CANCEL);
	}
	while (!list_empty(&w->live))
		conn_close(w, CONN_OF(w->live.next, node));
}

/* After a batch: refill the ring, and let as many starved connections
 * receive again as it has buffers for. */
static void
feed(struct ur_worker *w)
{
	unsigned avail = pbuf_ring_refill(&w->pbr);

	while (!list_empty(&w->starved) && avail > 0) {
		struct uconn *c = CONN_OF(w->starved.next, wait);

		list_del(&c->wait);
		c->starved = false;
		arm_recv(w, c);
		avail--;
	}
}

static void
dispatch(struct ur_worker *w, uint64_t ud, int res, unsigned flags)
{
	struct uconn *c = (struct uconn *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);

	switch (ud & OP_MASK) {
	case OP_RECV:
		on_recv(w, c, res, flags);
		break;
	case OP_SEND:
		on_send(w, c, res);
		break;
	case UD_ACCEPT:
		on_accept(w, res, flags);
		break;
	case UD_WAKE:
		begin_stop(w);
		break;
	case UD_TICK:
		on_tick(w);
		break;
	default: /* UD_CANCEL: nothing to do */
		break;
	}
}

static int
ring_init(struct ur_worker *w)
{
	struct io_uring_params p = {0};
	int rc;

	/* One thread submits and waits: let the kernel run completions'
	 * work only when that thread asks for events. */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = CQ_ENTRIES;
	rc = io_uring_queue_init_params(SQ_ENTRIES, &w->ring, &p);
	if (rc == -EINVAL) {
		say_once(&said_taskrun_fallback,
			 "IORING_SETUP_DEFER_TASKRUN unsupported here (needs "
			 "Linux 6.1): running without");
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = CQ_ENTRIES;
		rc = io_uring_queue_init_params(SQ_ENTRIES, &w->ring, &p);
	}
	return rc;
}

static void *
run(void *arg)
{
	struct ur_worker *w = arg;
	struct server *s = w->base.srv;
	struct io_uring_sqe *sqe;
	int rc;

	w->resp = s->impl;
	list_init(&w->live);
	list_init(&w->closing);
	list_init(&w->starved);
	w->multishot_recv = !s->opts.single_shot;
	w->now = server_now();
	rc = ring_init(w);
	if (rc) {
		fprintf(stderr, "uring_server: io_uring_queue_init: %s\n",
			strerror(-rc));
		w->base.failed = 1;
		return NULL;
	}
	rc = pbuf_ring_init(&w->pbr, &w->ring, &s->bufs, s->opts.ring_entries,
			    BGID);
	if (rc) {
		fprintf(stderr, "uring_server: provided-buffer ring: %s\n",
			strerror(-rc));
		w->base.failed = 1;
		io_uring_queue_exit(&w->ring);
		return NULL;
	}
	arm_accept(w);
	arm_tick(w);
	sqe = sqe_get(w);
	io_uring_prep_poll_add(sqe, w->base.wake_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_WAKE);

	while (!w->stopping || !list_empty(&w->live) ||
	       !list_empty(&w->closing) || w->accept_armed || w->tick_armed) {
		struct io_uring_cqe *cqe;

		rc = io_uring_submit_and_wait(&w->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			fprintf(stderr, "uring_server: io_uring_enter: %s\n",
				strerror(-rc));
			w->base.failed = 1;
			break;
		}
		w->now = server_now();
		while (io_uring_peek_cqe(&w->ring, &cqe) == 0) {
			uint64_t ud = cqe->user_data;
			int res = cqe->res;
			unsigned flags = cqe->flags;

			io_uring_cqe_seen(&w->ring, cqe);
			dispatch(w, ud, res, flags);
		}
		if (!w->stopping)
			feed(w);
		reap(w);
	}
	atomic_fetch_add(&total_enobufs, w->enobufs);
	atomic_fetch_add(&total_dry, w->pbr.dry);
	atomic_fetch_add(&total_pauses, w->pauses);
	pbuf_ring_fini(&w->pbr, &w->ring);
	io_uring_queue_exit(&w->ring);
	return NULL;
}

/* A provided-buffer ring of one buffer on ring, and away again. */
static int
probe_buf_ring(struct io_uring *ring)
{
	struct pbuf_ring pbr;
	struct bufs one;
	int rc = bufs_init(&one, "probe", 64, 1, 0, false);

	if (rc)
		return rc;
	rc = pbuf_ring_init(&pbr, ring, &one, 1, BGID);
	if (rc == 0)
		pbuf_ring_fini(&pbr, ring);
	bufs_fini(&one);
	return rc;
}

/* Does this kernel give us what the workers need? Says what is missing. */
static bool
kernel_supports(void)
{
	static const int ops[] = {IORING_OP_ACCEPT,  IORING_OP_RECV,
				  IORING_OP_SEND,    IORING_OP_ASYNC_CANCEL,
				  IORING_OP_TIMEOUT, IORING_OP_POLL_ADD};
	struct io_uring_probe *probe;
	struct io_uring ring;
	bool ok = true;
	int rc;

	rc = io_uring_queue_init(4, &ring, 0);
	if (rc) {
		fprintf(stderr,
			"uring_server: io_uring is not available here (%s); "
			"epoll_server does without\n",
			strerror(-rc));
		return false;
	}
	probe = io_uring_get_probe_ring(&ring);
	for (size_t i = 0; probe && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!io_uring_opcode_supported(probe, ops[i])) {
			fprintf(stderr,
				"uring_server: io_uring here lacks opcode %d\n",
				ops[i]);
			ok = false;
		}
	io_uring_free_probe(probe);
	rc = ok ? probe_buf_ring(&ring) : 0;
	if (rc) {
		fprintf(stderr,
			"uring_server: provided-buffer rings are not available "
			"here (%s; they need Linux 5.19)\n",
			strerror(-rc));
		ok = false;
	}
	io_uring_queue_exit(&ring);
	return ok;
}

/* Before any worker: check the kernel (exit 3 if it lacks something), and
 * build the response. */
static int
prepare(struct server *s)
{
	if (!kernel_supports())
		return EXIT_UNSUPPORTED;
	the_response.data = malloc(RESPONSE_HEAD_MAX + s->opts.body_size);
	if (the_response.data == NULL)
		return EXIT_LOST;
	the_response.head_len = http_ok_head(the_response.data, "cbm-uring",
					     s->opts.body_size, 1);
	http_fill_body(the_response.data + the_response.head_len,
		       s->opts.body_size);
	the_response.len = the_response.head_len + s->opts.body_size;
	s->impl = &the_response;
	return 0;
}

static void
finish(struct server *s)
{
	(void)s;
	free(the_response.data);
}

static void
report(struct server *s, FILE *out)
{
	/* Workers have stopped: the flag is read after they set it. */
	bool fell_back = atomic_flag_test_and_set(&said_recv_fallback);
	const char *recv = s->opts.single_shot ? "single-shot (--single-shot)"
			   : fell_back	       ? "single-shot (no multishot)"
					       : "multishot";

	fprintf(out,
		"ring: receive=%s entries=%u per worker, receives that found "
		"it empty=%llu, refills cut short by an empty heap or "
		"pool=%llu, "
		"receives paused for backpressure=%llu\n",
		recv, s->opts.ring_entries,
		(unsigned long long)atomic_load(&total_enobufs),
		(unsigned long long)atomic_load(&total_dry),
		(unsigned long long)atomic_load(&total_pauses));
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.name = "uring_server",
		.kind = SERVER_URING,
		.worker_size = sizeof(struct ur_worker),
		.prepare = prepare,
		.run = run,
		.finish = finish,
		.report = report,
	};

	return server_main(argc, argv, &ops);
}
