/* SPDX-License-Identifier: MIT */
/*
 * file_server: an HTTP/1.1 server of the files under --root, whose file
 * bytes go disk -> pool buffer -> socket without a copy in user space.
 * Run it with --help.
 *
 * Workers: one thread per CPU, each with its own io_uring and its own
 * SO_REUSEPORT listening socket (multishot accept), as in uring_server.c.
 * Each worker registers the pool's memory with its ring once, as the
 * pool's regions (cbm_pool_regions: at most 1 GiB each, no buffer across
 * two), so no read or send into a pool buffer pins or unpins a page.
 *
 * A request: received into the connection's own small buffer (requests
 * are small; the pool holds file blocks), parsed (http.h), the target
 * turned into a file beneath the root (files.h), the response head sent
 * from the connection, then the body block by block through two pool
 * buffers, so that the disk reads one block while the socket sends the
 * other: READ_FIXED with O_DIRECT of an aligned block into a buffer, then
 * SEND_ZC with IORING_RECVSEND_FIXED_BUF from the bytes wanted inside it
 * (a range starts mid-block, so mid-buffer: cbm_region_index takes any
 * address inside a buffer). Blocks are sent in the order they were read
 * (seq). A buffer is read into again only after its send's notification:
 * until then the kernel may still read it.
 *
 * Modes, for comparison under the same loop: --malloc takes malloc'd
 * buffers and uses buffered READ and plain SEND (each copies); --sendfile
 * uses no buffer and sendfile(2), the kernel's own zero copy (it blocks
 * the worker on a page-cache miss, as sendfile does).
 *
 * A file that changes while it is served: the response's length is the
 * file's size at open, and every block is cut to what is left of it, so
 * a file that grew is sent as it was long; one that shrank ends the
 * connection early (the client sees a short body, which is all HTTP/1.1
 * can say then): a read that brings less than its block should hold is
 * the last one sent, and a block read after it is dropped, since the
 * bytes between are missing. Neither sends a byte past Content-Length.
 *
 * Degrading: the server checks at start that io_uring has what the mode
 * needs (READ_FIXED and SEND_ZC with fixed buffers, Linux 6.0, for the
 * pool; READ and SEND otherwise) and that the regions register (within
 * RLIMIT_MEMLOCK), and exits 3 saying what is missing if not. On a file system without O_DIRECT
 * (tmpfs) it reads through the page cache into the same buffers and says
 * so at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "files.h"
#include "http.h"
#include "server.h"

#define RX_MAX 8192
#define HEAD_MAX 512
#define DRAIN_BYTES (64 * 1024)
#define DRAIN_SECONDS 2
#define SQ_ENTRIES 256
#define CQ_ENTRIES 4096
#define DIRECT_ALIGN 4096
#define SENDFILE_CHUNK (1u << 20)

enum mode { MODE_POOL, MODE_MALLOC, MODE_SENDFILE };

/* user_data: a connection's address with the operation in the low three
 * bits and the block in the fourth (connections are malloc'd, so
 * 16-aligned), or one of the worker's own operations. */
enum {
	UD_CANCEL = 0,
	OP_RECV = 1,
	OP_HEAD = 2, /* the response head, or a canned error */
	OP_READ = 3,
	OP_BODY = 4, /* a body send: SEND_ZC, or SEND */
	OP_POLL = 5, /* sendfile: waiting for room in the socket */
	OP_MASK = 7,
	UD_BLOCK = 8,
	UD_LOW = 15,
};

/* The worker's own operations: no connection (user_data below 16). */
enum {
	UD_ACCEPT = 1,
	UD_WAKE = 2,
	UD_TICK = 3,
};

#define BLOCKS 2

/* A block of the body in one buffer. */
struct block {
	char *buf;	 /* pool or malloc; NULL: not held */
	uint64_t seq;	 /* the order of its read among the body's */
	size_t off, len; /* its body bytes: buf[off, off + len) */
	size_t want;	 /* the body bytes its read should bring */
	size_t sent;
	unsigned notifs; /* SEND_ZC notifications still due */
	enum { B_FREE, B_READING, B_READY, B_SENDING, B_SENT } state;
};

struct link {
	struct link *prev, *next;
};

