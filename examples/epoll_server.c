/* SPDX-License-Identifier: MIT */
/*
 * epoll_server: an HTTP/1.1 server on epoll whose every I/O buffer comes
 * from one cbm heap shared by all workers (or one pool, with --pool, or
 * malloc, with --malloc). Run it with --help.
 *
 * Workers: one thread per CPU, each with its own epoll set and its own
 * SO_REUSEPORT listening socket, so the kernel spreads connections and no
 * connection is ever touched by two threads. Level-triggered, non-blocking
 * sockets.
 *
 * Buffers. A connection holds one receive buffer (rx) from accept to close:
 * the bytes received and not yet answered. So the heap's ceiling bounds
 * the connections the server holds, and a connection that finds it
 * reached is answered 503 and closed: the heap is the admission control,
 * and a burst of connections cannot make the server take more memory
 * (--idle-timeout bounds how long a quiet one keeps its buffer, and
 * --header-timeout how long one may take to send a request's head, so
 * that clients that trickle requests byte by byte, slowloris, cannot hold
 * every buffer). The first rx is of --buf-size; a request that does not
 * fit moves (grow_rx) to a buffer of the class that holds it, when its
 * head says how long it is, or of twice the size while the head is still
 * coming, never past --max-request; once the connection's unanswered bytes
 * fit a first buffer again, they move back to one (shrink_rx), so a
 * keep-alive connection holds a large buffer only while a large request
 * needs it. A second buffer (tx), of what is left to send, is taken only
 * while a socket is full, for the unsent rest of a response (see
 * send_cached). The response itself is shared by every worker: a heap
 * buffer in the response cache (cache.h), rebuilt every --refresh
 * requests of a worker while others may be sending it.
 *
 * Faults. A malformed request is answered 400, one larger than
 * --max-request 413 (as soon as that is known; with --pool, one larger
 * than a buffer), one that finds no larger buffer 503, chunked bodies
 * 501, other HTTP versions 505; each then closes: the server sends FIN
 * and discards what the client still sends until it closes (so that the
 * answer is not lost to a reset), for at most DRAIN_BYTES bytes or
 * DRAIN_SECONDS seconds. When a client vanishes mid-request or
 * mid-response, its buffers go back to the heap and nothing else happens.
 * Every buffer is back at exit, and the server checks it (server.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache.h"
#include "http.h"
#include "metrics.h"
#include "server.h"

#define DRAIN_BYTES (64 * 1024)
#define DRAIN_SECONDS 2
#define EVENTS 64
#define ACCEPTS_PER_WAKEUP 64

enum conn_state {
	READING,  /* waiting for (the rest of) a request */
	WRITING,  /* the socket was full: out_len bytes left to send */
	DRAINING, /* answered and shut down: discarding input until EOF */
};

struct conn {
	struct conn *prev, *next; /* the worker's connections */
	int fd;
	enum conn_state state;
	char *rx;	  /* heap buffer: received, not yet answered */
	size_t rx_len;	  /* bytes in rx */
	size_t rx_cap;	  /* bytes rx holds */
	const char *out;  /* unsent rest of a response: in tx, or canned */
	size_t out_len;	  /* bytes at out */
	char *tx;	  /* heap buffer holding out, or NULL */
	bool close_after; /* drain once out is sent */
	bool served_one;  /* a request was answered */
	uint64_t last;	  /* last activity, server_now() */
	uint64_t since;	  /* READING: when this request's head was due to
			     begin (accept, or its first byte) */
	size_t drained;	  /* bytes discarded while draining */
};

struct ep_worker {
	struct worker base;
	struct cache *cache;
	int epfd;
	struct conn conns; /* list head */
	uint64_t now;
	unsigned since_refresh;
	bool accept_paused; /* out of descriptors: retry at the next tick */
};

/* Tags in epoll_event.data for the two descriptors that are not
 * connections. */
static char listener_tag, wake_tag;

static struct cache the_cache;

