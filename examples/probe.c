/* SPDX-License-Identifier: MIT */
/*
 * http_probe: starts an example server, checks it the way a test should,
 * stops it with SIGTERM, and checks that it exited 0 with every buffer
 * back. For the meson tests of examples/ (meson.build); no wrk needed.
 *
 *   http_probe [--checks LIST] [--connections N] [--expect-503]
 *              [--expect-dry] [--big N] [--slow N] [--max-request N]
 *              [--root DIR]
 *              [--metrics-out FILE]
 *              -- SERVER [SERVER ARGS...]
 *
 * LIST is a comma-separated subset of:
 *   basic     keep-alive, HEAD, pipelining, a request in pieces, a POST
 *             body, Connection: close, HTTP/1.0, a client that sends N
 *             requests (--slow, 100) before it reads an answer
 *   faults    malformed requests (400), too large (413), chunked (501), a
 *             wrong version (505), clients that vanish mid-request; the
 *             server must go on serving
 *   refresh   concurrent clients; the cached response must change under
 *             them (epoll_server --refresh)
 *   overload  N connections at once, more than the pool has buffers: each
 *             must get 200 or 503, and the server must serve afterwards
 *   files     file_server: downloads of files of many sizes, ranges, HEAD,
 *             traversal attempts, clients that vanish mid-download, files
 *             that shrink or grow while served (probe_files.c); needs
 *             --root DIR, where the probe makes the files (a real file
 *             system: O_DIRECT) and which it passes to the server
 *   grow      requests larger than the server's first buffer (4096 bytes),
 *             up to its --max-request (--max-request N, the same number):
 *             200, whole heads and bodies of every size, in pieces and
 *             pipelined, exactly N bytes; N + 1 bytes, head or body: 413
 *   grow-dry  a request of N - 4096 bytes when the server's heap cannot
 *             give so large a buffer (its ceiling is about N): 503, not
 *             413 and no hang, and the server serves on
 *   metrics   GET and HEAD /metrics: the pool's statistics in the
 *             Prometheus text format, on a keep-alive connection; the
 *             body goes to --metrics-out FILE for a real parser
 *   slowloris N connections (--connections) that send a request head a
 *             line at a time and never finish it, more than the pool has
 *             buffers; another client must still get a 200 within
 *             SLOWLORIS_MS (epoll_server --header-timeout)
 * --big N: bytes of the oversized request head (32768; more than the
 * server's --max-request). --expect-503:
 * overload must see at least one 503. --expect-dry: the
 * server's exit statistics must show the pool ran dry (alloc_failures > 0).
 *
 * The server is started with --addr 127.0.0.1 --port 0 appended; its
 * output is copied to ours. Exit status 0: all passed; 77 (skip): the
 * server exited 3, the kernel lacks what it needs; 1 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

#define RBUF 65536

unsigned port;
static int failures;
static size_t body_size = (size_t)-1; /* learnt from the first 200 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void
fail(const char *check, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&lock);
	printf("probe: %s: FAIL: ", check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failures++;
	pthread_mutex_unlock(&lock);
}

void
passed(const char *check)
{
	printf("probe: %s: ok\n", check);
	fflush(stdout);
}

int
dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = TIMEOUT_MS / 1000};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

bool
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

bool
send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* Bytes received on a connection and not yet parsed. */
struct rbuf {
	char data[RBUF];
	size_t len;
};

struct response {
	int status;
	size_t content_length;
	unsigned long long generation;
	bool close;
	bool keep_alive; /* "Connection: keep-alive" */
	bool prometheus; /* Content-Type: text/plain; version=0.0.4 */
};