struct fconn {
	struct link node; /* first: the live or the closing list */
	int fd;
	int file;     /* -1: none */
	unsigned ops; /* operations whose last completion is still due */
	bool closing, keep_alive, close_after, draining, direct;
	char rx[RX_MAX]; /* received, not yet answered */
	size_t rx_len, req_len;
	char head[HEAD_MAX]; /* the response head being sent */
	const char *out;     /* what OP_HEAD sends: head, or canned */
	size_t out_len, out_sent;
	struct block blk[BLOCKS];    /* none in sendfile mode */
	uint64_t read_seq, send_seq; /* the next block to read, to send */
	uint64_t short_seq;	     /* short_read: the last block sent */
	bool short_read;	     /* the file ended before the body */
	uint64_t next_off;	     /* the body's next byte to read (sendfile:
					to send) */
	uint64_t read_left;	     /* body bytes not yet asked of the disk */
	uint64_t left;		     /* body bytes still to send */
	size_t drained;
	uint64_t last; /* server_now() at its last completion */
};

struct fserver {
	enum mode mode;
	int root_fd;
	struct iovec *regions;
	int nregions;
};

struct fworker {
	struct worker base;
	struct io_uring ring;
	const struct fserver *fs;
	struct bufs *bufs;
	struct link live, closing;
	uint64_t blocks, truncated, buffered_reads, no_buffer;
	struct __kernel_timespec tick_ts;
	uint64_t now;
	bool accept_armed, tick_armed, stopping;
};

static struct fserver the_server;
static atomic_uint_fast64_t total_blocks, total_truncated, total_buffered,
	total_no_buffer;

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

static void
list_add(struct link *head, struct link *l)
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

/* An SQE; when the queue is full, submit what is in it first. */
static struct io_uring_sqe *
sqe_get(struct fworker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	while (sqe == NULL) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* An SQE for connection c's operation op, counted in c->ops. */
static struct io_uring_sqe *
sqe_for(struct fworker *w, struct fconn *c, unsigned op)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | op);
	c->ops++;
	return sqe;
}

static void
arm_accept(struct fworker *w)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	io_uring_prep_multishot_accept(sqe, w->base.listen_fd, NULL, NULL,
				       SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, UD_ACCEPT);
	w->accept_armed = true;
}

static void
arm_tick(struct fworker *w)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	w->tick_ts.tv_sec = 1;
	w->tick_ts.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, UD_TICK);
	w->tick_armed = true;
}

static void
cancel_fd(struct fworker *w, int fd)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, UD_CANCEL);
}

static void
arm_recv(struct fworker *w, struct fconn *c)
{
	struct io_uring_sqe *sqe = sqe_for(w, c, OP_RECV);

	if (c->draining)
		io_uring_prep_recv(sqe, c->fd, c->rx, RX_MAX, 0);
	else
		io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len,
				   RX_MAX - c->rx_len, 0);
}

static void
end_body(struct fworker *w, struct fconn *c)
{
	if (c->file >= 0)
		close(c->file);
	c->file = -1;
	for (unsigned i = 0; i < BLOCKS; i++) {
		bufs_put(w->bufs, c->blk[i].buf);
		c->blk[i] = (struct block){.buf = NULL};
	}
	c->left = c->read_left = 0;
	c->short_read = false;
}

/*
 * Close c. Operations may still be in flight (the kernel may still read
 * the block or write into it), so c only moves to the closing list and
 * its socket operations are cancelled; reap() frees it, and gives the
 * block back, once their last completions are in.
 */
static void
conn_close(struct fworker *w, struct fconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->ops > 0)
		cancel_fd(w, c->fd);
	list_del(&c->node);
	list_add(&w->closing, &c->node);
}

static void
reap(struct fworker *w)
{
	struct link *l = w->closing.next;

	while (l != &w->closing) {
		struct fconn *c = (struct fconn *)(void *)l;

		l = l->next;
		if (c->ops == 0) {
			list_del(&c->node);
			end_body(w, c);
			close(c->fd);
			free(c);
		}
	}
}

static void
send_out(struct fworker *w, struct fconn *c)
{
	struct io_uring_sqe *sqe = sqe_for(w, c, OP_HEAD);

	io_uring_prep_send(sqe, c->fd, c->out + c->out_sent,
			   c->out_len - c->out_sent, MSG_NOSIGNAL);
}

/* A canned error, then close (after draining what the client sends). */
static void
answer_error(struct fworker *w, struct fconn *c, int status)
{
	served_error(&w->base.served, status);
	end_body(w, c);
	c->out = http_error(status, &c->out_len);
	c->out_sent = 0;
	c->close_after = true;
	send_out(w, c);
}

