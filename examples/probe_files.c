/* SPDX-License-Identifier: MIT */
/*
 * The file server's checks (probe.h, --checks files): the probe makes a
 * tree of files whose every byte it can compute, downloads them whole, in
 * ranges and as HEAD, and checks each byte; tries to leave the tree in
 * every way it knows; vanishes mid-download; changes files under the
 * server while it sends them; and stops reading (the server must run with
 * --idle-timeout 2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe.h"

#define MIB (1024 * 1024)
#define CHANGING_SIZE (48 * MIB)
#define GROW_FROM (8 * MIB + 100)

struct file {
	const char *name;
	size_t size;
};

/* Sizes around the O_DIRECT block (4096) and the server's blocks. */
static const struct file files[] = {
	{"empty", 0},	       {"one", 1},
	{"page-1", 4095},      {"page", 4096},
	{"page+1", 4097},      {"mib+1", MIB + 1},
	{"sub/deep/f", 70000}, {"big", 64 * (size_t)MIB},
};
#define NFILES (sizeof(files) / sizeof(files[0]))

/* Byte off of the file whose name hashes to seed: not periodic in any
 * power of two below 2^32, so a block sent from the wrong offset or a
 * wrong place in a buffer shows. */
static unsigned char
byte_at(unsigned seed, uint64_t off)
{
	uint32_t x = (uint32_t)off * 2654435761u + seed;

	return (unsigned char)(x >> 24 ^ (uint32_t)(off >> 12) ^ seed);
}

static unsigned
seed_of(const char *name)
{
	unsigned h = 5381;

	while (*name)
		h = h * 33 + (unsigned char)*name++;
	return h;
}

/* The file's bytes [from, size), written in place: from 0 a new file,
 * otherwise one that only grows (never cut, not even for a moment). */
static bool
fill_file(const char *root, const char *name, size_t from, size_t size,
	  unsigned seed)
{
	char path[1024], *buf = malloc(MIB);
	size_t done = from;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	fd = open(path,
		  O_WRONLY | O_CREAT | O_CLOEXEC | (from == 0 ? O_TRUNC : 0),
		  0644);
	if (fd < 0 || buf == NULL) {
		fprintf(stderr, "probe: %s: %s\n", path, strerror(errno));
		free(buf);
		return false;
	}
	while (done < size) {
		size_t n = size - done < MIB ? size - done : MIB;

		for (size_t i = 0; i < n; i++)
			buf[i] = (char)byte_at(seed, done + i);
		if (pwrite(fd, buf, n, (off_t)done) != (ssize_t)n) {
			fprintf(stderr, "probe: write %s: %s\n", path,
				strerror(errno));
			close(fd);
			free(buf);
			return false;
		}
		done += n;
	}
	free(buf);
	return close(fd) == 0;
}

static bool
write_file(const char *root, const char *name, size_t size, unsigned seed)
{
	return fill_file(root, name, 0, size, seed);
}

bool
make_files(const char *root)
{
	char path[1024];

	mkdir(root, 0755);
	snprintf(path, sizeof(path), "%s/sub", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sub/deep", root);
	mkdir(path, 0755);
	for (size_t i = 0; i < NFILES; i++)
		if (!write_file(root, files[i].name, files[i].size,
				seed_of(files[i].name)))
			return false;
	/* A symlink that stays inside (served), two that lead out. */
	snprintf(path, sizeof(path), "%s/inside", root);
	unlink(path);
	if (symlink("sub/deep/f", path))
		return false;
	snprintf(path, sizeof(path), "%s/sub/outside", root);
	unlink(path);
	if (symlink("/etc", path))
		return false;
	snprintf(path, sizeof(path), "%s/sub/up", root);
	unlink(path);
	if (symlink("../..", path))
		return false;
	/* A file outside the root that traversal would reach. */
	snprintf(path, sizeof(path), "%s/../secret", root);
	return write_file(root, "../secret", 10, 1);
}

void
remove_files(const char *root)
{
	char path[1024];

	for (size_t i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", root, files[i].name);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/changing", root);
	unlink(path);
}

struct head {
	int status;
	uint64_t length;		   /* Content-Length */
	uint64_t range_first, range_total; /* Content-Range, if any */
	bool has_range, close;
};

/* Bytes read past a response head, not yet taken. */
struct conn {
	int fd;
	char buf[65536];
	size_t len, off;
};

static int
conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	do
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		c->len += (size_t)n;
	return n > 0 ? 1 : n == 0 ? 0 : -1;
}