static void
conn_close(struct ep_worker *w, struct conn *c)
{
	struct bufs *b = &w->base.srv->bufs;

	close(c->fd);
	bufs_put(b, c->rx);
	bufs_put(b, c->tx);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

static int
want(struct ep_worker *w, struct conn *c, enum conn_state state)
{
	struct epoll_event ev = {
		.events = state == WRITING ? EPOLLOUT : EPOLLIN,
		.data.ptr = c,
	};

	if (c->state == state)
		return 0;
	c->state = state;
	return epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* The answer is out: send FIN, then discard input until the client
 * closes. The buffers go back now. Returns false when c was closed. */
static bool
start_drain(struct ep_worker *w, struct conn *c)
{
	bufs_put(&w->base.srv->bufs, c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	shutdown(c->fd, SHUT_WR);
	if (want(w, c, DRAINING)) {
		conn_close(w, c);
		return false;
	}
	return true;
}

static bool
would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/*
 * Send a canned error response, then close. The text is static, so an
 * unsent rest needs no buffer. Returns false when c was closed.
 */
static bool
answer_error(struct ep_worker *w, struct conn *c, int status)
{
	size_t len;
	const char *msg = http_error(status, &len);
	ssize_t n = send(c->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	served_error(&w->base.served, status);
	if (n < 0 && !would_block()) {
		w->base.served.dropped++;
		conn_close(w, c);
		return false;
	}
	if (n < 0)
		n = 0;
	c->close_after = true;
	if ((size_t)n == len)
		return start_drain(w, c);
	c->out = msg + n;
	c->out_len = len - (size_t)n;
	if (want(w, c, WRITING)) {
		conn_close(w, c);
		return false;
	}
	return true;
}

/*
 * Send the cached response. Caller contract: c has nothing unsent.
 *
 * The entry may be retired by another worker at any moment, so it is used
 * only inside a read-side section, and the section must not span a wait:
 * that would stall every grace period, so every retired buffer, behind one
 * slow client. The choice here: send from the entry inside the section
 * with a non-blocking send, which takes what the socket has room for and
 * never waits, and copy whatever it did not take into the connection's own
 * tx buffer before leaving the section. The usual case is one send and no
 * copy. A reference count on the entry would avoid the copy, but it would
 * be one cache line written by every worker on every request; a full
 * socket is rare, and its copy costs one buffer for as long as the client
 * is slow.
 *
 * Returns false when c was closed.
 */
static bool
send_cached(struct ep_worker *w, struct conn *c, bool head_only)
{
	struct bufs *b = &w->base.srv->bufs;
	const struct cache_entry *e;
	size_t len;
	ssize_t n;

	cbm_read_lock();
	e = cache_current(w->cache);
	len = head_only ? e->head_len : e->len;
	n = send(c->fd, e->data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && !would_block())
		goto drop;
	if (n < 0)
		n = 0;
	if ((size_t)n < len) {
		c->tx = bufs_get_size(b, len - (size_t)n, NULL);
		if (c->tx == NULL)
			goto drop;
		memcpy(c->tx, e->data + n, len - (size_t)n);
		c->out = c->tx;
		c->out_len = len - (size_t)n;
	}
	cbm_read_unlock();
	return true;
drop:
	cbm_read_unlock();
	w->base.served.dropped++;
	conn_close(w, c);
	return false;
}

/* Answer GET /metrics from a buffer of our own, kept as tx for what the
 * socket does not take at once. Caller contract as send_cached's. Returns
 * false when c was closed. */
static bool
send_metrics(struct ep_worker *w, struct conn *c, bool head_only)
{
	struct bufs *b = &w->base.srv->bufs;
	size_t len;
	char *tx = metrics_build(b, head_only, &len);
	ssize_t n;

	if (tx == NULL)
		return answer_error(w, c, errno == ENOMEM ? 503 : 500);
	n = send(c->fd, tx, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && !would_block()) {
		bufs_put(b, tx);
		w->base.served.dropped++;
		conn_close(w, c);
		return false;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n == len) {
		bufs_put(b, tx);
		return true;
	}
	c->tx = tx;
	c->out = tx + n;
	c->out_len = len - (size_t)n;
	return true;
}

static void
maybe_refresh(struct ep_worker *w)
{
	unsigned every = w->base.srv->opts.refresh;

	if (every && ++w->since_refresh >= every) {
		w->since_refresh = 0;
		/* -ENOMEM (pool empty): keep serving the current entry. */
		cache_refresh(w->cache);
	}
}

/*
 * The request at the start of rx is not whole and fills rx: move it to a
 * buffer of the class that holds all of it when its head said how long it
 * is (need), else of twice the size, up to the limit. http_parse has
 * answered 413 past the limit, so rx is below it here. Returns false when
 * no buffer could be had: c is answered 503 (or closed).
 */
static bool
grow_rx(struct ep_worker *w, struct conn *c, size_t need)
{
	char *rx = bufs_grow(&w->base.srv->bufs, c->rx, c->rx_len, need,
			     w->base.srv->max_request, &c->rx_cap);

	if (rx == NULL) {
		answer_error(w, c, 503);
		return false;
	}
	c->rx = rx;
	return true;
}

/* What is left in a large rx fits a first buffer: move it there, so that
 * the large one is free for the next large request. No buffer: keep it. */
static void
shrink_rx(struct ep_worker *w, struct conn *c)
{
	struct bufs *b = &w->base.srv->bufs;
	size_t cap;
	char *rx;

	if (c->rx_cap <= b->size || c->rx_len > b->size)
		return;
	rx = bufs_move(b, c->rx, c->rx_len, b->size, &cap);
	if (rx) {
		c->rx = rx;
		c->rx_cap = cap;
	}
}

/* Answer every complete request in rx, in order, while the socket takes
 * the answers. A request that fills rx moves to a larger one. */
static void
process(struct ep_worker *w, struct conn *c)
{
	size_t limit = w->base.srv->max_request;

	while (c->state == READING) {
		struct http_request req;
		enum http_result r = http_parse(c->rx, c->rx_len, limit, &req);

		if (r == HTTP_PARTIAL) {
			/* The next recv needs room. */
			if (c->rx_len == c->rx_cap)
				grow_rx(w, c, req.length);
			return;
		}
		if (r == HTTP_ERROR) {
			answer_error(w, c, req.status);
			return;
		}
		if (req.metrics ? !send_metrics(w, c, req.head)
				: !send_cached(w, c, req.head))
			return;
		w->base.served.requests++;
		c->served_one = true;
		c->rx_len -= req.length;
		memmove(c->rx, c->rx + req.length, c->rx_len);
		shrink_rx(w, c);
		/* The next request's head is due from its first byte. */
		c->since = w->now;
		if (!req.keep_alive)
			c->close_after = true;
		maybe_refresh(w);
		if (c->out) {
			if (want(w, c, WRITING))
				conn_close(w, c);
			return;
		}
		if (c->close_after) {
			start_drain(w, c);
			return;
		}
	}
}

static void
on_readable(struct ep_worker *w, struct conn *c)
{
	size_t room = c->rx_cap - c->rx_len;
	ssize_t n = recv(c->fd, c->rx + c->rx_len, room, 0);

	if (n > 0) {
		if (c->rx_len == 0 && c->served_one)
			c->since = w->now;
		c->rx_len += (size_t)n;
		process(w, c);
		return;
	}
	if (n < 0 && would_block())
		return;
	/* EOF or reset. Bytes of an unanswered request: it vanished. */
	if (c->rx_len > 0)
		w->base.served.vanished++;
	conn_close(w, c);
}

static void
on_writable(struct ep_worker *w, struct conn *c)
{
	ssize_t n =
		send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0) {
		if (would_block())
			return;
		w->base.served.dropped++;
		conn_close(w, c);
		return;
	}
	c->out += n;
	c->out_len -= (size_t)n;
	if (c->out_len > 0)
		return;
	bufs_put(&w->base.srv->bufs, c->tx);
	c->tx = NULL;
	c->out = NULL;
	if (c->close_after) {
		start_drain(w, c);
		return;
	}
	if (want(w, c, READING)) {
		conn_close(w, c);
		return;
	}
	process(w, c); /* requests that came in behind the one answered */
}

static void
on_drain(struct ep_worker *w, struct conn *c)
{
	/* MSG_TRUNC on TCP: the kernel discards up to sizeof(sink) bytes and
	 * copies none; sink only gives sanitizers' recv interceptors a real
	 * address for what they take to be written. */
	char sink[2048];

	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof(sink),
				 MSG_TRUNC | MSG_DONTWAIT);

		if (n < 0 && would_block())
			return;
		if (n <= 0) {
			conn_close(w, c);
			return;
		}
		c->drained += (size_t)n;
		if (c->drained > DRAIN_BYTES) {
			conn_close(w, c);
			return;
		}
	}
}

static void
accept_some(struct ep_worker *w)
{
	struct bufs *b = &w->base.srv->bufs;
	int one = 1;

	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		int fd = accept4(w->base.listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN};
		struct conn *c;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of descriptors or memory: the listener stays
			 * readable, so leave it alone until the next tick. */
			w->base.served.accept_errors++;
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->base.listen_fd,
				  NULL);
			w->accept_paused = true;
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			w->base.served.accept_errors++;
			close(fd);
			continue;
		}
		w->base.served.connections++;
		c->fd = fd;
		c->last = c->since = w->now;
		c->state = READING;
		c->next = w->conns.next;
		c->prev = &w->conns;
		c->next->prev = c;
		w->conns.next = c;
		ev.data.ptr = c;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			w->base.served.accept_errors++;
			conn_close(w, c);
			continue;
		}
		c->rx = bufs_get(b);
		c->rx_cap = b->size;
		if (c->rx == NULL)
			answer_error(w, c, 503);
	}
}