/* 416, with the size the client should have asked within. */
static void
answer_416(struct fworker *w, struct fconn *c, uint64_t size)
{
	int n = snprintf(c->head, HEAD_MAX,
			 "HTTP/1.1 416 Range Not Satisfiable\r\n"
			 "Content-Range: bytes */%llu\r\n"
			 "Content-Length: 0\r\n"
			 "Connection: close\r\n\r\n",
			 (unsigned long long)size);

	served_error(&w->base.served, 416);
	end_body(w, c);
	c->out = c->head;
	c->out_len = (size_t)n;
	c->out_sent = 0;
	c->close_after = true;
	send_out(w, c);
}

/* Ask the disk for the body's next block, into block i. */
static void
submit_read(struct fworker *w, struct fconn *c, unsigned i)
{
	struct block *b = &c->blk[i];
	struct io_uring_sqe *sqe = sqe_for(w, c, OP_READ | i * UD_BLOCK);
	size_t size = w->bufs->size;
	uint64_t at = c->next_off, len;

	if (w->fs->mode == MODE_POOL) {
		/* O_DIRECT: an aligned offset and length into an aligned
		 * buffer; the wanted bytes start off bytes into it. */
		at &= ~(uint64_t)(DIRECT_ALIGN - 1);
		b->off = (size_t)(c->next_off - at);
	} else {
		b->off = 0;
	}
	b->want = size - b->off < c->read_left ? size - b->off
					       : (size_t)c->read_left;
	len = b->off + b->want;
	if (w->fs->mode == MODE_POOL) {
		len = (len + DIRECT_ALIGN - 1) & ~(uint64_t)(DIRECT_ALIGN - 1);
		io_uring_prep_read_fixed(
			sqe, c->file, b->buf, (unsigned)len, at,
			cbm_region_index(w->bufs->pool, b->buf));
	} else {
		io_uring_prep_read(sqe, c->file, b->buf, (unsigned)len, at);
	}
	b->seq = c->read_seq++;
	b->state = B_READING;
	b->sent = 0;
	c->next_off += b->want;
	c->read_left -= b->want;
}

static void
submit_body(struct fworker *w, struct fconn *c, unsigned i)
{
	struct block *b = &c->blk[i];
	struct io_uring_sqe *sqe = sqe_for(w, c, OP_BODY | i * UD_BLOCK);
	char *p = b->buf + b->off + b->sent;
	size_t n = b->len - b->sent;

	b->state = B_SENDING;
	if (w->fs->mode == MODE_POOL)
		/* The index of p itself: it may be anywhere in the buffer. */
		io_uring_prep_send_zc_fixed(
			sqe, c->fd, p, n, MSG_NOSIGNAL, 0,
			(unsigned)cbm_region_index(w->bufs->pool, p));
	else
		io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
}

static void next_request(struct fworker *w, struct fconn *c);
static void pump(struct fworker *w, struct fconn *c);

/* The body is out (or there was none): on to the next request. */
static void
finish_response(struct fworker *w, struct fconn *c)
{
	end_body(w, c);
	w->base.served.requests++;
	memmove(c->rx, c->rx + c->req_len, c->rx_len - c->req_len);
	c->rx_len -= c->req_len;
	c->req_len = 0;
	if (!c->keep_alive) {
		shutdown(c->fd, SHUT_WR);
		c->draining = true;
		arm_recv(w, c);
		return;
	}
	next_request(w, c);
}

/* sendfile until the body is out, the socket is full or the file ends. */
static void
do_sendfile(struct fworker *w, struct fconn *c)
{
	while (c->left > 0) {
		off_t off = (off_t)c->next_off;
		size_t n = c->left < SENDFILE_CHUNK ? (size_t)c->left
						    : SENDFILE_CHUNK;
		ssize_t k = sendfile(c->fd, c->file, &off, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			struct io_uring_sqe *sqe = sqe_for(w, c, OP_POLL);

			io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
			return;
		}
		if (k <= 0) {
			/* 0: the file ends before Content-Length does. */
			if (k == 0)
				w->truncated++;
			else
				w->base.served.dropped++;
			conn_close(w, c);
			return;
		}
		c->next_off += (uint64_t)k;
		c->left -= (uint64_t)k;
	}
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	finish_response(w, c);
}