static bool
read_head(const char *check, struct conn *c, struct head *h)
{
	char *end, *line;

	memset(h, 0, sizeof(*h));
	for (;;) {
		end = memmem(c->buf + c->off, c->len - c->off, "\r\n\r\n", 4);
		if (end)
			break;
		if (conn_fill(c) <= 0) {
			fail(check, "no whole response head");
			return false;
		}
	}
	*end = '\0';
	if (sscanf(c->buf + c->off, "HTTP/1.1 %d ", &h->status) != 1) {
		fail(check, "bad status line: %.40s", c->buf + c->off);
		return false;
	}
	h->length = UINT64_MAX;
	for (line = strstr(c->buf + c->off, "\r\n"); line;
	     line = strstr(line + 2, "\r\n")) {
		char *l = line + 2;

		if (strncasecmp(l, "Content-Length:", 15) == 0)
			h->length = strtoull(l + 15, NULL, 10);
		else if (strncasecmp(l, "Content-Range: bytes ", 21) == 0) {
			h->has_range = true;
			h->range_first = strtoull(l + 21, NULL, 10);
			l = strchr(l, '/');
			h->range_total = l ? strtoull(l + 1, NULL, 10) : 0;
		} else if (strncasecmp(l, "Connection: close", 17) == 0)
			h->close = true;
	}
	c->off = (size_t)(end - c->buf) + 4;
	if (h->length == UINT64_MAX) {
		fail(check, "status %d without Content-Length", h->status);
		return false;
	}
	return true;
}

/* Read up to len body bytes, each checked against byte_at(seed, first +
 * i); *got says how many came before EOF. False on a wrong byte or an
 * error; a short body is for the caller to judge. */
static bool
read_body(const char *check, struct conn *c, uint64_t len, unsigned seed,
	  uint64_t first, uint64_t *got)
{
	uint64_t have = 0;

	while (have < len) {
		size_t n = c->len - c->off;
		int r;

		if (n == 0) {
			r = conn_fill(c);
			if (r == 0)
				break;
			if (r < 0) {
				fail(check, "after %llu of %llu bytes: %s",
				     (unsigned long long)have,
				     (unsigned long long)len, strerror(errno));
				return false;
			}
			continue;
		}
		if (n > len - have)
			n = (size_t)(len - have);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)c->buf[c->off + i] !=
			    byte_at(seed, first + have + i)) {
				fail(check, "byte %llu of the file is wrong",
				     (unsigned long long)(first + have + i));
				return false;
			}
		c->off += n;
		have += n;
	}
	*got = have;
	return true;
}

static bool
request(struct conn *c, const char *method, const char *target,
	const char *extra)
{
	char req[2048];

	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: probe\r\n%s\r\n",
		 method, target, extra ? extra : "");
	return send_str(c->fd, req);
}

static bool
open_conn(const char *check, struct conn *c)
{
	c->len = c->off = 0;
	c->fd = dial();
	if (c->fd < 0)
		fail(check, "connect: %s", strerror(errno));
	return c->fd >= 0;
}

/* GET (or a Range of) /name on c, expecting status and the bytes
 * [first, first + len) of the file content (NULL: name itself). */