/* Read more into rb. 1: got some; 0: EOF; -1: error or timeout. */
static int
fill(int fd, struct rbuf *rb)
{
	ssize_t n;

	if (rb->len == sizeof(rb->data))
		return -1;
	do
		n = recv(fd, rb->data + rb->len, sizeof(rb->data) - rb->len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	rb->len += (size_t)n;
	return n > 0;
}

static void
consume(struct rbuf *rb, size_t n)
{
	memmove(rb->data, rb->data + n, rb->len - n);
	rb->len -= n;
}

/*
 * Read one response: status line, headers, and a body of Content-Length
 * bytes unless head_only. Checks the body. Returns false (with a message)
 * on any problem.
 */
static bool
read_response(const char *check, int fd, struct rbuf *rb, bool head_only,
	      struct response *r)
{
	char *end, *line;
	size_t head_len;
	int got;

	memset(r, 0, sizeof(*r));
	for (;;) {
		end = memmem(rb->data, rb->len, "\r\n\r\n", 4);
		if (end)
			break;
		got = fill(fd, rb);
		if (got <= 0) {
			fail(check, "%s before a whole response head",
			     got == 0 ? "EOF" : strerror(errno));
			return false;
		}
	}
	head_len = (size_t)(end - rb->data) + 4;
	*end = '\0';
	if (sscanf(rb->data, "HTTP/1.1 %d ", &r->status) != 1) {
		fail(check, "bad status line: %.40s", rb->data);
		return false;
	}
	r->content_length = (size_t)-1;
	for (line = strstr(rb->data, "\r\n"); line;
	     line = strstr(line + 2, "\r\n")) {
		char *l = line + 2;

		if (strncasecmp(l, "Content-Length:", 15) == 0)
			r->content_length = strtoul(l + 15, NULL, 10);
		else if (strncasecmp(l, "X-Generation:", 13) == 0)
			r->generation = strtoull(l + 13, NULL, 10);
		else if (strncasecmp(l, "Connection: close", 17) == 0)
			r->close = true;
		else if (strncasecmp(l, "Connection: keep-alive", 22) == 0)
			r->keep_alive = true;
		else if (strncasecmp(l,
				     "Content-Type: text/plain; version=0.0.4",
				     39) == 0)
			r->prometheus = true;
	}
	consume(rb, head_len);
	if (r->content_length == (size_t)-1) {
		fail(check, "status %d without Content-Length", r->status);
		return false;
	}
	if (head_only)
		return true;
	while (rb->len < r->content_length) {
		got = fill(fd, rb);
		if (got <= 0) {
			fail(check, "%s inside a body of %zu bytes",
			     got == 0 ? "EOF" : strerror(errno),
			     r->content_length);
			return false;
		}
	}
	if (r->status == 200) {
		for (size_t i = 0; i < r->content_length; i++)
			if (rb->data[i] != (char)('a' + i % 26)) {
				fail(check, "body byte %zu is wrong", i);
				return false;
			}
		pthread_mutex_lock(&lock);
		if (body_size == (size_t)-1)
			body_size = r->content_length;
		pthread_mutex_unlock(&lock);
		if (r->content_length != body_size) {
			fail(check, "body of %zu bytes, earlier ones had %zu",
			     r->content_length, body_size);
			return false;
		}
	}
	consume(rb, r->content_length);
	return true;
}

static bool
expect_status(const char *check, int fd, struct rbuf *rb, bool head_only,
	      int status)
{
	struct response r;

	if (!read_response(check, fd, rb, head_only, &r))
		return false;
	if (r.status != status) {
		fail(check, "status %d, expected %d", r.status, status);
		return false;
	}
	return true;
}

/* The server closes its side now: EOF, and nothing more before it. */
static bool
expect_eof(const char *check, int fd, struct rbuf *rb)
{
	int got;

	if (rb->len > 0) {
		fail(check, "%zu unexpected bytes", rb->len);
		return false;
	}
	got = fill(fd, rb);
	if (got != 0) {
		fail(check, "expected the server to close, got %s",
		     got > 0 ? "more bytes" : strerror(errno));
		return false;
	}
	return true;
}

#define GET "GET / HTTP/1.1\r\nHost: probe\r\n\r\n"

/* One request on a fresh connection; expect status, then (if close) EOF. */
static bool
one_shot(const char *check, const char *req, int status, bool close_expected)
{
	static struct rbuf rb;
	bool ok;
	int fd = dial();

	if (fd < 0) {
		fail(check, "connect: %s", strerror(errno));
		return false;
	}
	rb.len = 0;
	ok = send_str(fd, req) &&
	     expect_status(check, fd, &rb, false, status) &&
	     (!close_expected || expect_eof(check, fd, &rb));
	close(fd);
	return ok;
}

void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* An HTTP/1.0 client that asks for keep-alive (ab -k) keeps its
 * connection: told so in each answer, and served again on it. */
static void
check_http10_keep_alive(void)
{
	static struct rbuf rb;
	const char *req = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	int fd = dial();
	bool ok = fd >= 0;

	rb.len = 0;
	for (int i = 0; i < 3 && ok; i++) {
		struct response r;

		ok = send_str(fd, req) &&
		     read_response("http/1.0 keep-alive", fd, &rb, false, &r);
		if (ok && (r.status != 200 || !r.keep_alive)) {
			fail("http/1.0 keep-alive",
			     "request %d: status %d, keep-alive %s", i,
			     r.status, r.keep_alive ? "said" : "not said");
			ok = false;
		}
	}
	if (fd < 0)
		fail("http/1.0 keep-alive", "connect: %s", strerror(errno));
	else
		close(fd);
	if (ok)
		passed("http/1.0 keep-alive: 3 requests on one connection");
}

static void
check_basic(void)
{
	static struct rbuf rb;
	bool ok = true;
	int fd = dial();

	if (fd < 0) {
		fail("keep-alive", "connect: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < 100 && ok; i++)
		ok = send_str(fd, GET) &&
		     expect_status("keep-alive", fd, &rb, false, 200);
	if (ok)
		passed("keep-alive: 100 requests on one connection");

	ok = send_str(fd, "HEAD /x HTTP/1.1\r\nHost: probe\r\n\r\n") &&
	     expect_status("head", fd, &rb, true, 200) && send_str(fd, GET) &&
	     expect_status("head", fd, &rb, false, 200);
	if (ok)
		passed("head: no body, and the next response is intact");

	ok = send_str(fd, GET GET GET);
	for (int i = 0; i < 3 && ok; i++)
		ok = expect_status("pipelined", fd, &rb, false, 200);
	if (ok)
		passed("pipelined: three requests in one write");

	ok = send_str(fd, "GET /pieces HT");
	sleep_ms(50);
	ok = ok && send_str(fd, "TP/1.1\r\nHost: pro");
	sleep_ms(50);
	ok = ok && send_str(fd, "be\r\n\r\n") &&
	     expect_status("pieces", fd, &rb, false, 200);
	if (ok)
		passed("pieces: a request in three writes");

	ok = send_str(fd, "POST /form HTTP/1.1\r\nHost: probe\r\n"
			  "Content-Length: 11\r\n\r\nhello world") &&
	     expect_status("post", fd, &rb, false, 200) && send_str(fd, GET) &&
	     expect_status("post", fd, &rb, false, 200);
	if (ok)
		passed("post: a body is consumed, not taken for a request");

	ok = send_str(fd, "GET / HTTP/1.1\r\nHost: probe\r\n"
			  "Connection: close\r\n\r\n") &&
	     expect_status("close", fd, &rb, false, 200) &&
	     expect_eof("close", fd, &rb);
	close(fd);
	if (ok)
		passed("close: Connection: close is honoured");

	if (one_shot("http/1.0", "GET / HTTP/1.0\r\n\r\n", 200, true))
		passed("http/1.0: answered, then closed");
	check_http10_keep_alive();
}

/*
 * A client that sends n requests and reads the answers only later: once
 * the answers outgrow the socket buffers (4 MiB here at most), the server
 * must keep what it could not send and send it later, whole and in order.
 */
static void
check_slow_reader(int n)
{
	static struct rbuf rb;
	char *reqs = malloc((size_t)n * sizeof(GET));
	int small = 2048;
	size_t len = 0;
	bool ok = true;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = TIMEOUT_MS / 1000};

	/* A small window before connect: the server's sends fill up. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (reqs == NULL)
		abort();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fail("slow-reader", "connect: %s", strerror(errno));
		close(fd);
		free(reqs);
		return;
	}
	for (int i = 0; i < n; i++) {
		memcpy(reqs + len, GET, sizeof(GET) - 1);
		len += sizeof(GET) - 1;
	}
	ok = send_all(fd, reqs, len);
	free(reqs);
	sleep_ms(200);
	for (int i = 0; i < n && ok; i++)
		ok = expect_status("slow-reader", fd, &rb, false, 200);
	close(fd);
	if (ok)
		printf("probe: slow-reader: %d answers to a client that reads "
		       "late: ok\n",
		       n);
}

static void
check_faults(size_t big)
{
	char *huge;
	int fd;

	if (one_shot("malformed", "GARBAGE\r\n\r\n", 400, true))
		passed("malformed: 400, then closed");
	if (one_shot("no-colon", "GET / HTTP/1.1\r\nHost probe\r\n\r\n", 400,
		     true))
		passed("no-colon: 400");
	if (one_shot("no-host", "GET / HTTP/1.1\r\n\r\n", 400, true))
		passed("no-host: 400 for HTTP/1.1 without Host");
	if (one_shot("bad-length",
		     "POST / HTTP/1.1\r\nHost: p\r\nContent-Length: 1x\r\n\r\n",
		     400, true))
		passed("bad-length: 400");
	if (one_shot("version", "GET / HTTP/2.0\r\nHost: p\r\n\r\n", 505, true))
		passed("version: 505");
	if (one_shot("chunked",
		     "POST / HTTP/1.1\r\nHost: p\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		     501, true))
		passed("chunked: 501");
	if (one_shot("huge-body",
		     "POST / HTTP/1.1\r\nHost: p\r\n"
		     "Content-Length: 100000000\r\n\r\n",
		     413, true))
		passed("huge-body: 413 before the body is sent");

	/* A head larger than any buffer. */
	huge = malloc(big + 1);
	if (huge == NULL)
		abort();
	memset(huge, 'a', big);
	huge[big] = '\0';
	memcpy(huge, "GET / HTTP/1.1\r\nHost: p\r\nX-Big: ", 32);
	if (one_shot("huge-head", huge, 413, true))
		passed("huge-head: 413");
	free(huge);

	/* Clients that vanish: before sending, mid-request, and after
	 * sending a request without reading the answer. */
	fd = dial();
	if (fd >= 0)
		close(fd);
	fd = dial();
	if (fd >= 0) {
		send_str(fd, "GET / HTTP/1.1\r\nHost: p\r\nX-Half: ");
		sleep_ms(20);
		close(fd);
	}
	fd = dial();
	if (fd >= 0) {
		send_str(fd, GET GET GET GET);
		close(fd);
	}
	sleep_ms(100);
	if (one_shot("after-vanish", GET, 200, false))
		passed("vanish: clients gone mid-request, the server serves "
		       "on");
}

/*
 * A request of total bytes, head and body: a POST with a body of body
 * bytes when body > 0, else a GET, its head padded with an X-Pad header to
 * make up the rest. Returns a malloc'd string.
 */
static char *
sized_request(size_t total, size_t body)
{
	char head[128];
	int n = body ? snprintf(head, sizeof(head),
				"POST /grow HTTP/1.1\r\nHost: probe\r\n"
				"Content-Length: %zu\r\nX-Pad: ",
				body)
		     : snprintf(head, sizeof(head),
				"GET /grow HTTP/1.1\r\nHost: probe\r\n"
				"X-Pad: ");
	size_t pad = total - body - (size_t)n - 4;
	char *r = malloc(total + 1);

	if (r == NULL || total < body + (size_t)n + 4)
		abort();
	memcpy(r, head, (size_t)n);
	/* Pad bytes that tell where they are, should a move lose some. */
	for (size_t i = 0; i < pad; i++)
		r[(size_t)n + i] = (char)('A' + i % 26);
	memcpy(r + (size_t)n + pad, "\r\n\r\n", 4);
	memset(r + total - body, 'b', body);
	r[total] = '\0';
	return r;
}

/* Send req on fd in pieces of piece bytes (0: at once), 20 ms apart. */
static bool
send_pieces(int fd, const char *req, size_t piece)
{
	size_t len = strlen(req);

	if (piece == 0)
		return send_all(fd, req, len);
	for (size_t off = 0; off < len; off += piece) {
		if (!send_all(fd, req + off,
			      len - off < piece ? len - off : piece))
			return false;
		sleep_ms(20);
	}
	return true;
}

/*
 * Requests that outgrow the server's first buffer move to larger ones, up
 * to the limit: each of these is answered 200 on one keep-alive
 * connection, a GET after each (the bytes of the large one were taken
 * exactly, and the connection serves on); then one byte past the limit,
 * in the head or in the body, is 413.
 */
static void
check_grow(size_t limit)
{
	static struct rbuf rb;
	const struct {
		const char *what;
		size_t total, body, piece;
	} ok_cases[] = {
		{"a head of 6000 bytes", 6000, 0, 0},
		{"a head of limit bytes", limit, 0, 0},
		{"a body to limit bytes", limit, limit / 2, 0},
		{"a head of limit - 100 bytes in 1000-byte pieces", limit - 100,
		 0, 1000},
		{"a body of 9000 bytes in 3000-byte pieces", 10000, 9000, 3000},
	};
	bool ok = true;
	int fd = dial();
	char *req;

	if (fd < 0) {
		fail("grow", "connect: %s", strerror(errno));
		return;
	}
	rb.len = 0;
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]) && ok;
	     i++) {
		req = sized_request(ok_cases[i].total, ok_cases[i].body);
		ok = send_pieces(fd, req, ok_cases[i].piece) &&
		     expect_status("grow", fd, &rb, false, 200) &&
		     send_str(fd, GET) &&
		     expect_status("grow", fd, &rb, false, 200);
		free(req);
		if (!ok)
			fail("grow", "%s (limit %zu): not 200",
			     ok_cases[i].what, limit);
	}
	/* Pipelined: a large request and a small one in one write. */
	req = sized_request(limit / 2 + 1, 100);
	req = realloc(req, strlen(req) + sizeof(GET));
	if (req == NULL)
		abort();
	strcat(req, GET);
	ok = ok && send_str(fd, req) &&
	     expect_status("grow", fd, &rb, false, 200) &&
	     expect_status("grow", fd, &rb, false, 200);
	free(req);
	close(fd);
	if (ok)
		passed("grow: requests of 6000 bytes up to the limit, whole, "
		       "in pieces and pipelined: 200");

	req = sized_request(limit + 1, 0);
	if (one_shot("grow-past", req, 413, true))
		passed("grow-past: a head of limit + 1 bytes: 413");
	free(req);
	req = sized_request(limit + 1, limit / 2);
	if (one_shot("grow-past", req, 413, true))
		passed("grow-past: a body to limit + 1 bytes: 413");
	free(req);
}