static void
start_body(struct fworker *w, struct fconn *c)
{
	if (c->left == 0) {
		finish_response(w, c);
	} else if (w->fs->mode == MODE_SENDFILE) {
		/* sendfile must not block the worker on a full socket. */
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		do_sendfile(w, c);
	} else {
		pump(w, c);
	}
}

/* A complete request of req->length bytes at the start of rx. */
static void
serve(struct fworker *w, struct fconn *c, const struct http_request *req)
{
	char path[FILES_PATH_MAX];
	uint64_t size = 0, start = 0, len;
	enum files_range r = RANGE_NONE;
	int status, fd, n;
	bool direct;

	c->req_len = req->length;
	c->keep_alive = req->keep_alive;
	if (!req->get && !req->head) {
		answer_error(w, c, 405);
		return;
	}
	status = files_path(c->rx + req->target_off, req->target_len, path);
	if (status) {
		answer_error(w, c, status);
		return;
	}
	fd = files_open(w->fs->root_fd, path, w->fs->mode == MODE_POOL, &direct,
			&size);
	if (fd < 0) {
		answer_error(w, c, -fd);
		return;
	}
	c->file = fd;
	c->direct = direct;
	if (req->range_len)
		r = files_range(c->rx + req->range_off, req->range_len, size,
				&start, &len);
	if (r == RANGE_UNSATISFIABLE) {
		answer_416(w, c, size);
		return;
	}
	if (r == RANGE_NONE) {
		start = 0;
		len = size;
	}
	if (!req->head && len > 0 && w->fs->mode != MODE_SENDFILE) {
		/* Two buffers when the body needs them and the pool has
		 * them; one will do. */
		unsigned want = len > w->bufs->size - DIRECT_ALIGN ? BLOCKS : 1;

		for (unsigned i = 0; i < want; i++)
			c->blk[i].buf = bufs_get(w->bufs);
		if (c->blk[0].buf == NULL) {
			w->no_buffer++;
			answer_error(w, c, 503);
			return;
		}
	}
	if (!direct && w->fs->mode == MODE_POOL)
		w->buffered_reads++;
	n = snprintf(c->head, HEAD_MAX,
		     "HTTP/1.1 %s\r\n"
		     "Server: cbm-file\r\n"
		     "Content-Type: application/octet-stream\r\n"
		     "Accept-Ranges: bytes\r\n"
		     "Content-Length: %llu\r\n",
		     r == RANGE_PARTIAL ? "206 Partial Content" : "200 OK",
		     (unsigned long long)len);
	if (r == RANGE_PARTIAL)
		n += snprintf(c->head + n, HEAD_MAX - (size_t)n,
			      "Content-Range: bytes %llu-%llu/%llu\r\n",
			      (unsigned long long)start,
			      (unsigned long long)(start + len - 1),
			      (unsigned long long)size);
	n += snprintf(c->head + n, HEAD_MAX - (size_t)n, "%s\r\n",
		      c->keep_alive ? "" : "Connection: close\r\n");
	c->out = c->head;
	c->out_len = (size_t)n;
	c->out_sent = 0;
	c->next_off = start;
	c->left = c->read_left = req->head ? 0 : len;
	c->read_seq = c->send_seq = 0;
	send_out(w, c);
}

/* Parse what rx holds: serve a whole request, or wait for more. */
static void
next_request(struct fworker *w, struct fconn *c)
{
	struct http_request req;

	switch (http_parse(c->rx, c->rx_len, RX_MAX, &req)) {
	case HTTP_COMPLETE:
		serve(w, c, &req);
		break;
	case HTTP_ERROR:
		answer_error(w, c, req.status);
		break;
	default:
		arm_recv(w, c);
		break;
	}
}

static void
on_recv(struct fworker *w, struct fconn *c, int res)
{
	if (c->closing)
		return;
	if (c->draining) {
		c->drained += res > 0 ? (size_t)res : 0;
		if (res <= 0 || c->drained > DRAIN_BYTES)
			conn_close(w, c);
		else
			arm_recv(w, c);
		return;
	}
	if (res <= 0) {
		if (c->rx_len > 0)
			w->base.served.vanished++;
		conn_close(w, c);
		return;
	}
	c->rx_len += (size_t)res;
	next_request(w, c);
}