static bool
fetch_as(const char *check, struct conn *c, const char *name,
	 const char *content, const char *range, int status, uint64_t first,
	 uint64_t len, uint64_t size)
{
	char target[1100], extra[128] = "";
	struct head h;
	uint64_t got;

	snprintf(target, sizeof(target), "/%s", name);
	if (range)
		snprintf(extra, sizeof(extra), "Range: %s\r\n", range);
	if (!request(c, "GET", target, extra) || !read_head(check, c, &h))
		return false;
	if (h.status != status || h.length != len) {
		fail(check, "%s%s%s: status %d, %llu bytes; expected %d, %llu",
		     name, range ? " " : "", range ? range : "", h.status,
		     (unsigned long long)h.length, status,
		     (unsigned long long)len);
		return false;
	}
	if (status == 206 &&
	    (!h.has_range || h.range_first != first || h.range_total != size)) {
		fail(check, "%s %s: Content-Range from %llu of %llu", name,
		     range, (unsigned long long)h.range_first,
		     (unsigned long long)h.range_total);
		return false;
	}
	if (!read_body(check, c, len, seed_of(content ? content : name), first,
		       &got))
		return false;
	if (got != len) {
		fail(check, "%s: EOF after %llu of %llu bytes", name,
		     (unsigned long long)got, (unsigned long long)len);
		return false;
	}
	return true;
}

static bool
fetch(const char *check, struct conn *c, const char *name, const char *range,
      int status, uint64_t first, uint64_t len, uint64_t size)
{
	return fetch_as(check, c, name, NULL, range, status, first, len, size);
}

static void
check_downloads(void)
{
	struct conn *c = malloc(sizeof(*c));
	bool ok;

	/* Every file on one keep-alive connection, then a HEAD. */
	ok = c && open_conn("download", c);
	for (size_t i = 0; i < NFILES && ok; i++)
		ok = fetch("download", c, files[i].name, NULL, 200, 0,
			   files[i].size, files[i].size);
	if (ok)
		passed("download: 0 B to 64 MiB, every byte as on disk, one "
		       "connection");
	ok = ok && fetch_as("download", c, "inside", "sub/deep/f", NULL, 200, 0,
			    70000, 70000);
	if (ok) {
		struct head h;

		ok = request(c, "HEAD", "/big", NULL) &&
		     read_head("head", c, &h);
		if (ok && (h.status != 200 || h.length != 64 * (uint64_t)MIB))
			fail("head", "status %d, length %llu", h.status,
			     (unsigned long long)h.length);
		ok = ok && fetch("head", c, "one", NULL, 200, 0, 1, 1);
		if (ok)
			passed("head: the length, no body; a symlink inside "
			       "the root is served");
	}
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
}

static void
check_ranges(void)
{
	struct conn *c = malloc(sizeof(*c));
	const uint64_t m = MIB + 1;
	bool ok = c && open_conn("range", c);

	ok = ok && fetch("range", c, "mib+1", "bytes=0-0", 206, 0, 1, m);
	ok = ok &&
	     fetch("range", c, "mib+1", "bytes=4095-4096", 206, 4095, 2, m);
	ok = ok && fetch("range", c, "mib+1", "bytes=5000-700000", 206, 5000,
			 695001, m);
	ok = ok && fetch("range", c, "mib+1", "bytes=1048576-", 206, MIB, 1, m);
	ok = ok &&
	     fetch("range", c, "mib+1", "bytes=-4097", 206, m - 4097, 4097, m);
	ok = ok && fetch("range", c, "mib+1", "bytes=100-99999999", 206, 100,
			 m - 100, m);
	ok = ok && fetch("range", c, "big", "bytes=33554431-50331649", 206,
			 33554431, 16777219, 64 * (uint64_t)MIB);
	/* Several ranges: the whole file (a server may ignore Range). */
	ok = ok &&
	     fetch("range", c, "page+1", "bytes=0-1,5-6", 200, 0, 4097, 4097);
	/* What does not parse is ignored too: the whole file. */
	ok = ok && fetch("range", c, "one", "bytes=5-3", 200, 0, 1, 1);
	ok = ok && fetch("range", c, "one", "items=0-0", 200, 0, 1, 1);
	ok = ok && fetch("range", c, "one", "bytes=99999999999999999999-", 200,
			 0, 1, 1);
	ok = ok && fetch("range", c, "one", "bytes=0-0\r\nRange: bytes=0-0",
			 200, 0, 1, 1);
	ok = ok && fetch("range", c, "page", "bytes=4096-", 416, 0, 0, 4096);
	if (c && c->fd >= 0)
		close(c->fd);
	ok = ok && open_conn("range", c) &&
	     fetch("range", c, "empty", "bytes=0-", 416, 0, 0, 0);
	if (c && c->fd >= 0)
		close(c->fd);
	/* A 416 closes the connection. */
	ok = ok && open_conn("range", c) &&
	     fetch("range", c, "page", "bytes=-0", 416, 0, 0, 4096);
	if (ok)
		passed("range: single ranges at any offset, 206 with "
		       "Content-Range; several, malformed or repeated ones "
		       "ignored; 416 past the end");
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
}