/* A request head that was due to begin (at accept, or at the first byte
 * after a request answered) head seconds ago and is still not whole. A
 * keep-alive connection that waits between requests, with nothing
 * received, is idle, not slow: --idle-timeout is its limit. */
static bool
head_overdue(const struct ep_worker *w, const struct conn *c, uint64_t head)
{
	if (c->state != READING || (c->rx_len == 0 && c->served_one))
		return false;
	return w->now - c->since >= head;
}

/* Once a second: close connections that stayed quiet too long or are too
 * slow to send a request's head, and take the listener back after a
 * shortage of descriptors. */
static void
tick(struct ep_worker *w)
{
	uint64_t idle = w->base.srv->opts.idle_timeout;
	uint64_t head = w->base.srv->opts.header_timeout;
	struct conn *c = w->conns.next;

	while (c != &w->conns) {
		struct conn *next = c->next;
		uint64_t limit = c->state == DRAINING ? DRAIN_SECONDS : idle;

		if (w->now - c->last >= limit) {
			if (c->state != DRAINING)
				w->base.served.idle++;
			conn_close(w, c);
		} else if (head_overdue(w, c, head)) {
			/* However busy it keeps the socket: slowloris. */
			w->base.served.slow++;
			conn_close(w, c);
		}
		c = next;
	}
	if (w->accept_paused) {
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.ptr = &listener_tag};

		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->base.listen_fd, &ev) ==
		    0)
			w->accept_paused = false;
	}
}