static void
on_head(struct fworker *w, struct fconn *c, int res)
{
	if (c->closing)
		return;
	if (res <= 0) {
		w->base.served.dropped++;
		conn_close(w, c);
		return;
	}
	c->out_sent += (size_t)res;
	if (c->out_sent < c->out_len) {
		send_out(w, c);
	} else if (c->close_after) {
		shutdown(c->fd, SHUT_WR);
		c->draining = true;
		arm_recv(w, c);
	} else {
		start_body(w, c);
	}
}

/*
 * Move the body along: read into every free buffer while the body has
 * bytes the disk was not asked for, send the next block in order once it
 * is read, and finish when everything is sent (or close, after the last
 * block a shrunk file gave).
 */
static void
pump(struct fworker *w, struct fconn *c)
{
	bool busy = false;

	if (c->closing)
		return;
	for (unsigned i = 0; i < BLOCKS; i++) {
		struct block *b = &c->blk[i];

		if (b->buf && b->state == B_FREE && c->read_left > 0 &&
		    !c->short_read)
			submit_read(w, c, i);
	}
	for (unsigned i = 0; i < BLOCKS; i++) {
		struct block *b = &c->blk[i];

		if (b->buf && b->state == B_READY && b->seq == c->send_seq) {
			if (b->len > 0) {
				submit_body(w, c, i);
			} else {
				b->state = B_FREE;
				c->send_seq++;
			}
		}
	}
	for (unsigned i = 0; i < BLOCKS; i++)
		busy |= c->blk[i].state != B_FREE;
	if (c->short_read && c->send_seq > c->short_seq) {
		/* What the shrunk file had is out; the rest never will be. */
		w->truncated++;
		conn_close(w, c);
	} else if (c->left == 0 && !busy) {
		finish_response(w, c);
	}
}

static void
on_read(struct fworker *w, struct fconn *c, unsigned i, int res)
{
	struct block *b = &c->blk[i];
	size_t got;

	b->state = B_FREE;
	if (c->closing)
		return;
	if (res < 0) {
		fprintf(stderr, "file_server: read: %s\n", strerror(-res));
		w->base.served.dropped++;
		conn_close(w, c);
		return;
	}
	if (c->short_read && b->seq > c->short_seq)
		return; /* after the gap a shrunk file left: dropped */
	w->blocks++;
	got = (size_t)res > b->off ? (size_t)res - b->off : 0;
	/* A file that grew is sent as long as it was. */
	if (got > b->want)
		got = b->want;
	if (got < b->want) {
		c->short_read = true;
		c->short_seq = b->seq;
	}
	b->len = got;
	b->state = B_READY;
	pump(w, c);
}

static void
on_body(struct fworker *w, struct fconn *c, unsigned i, int res, unsigned flags)
{
	struct block *b = &c->blk[i];

	if (flags & IORING_CQE_F_NOTIF) {
		if (--b->notifs == 0 && b->state == B_SENT) {
			b->state = B_FREE;
			pump(w, c);
		}
		return;
	}
	if (flags & IORING_CQE_F_MORE)
		b->notifs++;
	if (c->closing)
		return;
	if (res <= 0) {
		w->base.served.dropped++;
		conn_close(w, c);
		return;
	}
	b->sent += (size_t)res;
	c->left -= (uint64_t)res;
	if (b->sent < b->len) {
		submit_body(w, c, i);
		return;
	}
	/* Sent: the next block may go, but this buffer is the kernel's
	 * until the notification. */
	c->send_seq++;
	b->state = b->notifs > 0 ? B_SENT : B_FREE;
	pump(w, c);
}

static void
on_accept(struct fworker *w, int res, unsigned flags)
{
	struct fconn *c;
	int one = 1;

	if (!(flags & IORING_CQE_F_MORE))
		w->accept_armed = false;
	if (res < 0) {
		if (res != -ECANCELED && res != -EINTR && res != -ECONNABORTED)
			w->base.served.accept_errors++;
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
			c->file = -1;
			c->last = w->now;
			list_add(&w->live, &c->node);
			arm_recv(w, c);
		}
	}
	if (!w->accept_armed && !w->stopping)
		arm_accept(w);
}

/* Once a second: close connections that made no progress for
 * --idle-timeout (a client that stopped reading holds two buffers), or
 * for DRAIN_SECONDS once answered and shut down. */