/* One request on a fresh connection: its status. */
static int
status_of(const char *target, const char *method)
{
	struct conn *c = malloc(sizeof(*c));
	struct head h = {0};

	if (c == NULL || !open_conn("traversal", c)) {
		free(c);
		return -1;
	}
	if (!request(c, method, target, NULL) || !read_head("traversal", c, &h))
		h.status = -1;
	close(c->fd);
	free(c);
	return h.status;
}

static void
check_traversal(void)
{
	static const struct {
		const char *target;
		int status;
	} tries[] = {
		{"/../secret", 403},
		{"/sub/../../secret", 403},
		{"/%2e%2e/secret", 403},
		{"/%2E%2e/secret", 403},
		{"/.%2e/secret", 403},
		{"/sub/..%2f..%2fsecret", 403},
		{"/sub%2f..%2f..%2fsecret", 403},
		{"/sub/outside/passwd", 403},
		{"/sub/outside", 403},
		{"/sub/up/secret", 403},
		{"/sub/up", 403},
		{"../secret", 400},
		{"/%zz", 400},
		{"/a%00b", 400},
		{"/%", 400},
		{"/", 404},
		{"/sub/", 404},
		{"/sub", 404},
		{"/missing", 404},
		{"/%2e%2e%2f", 403},
	};
	bool ok = true;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		int got = status_of(tries[i].target, "GET");

		if (got != tries[i].status) {
			fail("traversal", "GET %s: %d, expected %d",
			     tries[i].target, got, tries[i].status);
			ok = false;
		}
	}
	if (status_of("/one", "POST") != 405) {
		fail("traversal", "POST was not refused with 405");
		ok = false;
	}
	if (ok)
		passed("traversal: '..' in every encoding and symlinks out "
		       "refused (403), bad targets 400, directories 404");
}

/* Clients that take part of a big download, then vanish (close with
 * unread data: a reset), several at once; the server must go on. */