/* A large request that finds no buffer to move to is 503, and costs the
 * server nothing after. */
static void
check_grow_dry(size_t limit)
{
	/* A short head: the body tells its length at once. */
	char *req = sized_request(limit - 4096, limit - 4096 - 200);

	if (one_shot("grow-dry", req, 503, true) &&
	    one_shot("grow-dry", GET, 200, false))
		passed("grow-dry: no buffer for a large request: 503, then "
		       "served on");
	free(req);
}

struct refresh_arg {
	unsigned long long first, last;
	bool changed;
};

static void *
refresh_client(void *p)
{
	struct refresh_arg *a = p;
	static _Thread_local struct rbuf rb;
	struct response r;
	int fd = dial();

	if (fd < 0) {
		fail("refresh", "connect: %s", strerror(errno));
		return NULL;
	}
	for (int i = 0; i < 300; i++) {
		if (!send_str(fd, GET) ||
		    !read_response("refresh", fd, &rb, false, &r))
			break;
		if (r.status != 200) {
			fail("refresh", "status %d", r.status);
			break;
		}
		if (i == 0)
			a->first = r.generation;
		else if (r.generation != a->first)
			a->changed = true;
		a->last = r.generation;
	}
	close(fd);
	return NULL;
}

static void
check_refresh(void)
{
	enum { N = 4 };
	struct refresh_arg args[N] = {0};
	pthread_t t[N];
	int before = failures;
	bool changed = false;

	for (int i = 0; i < N; i++)
		pthread_create(&t[i], NULL, refresh_client, &args[i]);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		changed |= args[i].changed;
	}
	if (!changed)
		fail("refresh", "every response had generation %llu",
		     args[0].first);
	else if (failures == before)
		passed("refresh: the response changed under 4 clients, "
		       "every body intact");
}