static void
on_tick(struct fworker *w)
{
	uint64_t idle = w->base.srv->opts.idle_timeout;
	struct link *l = w->live.next;

	w->tick_armed = false;
	if (w->stopping)
		return;
	while (l != &w->live) {
		struct fconn *c = (struct fconn *)(void *)l;

		l = l->next;
		if (w->now - c->last >= (c->draining ? DRAIN_SECONDS : idle)) {
			if (!c->draining)
				w->base.served.idle++;
			conn_close(w, c);
		}
	}
	arm_tick(w);
}

static void
begin_stop(struct fworker *w)
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
		conn_close(w, (struct fconn *)(void *)w->live.next);
}

static void
dispatch(struct fworker *w, uint64_t ud, int res, unsigned flags)
{
	struct fconn *c = (struct fconn *)(uintptr_t)(ud & ~(uint64_t)UD_LOW);
	unsigned op = (unsigned)(ud & OP_MASK);
	unsigned blk = (ud & UD_BLOCK) ? 1 : 0;

	if (c == NULL) {
		if (ud == UD_ACCEPT)
			on_accept(w, res, flags);
		else if (ud == UD_WAKE)
			begin_stop(w);
		else if (ud == UD_TICK)
			on_tick(w);
		return; /* UD_CANCEL */
	}
	c->last = w->now;

	/* A completion that another one follows (a SEND_ZC's, before its
	 * notification; an accept's) does not end its operation. */
	if (!(flags & IORING_CQE_F_MORE))
		c->ops--;
	switch (op) {
	case OP_RECV:
		on_recv(w, c, res);
		break;
	case OP_HEAD:
		on_head(w, c, res);
		break;
	case OP_READ:
		on_read(w, c, blk, res);
		break;
	case OP_BODY:
		on_body(w, c, blk, res, flags);
		break;
	case OP_POLL:
		if (!c->closing)
			do_sendfile(w, c);
		break;
	default:
		break;
	}
}