static void
on_event(struct ep_worker *w, struct conn *c, uint32_t events)
{
	c->last = w->now;
	switch (c->state) {
	case READING:
		on_readable(w, c);
		break;
	case WRITING:
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_writable(w, c);
		break;
	case DRAINING:
		on_drain(w, c);
		break;
	}
}

static void *
run(void *arg)
{
	struct ep_worker *w = arg;
	struct epoll_event ev = {.events = EPOLLIN};
	struct epoll_event events[EVENTS];
	uint64_t last_tick;
	bool stop = false;

	w->cache = w->base.srv->impl;
	w->conns.next = w->conns.prev = &w->conns;
	w->now = last_tick = server_now();
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		perror("epoll_create1");
		w->base.failed = 1;
		return NULL;
	}
	ev.data.ptr = &listener_tag;
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->base.listen_fd, &ev);
	ev.data.ptr = &wake_tag;
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->base.wake_fd, &ev);
	while (!stop) {
		int n = epoll_wait(w->epfd, events, EVENTS, 1000);

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			w->base.failed = 1;
			break;
		}
		w->now = server_now();
		/*
		 * epoll reports a descriptor at most once per wait, and a
		 * connection is closed only while handling its own event or
		 * in tick, after the batch: no event below can name a
		 * connection that is already gone.
		 */
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &wake_tag)
				stop = true;
			else if (p == &listener_tag)
				accept_some(w);
			else
				on_event(w, p, events[i].events);
		}
		if (w->now != last_tick) {
			last_tick = w->now;
			tick(w);
		}
	}
	while (w->conns.next != &w->conns)
		conn_close(w, w->conns.next);
	close(w->epfd);
	return NULL;
}

static int
prepare(struct server *s)
{
	if (cache_init(&the_cache, &s->bufs, "cbm-epoll", s->opts.body_size)) {
		fprintf(stderr, "epoll_server: no buffer for the response\n");
		return EXIT_LOST;
	}
	s->impl = &the_cache;
	return 0;
}

static void
finish(struct server *s)
{
	cache_fini(s->impl);
}

static void
report(struct server *s, FILE *out)
{
	struct cache *c = s->impl;

	fprintf(out,
		"cache: generation=%llu refreshes=%llu dry=%llu (old "
		"entries retired, back after a grace period)\n",
		(unsigned long long)atomic_load(&c->generation),
		(unsigned long long)atomic_load(&c->refreshes),
		(unsigned long long)atomic_load(&c->dry));
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.name = "epoll_server",
		.kind = SERVER_EPOLL,
		.worker_size = sizeof(struct ep_worker),
		.prepare = prepare,
		.run = run,
		.finish = finish,
		.report = report,
	};

	return server_main(argc, argv, &ops);
}