static void
check_overload(int n, bool expect_503)
{
	struct rbuf *rb = calloc((size_t)n, sizeof(*rb));
	int *fds = calloc((size_t)n, sizeof(*fds));
	int ok = 0, busy = 0, before = failures;

	if (rb == NULL || fds == NULL)
		abort();
	for (int i = 0; i < n; i++) {
		fds[i] = dial();
		if (fds[i] < 0) {
			fail("overload", "connect %d: %s", i, strerror(errno));
			n = i;
			break;
		}
	}
	for (int i = 0; i < n; i++)
		if (!send_str(fds[i], GET))
			fail("overload", "send on connection %d: %s", i,
			     strerror(errno));
	for (int i = 0; i < n; i++) {
		struct response r;

		if (!read_response("overload", fds[i], &rb[i], false, &r))
			continue;
		if (r.status == 200) {
			ok++;
		} else if (r.status == 503) {
			busy++;
			expect_eof("overload", fds[i], &rb[i]);
		} else {
			fail("overload", "status %d", r.status);
		}
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	printf("probe: overload: %d connections: %d answered 200, %d 503\n", n,
	       ok, busy);
	if (expect_503 && busy == 0)
		fail("overload", "no connection was refused with 503");
	/* The buffers of the closed connections come back: serving goes
	 * on (give the server a moment to see the closes). */
	for (int tries = 0;; tries++) {
		int fd = dial();
		struct rbuf *one = &rb[0];
		struct response r;
		bool got;

		one->len = 0;
		got = fd >= 0 && send_str(fd, GET) &&
		      read_response("overload-after", fd, one, false, &r);
		if (fd >= 0)
			close(fd);
		if (got && r.status == 200)
			break;
		if (tries == 20) {
			fail("overload", "no 200 after the overload");
			break;
		}
		sleep_ms(100);
	}
	if (failures == before)
		passed("overload: 200 or 503 for each, and serving after");
	free(rb);
	free(fds);
}

/* GET and HEAD /metrics on one keep-alive connection, then an ordinary
 * request on it. The body is checked for a gauge and a counter of the
 * pool, and written to out_path (if not NULL) for a real parser. */
static void
check_metrics(const char *out_path)
{
	static struct rbuf rb;
	struct response r;
	int fd = dial();
	bool ok = fd >= 0;
	char *body = NULL;

	rb.len = 0;
	ok = ok &&
	     send_str(fd, "GET /metrics HTTP/1.1\r\nHost: probe\r\n\r\n") &&
	     read_response("metrics", fd, &rb, true, &r);
	if (ok && (r.status != 200 || !r.prometheus)) {
		fail("metrics", "status %d, %s", r.status,
		     r.prometheus ? "" : "not Prometheus text");
		ok = false;
	}
	while (ok && rb.len < r.content_length)
		ok = fill(fd, &rb) > 0;
	if (ok) {
		body = strndup(rb.data, r.content_length);
		consume(&rb, r.content_length);
		if (body == NULL)
			abort();
		if (!strstr(body, "# --malloc") &&
		    (!strstr(body, "# TYPE cbm_in_use gauge\n") ||
		     !strstr(body, "# TYPE cbm_allocs_total counter\n") ||
		     !strstr(body, "cbm_allocs_total{pool=\""))) {
			fail("metrics",
			     "no cbm_in_use gauge or cbm_allocs "
			     "counter in: %.200s",
			     body);
			ok = false;
		}
	}
	if (ok && out_path) {
		FILE *f = fopen(out_path, "w");

		if (f == NULL || fputs(body, f) < 0 || fclose(f) != 0) {
			fail("metrics", "cannot write %s", out_path);
			ok = false;
		}
	}
	ok = ok &&
	     send_str(fd, "HEAD /metrics HTTP/1.1\r\nHost: probe\r\n\r\n") &&
	     expect_status("metrics", fd, &rb, true, 200) &&
	     send_str(fd, GET) && expect_status("metrics", fd, &rb, false, 200);
	if (fd >= 0)
		close(fd);
	else
		fail("metrics", "connect: %s", strerror(errno));
	free(body);
	if (ok)
		passed("metrics: GET and HEAD /metrics, then served on");
}

#define SLOWLORIS_MS 8000

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * n connections begin a request and never finish it, sending one more
 * header line every 250 ms (so none is ever idle); meanwhile another
 * client asks every 250 ms. It must get a 200 within SLOWLORIS_MS: the
 * server must close the slow ones to give their buffers back.
 */
static void
check_slowloris(int n)
{
	int *fds = calloc((size_t)n, sizeof(*fds));
	long start = now_ms(), served_ms = -1;
	int open = 0, closed = 0;
	static struct rbuf rb;

	if (fds == NULL)
		abort();
	for (int i = 0; i < n; i++) {
		fds[i] = dial();
		if (fds[i] < 0) {
			fail("slowloris", "connect %d: %s", i, strerror(errno));
			n = i;
			break;
		}
		send_str(fds[i], "GET / HTTP/1.1\r\nHost: probe\r\n");
		open++;
	}
	while (now_ms() - start < SLOWLORIS_MS && served_ms < 0) {
		struct response r;
		int fd;

		sleep_ms(250);
		for (int i = 0; i < n; i++)
			if (fds[i] >= 0 && !send_str(fds[i], "X-Slow: 1\r\n")) {
				close(fds[i]);
				fds[i] = -1;
				closed++;
			}
		fd = dial();
		rb.len = 0;
		if (fd >= 0 && send_str(fd, GET) &&
		    read_response("slowloris", fd, &rb, false, &r) &&
		    r.status == 200)
			served_ms = now_ms() - start;
		if (fd >= 0)
			close(fd);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	printf("probe: slowloris: %d slow connections (%d sends refused); "
	       "another client served after %ld ms\n",
	       open, closed, served_ms);
	if (served_ms < 0)
		fail("slowloris", "no 200 for another client in %d ms",
		     SLOWLORIS_MS);
	else
		passed("slowloris: slow heads do not lock others out");
	free(fds);
}

/* Read lines of the server's output into out (copied to stdout) until
 * one contains want or deadline_ms passes. */
static bool
read_server(FILE *in, const char *want, char *line, size_t size, char *log,
	    size_t log_size)
{
	while (fgets(line, (int)size, in)) {
		fputs(line, stdout);
		if (log && strlen(log) + strlen(line) < log_size)
			strcat(log, line);
		if (want && strstr(line, want))
			return true;
	}
	return false;
}

/* Whether name is one of the comma-separated checks ("grow" is not
 * "grow-dry"). */
static bool
has_check(const char *checks, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = checks; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	}
	return false;
}

int
main(int argc, char **argv)
{
	const char *checks = "basic,faults";
	const char *root = NULL;
	const char *metrics_out = NULL;
	bool expect_503 = false, expect_dry = false;
	size_t big = 32768, max_request = 0;
	int conns = 64, slow = 100, out[2], status, i;
	char line[1024], *p;
	static char log[16384];
	char **args;
	FILE *in;
	pid_t pid;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--checks") == 0 && i + 1 < argc)
			checks = argv[++i];
		else if (strcmp(argv[i], "--connections") == 0 && i + 1 < argc)
			conns = atoi(argv[++i]);
		else if (strcmp(argv[i], "--slow") == 0 && i + 1 < argc)
			slow = atoi(argv[++i]);
		else if (strcmp(argv[i], "--big") == 0 && i + 1 < argc)
			big = (size_t)atol(argv[++i]);
		else if (strcmp(argv[i], "--max-request") == 0 && i + 1 < argc)
			max_request = (size_t)atol(argv[++i]);
		else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			root = argv[++i];
		else if (strcmp(argv[i], "--expect-503") == 0)
			expect_503 = true;
		else if (strcmp(argv[i], "--expect-dry") == 0)
			expect_dry = true;
		else if (strcmp(argv[i], "--metrics-out") == 0 && i + 1 < argc)
			metrics_out = argv[++i];
		else
			break;
	}
	if (i + 1 >= argc || strcmp(argv[i], "--") != 0 || big < 64 ||
	    (has_check(checks, "files") && root == NULL) ||
	    ((has_check(checks, "grow") || has_check(checks, "grow-dry")) &&
	     max_request < 8192)) {
		fprintf(stderr,
			"usage: %s [--checks LIST] [--connections N] "
			"[--expect-503] [--expect-dry] [--big N] "
			"[--slow N] [--max-request N] [--root DIR] "
			"[--metrics-out FILE] -- "
			"SERVER [ARGS...]\n",
			argv[0]);
		return 2;
	}
	/* The server's arguments, then ours. */
	args = calloc((size_t)(argc - i + 7), sizeof(*args));
	if (args == NULL || pipe(out))
		return 1;
	if (root && !make_files(root))
		return 1;
	memcpy(args, argv + i + 1, (size_t)(argc - i - 1) * sizeof(*args));
	p = (char *)"--addr";
	args[argc - i - 1] = p;
	args[argc - i] = (char *)"127.0.0.1";
	args[argc - i + 1] = (char *)"--port";
	args[argc - i + 2] = (char *)"0";
	if (root) {
		args[argc - i + 3] = (char *)"--root";
		args[argc - i + 4] = (char *)root;
	}
	signal(SIGPIPE, SIG_IGN);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execv(args[0], args);
		perror(args[0]);
		_exit(127);
	}
	close(out[1]);
	in = fdopen(out[0], "r");
	if (pid < 0 || in == NULL)
		return 1;
	alarm(60); /* whatever happens, the test ends */

	if (!read_server(in, "listening on 127.0.0.1:", line, sizeof(line),
			 NULL, 0)) {
		waitpid(pid, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
			printf("probe: the server cannot run here (exit 3): "
			       "skipped\n");
			free(args);
			if (root)
				remove_files(root);
			return 77;
		}
		printf("probe: the server did not start\n");
		free(args);
		return 1;
	}
	port = (unsigned)atoi(strstr(line, "127.0.0.1:") + 10);

	if (has_check(checks, "basic")) {
		check_basic();
		check_slow_reader(slow);
	}
	if (has_check(checks, "faults"))
		check_faults(big);
	if (has_check(checks, "grow"))
		check_grow(max_request);
	if (has_check(checks, "grow-dry"))
		check_grow_dry(max_request);
	if (has_check(checks, "refresh"))
		check_refresh();
	if (has_check(checks, "overload"))
		check_overload(conns, expect_503);
	if (has_check(checks, "files"))
		check_files(root);
	if (has_check(checks, "metrics"))
		check_metrics(metrics_out);
	if (has_check(checks, "slowloris"))
		check_slowloris(conns);

	kill(pid, SIGTERM);
	read_server(in, NULL, line, sizeof(line), log, sizeof(log));
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("exit", "the server exited with %d (signal %d)",
		     WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (!strstr(log, "buffers: whole"))
		fail("exit", "the server did not report every buffer back");
	p = strstr(log, "alloc_failures=");
	if (expect_dry && (p == NULL || atol(p + 15) == 0))
		fail("exit", "the pool never ran dry");
	if (failures == 0)
		printf("probe: all passed; the server exited 0, buffers "
		       "whole\n");
	fclose(in);
	free(args);
	if (root)
		remove_files(root);
	return failures ? 1 : 0;
}