static void *
run(void *arg)
{
	struct fworker *w = arg;
	struct server *s = w->base.srv;
	struct io_uring_params p = {0};
	struct io_uring_sqe *sqe;
	int rc;

	w->fs = s->impl;
	w->bufs = &s->bufs;
	list_init(&w->live);
	list_init(&w->closing);
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_ENTRIES;
	rc = io_uring_queue_init_params(SQ_ENTRIES, &w->ring, &p);
	if (rc == 0 && w->fs->mode == MODE_POOL)
		rc = io_uring_register_buffers(&w->ring, w->fs->regions,
					       (unsigned)w->fs->nregions);
	if (rc) {
		fprintf(stderr, "file_server: io_uring setup: %s\n",
			strerror(-rc));
		w->base.failed = 1;
		return NULL;
	}
	w->now = server_now();
	arm_accept(w);
	arm_tick(w);
	sqe = sqe_get(w);
	io_uring_prep_poll_add(sqe, w->base.wake_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_WAKE);

	while (!w->stopping || !list_empty(&w->closing) || w->accept_armed ||
	       w->tick_armed) {
		struct io_uring_cqe *cqe;

		rc = io_uring_submit_and_wait(&w->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			fprintf(stderr, "file_server: io_uring_enter: %s\n",
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
		reap(w);
	}
	atomic_fetch_add(&total_blocks, w->blocks);
	atomic_fetch_add(&total_truncated, w->truncated);
	atomic_fetch_add(&total_buffered, w->buffered_reads);
	atomic_fetch_add(&total_no_buffer, w->no_buffer);
	io_uring_queue_exit(&w->ring);
	return NULL;
}

/* Does this kernel give the mode what it needs? Says what is missing. */
static bool
kernel_supports(enum mode mode)
{
	static const struct {
		int op;
		const char *name;
		unsigned modes; /* 1 << mode */
	} ops[] = {
		{IORING_OP_ACCEPT, "ACCEPT", 7},
		{IORING_OP_RECV, "RECV", 7},
		{IORING_OP_SEND, "SEND", 7},
		{IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL", 7},
		{IORING_OP_POLL_ADD, "POLL_ADD", 7},
		{IORING_OP_READ_FIXED, "READ_FIXED", 1 << MODE_POOL},
		{IORING_OP_SEND_ZC, "SEND_ZC (Linux 6.0)", 1 << MODE_POOL},
		{IORING_OP_READ, "READ", 1 << MODE_MALLOC},
	};
	struct io_uring_probe *probe;
	struct io_uring ring;
	bool ok = true;
	int rc = io_uring_queue_init(4, &ring, 0);

	if (rc) {
		fprintf(stderr,
			"file_server: io_uring is not available here (%s)\n",
			strerror(-rc));
		return false;
	}
	probe = io_uring_get_probe_ring(&ring);
	if (probe == NULL) {
		fprintf(stderr, "file_server: cannot probe io_uring's "
				"opcodes (Linux 5.6)\n");
		ok = false;
	}
	for (size_t i = 0; probe && i < sizeof(ops) / sizeof(ops[0]); i++)
		if ((ops[i].modes & (1u << mode)) &&
		    !io_uring_opcode_supported(probe, ops[i].op)) {
			fprintf(stderr,
				"file_server: io_uring here lacks %s%s\n",
				ops[i].name,
				mode == MODE_POOL ? " (try --malloc or "
						    "--sendfile)"
						  : "");
			ok = false;
		}
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return ok;
}

/* Do the pool's regions register here? Registration pins them, which a
 * user without CAP_IPC_LOCK may do only up to RLIMIT_MEMLOCK. */
static bool
registers(const struct fserver *fs, size_t bytes)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(4, &ring, 0);

	if (rc == 0) {
		rc = io_uring_register_buffers(&ring, fs->regions,
					       (unsigned)fs->nregions);
		io_uring_queue_exit(&ring);
	}
	if (rc)
		fprintf(stderr,
			"file_server: cannot register the pool's %d regions "
			"(%zu MiB) with io_uring: %s (RLIMIT_MEMLOCK? try "
			"fewer --buffers, or --malloc)\n",
			fs->nregions, bytes >> 20, strerror(-rc));
	return rc == 0;
}

static int
prepare(struct server *s)
{
	struct fserver *fs = &the_server;

	fs->mode = s->opts.use_sendfile ? MODE_SENDFILE
		   : s->opts.use_malloc ? MODE_MALLOC
					: MODE_POOL;
	fs->root_fd = open(s->opts.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0) {
		fprintf(stderr, "file_server: --root %s: %s\n", s->opts.root,
			strerror(errno));
		return EXIT_USAGE;
	}
	if (!kernel_supports(fs->mode)) {
		close(fs->root_fd);
		return EXIT_UNSUPPORTED;
	}
	if (fs->mode == MODE_POOL) {
		fs->nregions = cbm_pool_regions(s->bufs.pool, NULL, 0);
		fs->regions = fs->nregions > 0 ? calloc((size_t)fs->nregions,
							sizeof(*fs->regions))
					       : NULL;
		if (fs->regions == NULL ||
		    cbm_pool_regions(s->bufs.pool, fs->regions,
				     (unsigned)fs->nregions) != fs->nregions) {
			fprintf(stderr, "file_server: no regions (%d)\n",
				fs->nregions);
			close(fs->root_fd);
			free(fs->regions);
			return EXIT_LOST;
		}
		if (!registers(fs, s->bufs.size * s->bufs.capacity)) {
			close(fs->root_fd);
			free(fs->regions);
			return EXIT_UNSUPPORTED;
		}
	}
	printf("file_server: serving %s: %s\n", s->opts.root,
	       fs->mode == MODE_POOL
		       ? "O_DIRECT READ_FIXED into registered pool buffers, "
			 "SEND_ZC fixed-buffer sends"
	       : fs->mode == MODE_MALLOC
		       ? "malloc buffers, buffered READ and SEND"
		       : "sendfile");
	s->impl = fs;
	return 0;
}

static void
finish(struct server *s)
{
	struct fserver *fs = s->impl;

	close(fs->root_fd);
	free(fs->regions);
}

static void
report(struct server *s, FILE *out)
{
	struct fserver *fs = s->impl;

	fprintf(out,
		"files: mode=%s regions=%d blocks=%llu truncated=%llu "
		"no_o_direct=%llu no_buffer=%llu\n",
		fs->mode == MODE_POOL	  ? "pool"
		: fs->mode == MODE_MALLOC ? "malloc"
					  : "sendfile",
		fs->nregions, (unsigned long long)atomic_load(&total_blocks),
		(unsigned long long)atomic_load(&total_truncated),
		(unsigned long long)atomic_load(&total_buffered),
		(unsigned long long)atomic_load(&total_no_buffer));
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.name = "file_server",
		.kind = SERVER_FILE,
		.worker_size = sizeof(struct fworker),
		.prepare = prepare,
		.run = run,
		.finish = finish,
		.report = report,
	};

	return server_main(argc, argv, &ops);
}