static void
check_vanishing(void)
{
	struct conn *c = malloc(sizeof(*c) * 8);
	bool ok = c != NULL;

	for (int i = 0; i < 8 && ok; i++) {
		struct head h;

		ok = open_conn("vanish", &c[i]) &&
		     request(&c[i], "GET", "/big", NULL) &&
		     read_head("vanish", &c[i], &h);
	}
	for (int i = 0; i < 8 && ok; i++) {
		uint64_t got;

		ok = read_body("vanish", &c[i], 100000 * (uint64_t)(i + 1),
			       seed_of("big"), 0, &got);
	}
	for (int i = 0; c && i < 8; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	/* Half a request, then gone. */
	ok = ok && open_conn("vanish", c) && send_str(c->fd, "GET /big HTT");
	if (c && c->fd >= 0)
		close(c->fd);
	sleep_ms(100);
	ok = ok && open_conn("vanish", c) &&
	     fetch("vanish", c, "mib+1", NULL, 200, 0, MIB + 1, MIB + 1);
	if (c && c->fd >= 0)
		close(c->fd);
	if (ok)
		passed("vanish: clients gone mid-download; the server goes "
		       "on");
	free(c);
}

/*
 * A file that changes while it is served: the body never runs past the
 * Content-Length the head gave. Shrunk: the server stops early and closes
 * (the client's body is short, each byte it got right). Grown: exactly the
 * announced bytes, and the next response on the connection is intact.
 */
static void
check_changing(const char *root)
{
	struct conn *c = malloc(sizeof(*c));
	unsigned seed = seed_of("changing");
	char path[1024];
	struct head h;
	uint64_t got;
	bool ok;

	snprintf(path, sizeof(path), "%s/changing", root);
	ok = c && write_file(root, "changing", CHANGING_SIZE, seed) &&
	     open_conn("shrink", c) && request(c, "GET", "/changing", NULL) &&
	     read_head("shrink", c, &h);
	/* The server fills the socket buffers and waits for us. */
	sleep_ms(200);
	ok = ok && truncate(path, MIB) == 0 &&
	     read_body("shrink", c, h.length + 1, seed, 0, &got);
	if (ok && (h.length != CHANGING_SIZE || got >= CHANGING_SIZE)) {
		fail("shrink", "%llu bytes of a body of %llu",
		     (unsigned long long)got, (unsigned long long)h.length);
		ok = false;
	}
	if (c && c->fd >= 0)
		close(c->fd);
	if (ok)
		printf("probe: shrink: a 48 MiB file cut to 1 MiB mid-body: "
		       "%llu bytes, then closed: ok\n",
		       (unsigned long long)got);

	/* Not a multiple of 4096: the last O_DIRECT block is read whole
	 * and holds more than is left to send once the file grew. */
	ok = write_file(root, "changing", GROW_FROM, seed) &&
	     open_conn("grow", c) && request(c, "GET", "/changing", NULL) &&
	     read_head("grow", c, &h);
	sleep_ms(100);
	/* Grown by 1 MiB, well past the last block, and quickly: a long
	 * write here would leave the connection idle past the server's
	 * --idle-timeout of 2 s on a loaded machine (TSan), which then
	 * closes it mid-body. */
	ok = ok &&
	     fill_file(root, "changing", GROW_FROM, GROW_FROM + MIB, seed) &&
	     read_body("grow", c, h.length, seed, 0, &got);
	if (ok && (h.length != GROW_FROM || got != h.length)) {
		fail("grow", "%llu bytes of a body of %llu",
		     (unsigned long long)got, (unsigned long long)h.length);
		ok = false;
	}
	ok = ok && fetch("grow", c, "page-1", NULL, 200, 0, 4095, 4095);
	if (c && c->fd >= 0)
		close(c->fd);
	if (ok)
		passed("grow: an 8 MiB + 100 B file grown mid-body: that "
		       "much sent, the next response intact");
	free(c);
}

/*
 * A client that stops reading mid-download holds the server's buffers;
 * the server (run with --idle-timeout 2) must close it once it made no
 * progress for that long: the client then finds its body cut short.
 */
static void
check_stalled(void)
{
	struct conn *c = malloc(sizeof(*c));
	struct head h;
	uint64_t got = 0;
	bool ok = c && open_conn("stalled", c) &&
		  request(c, "GET", "/big", NULL) &&
		  read_head("stalled", c, &h);

	sleep_ms(3500);
	ok = ok && read_body("stalled", c, h.length, seed_of("big"), 0, &got);
	if (ok && got >= h.length) {
		fail("stalled", "a client that stopped reading for 3.5 s got "
				"its whole body: never closed");
		ok = false;
	}
	if (c && c->fd >= 0)
		close(c->fd);
	if (ok)
		printf("probe: stalled: closed after the idle timeout, %llu "
		       "of %llu bytes sent: ok\n",
		       (unsigned long long)got, (unsigned long long)h.length);
	free(c);
}

void
check_files(const char *root)
{
	check_downloads();
	check_ranges();
	check_traversal();
	check_vanishing();
	check_changing(root);
	check_stalled();
}
