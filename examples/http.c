/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 request parser and the canned responses (http.h).
 *
 * Strict where leniency would let a request mean two things (RFC 9112
 * section 11): a bare CR, whitespace before a header's colon, folded
 * header lines, a Content-Length that is not a plain decimal or that
 * appears twice with different values, and Transfer-Encoding (which this
 * server does not implement) are all refused. Lenient where it costs
 * nothing: a line may end in LF alone, and empty lines before the request
 * line are skipped.
 */
#include "http.h"

#include <stdio.h>
#include <string.h>

static bool
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte allowed in a header value: visible, space, tab, or obs-text. */
static bool
is_field_char(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

static bool
lower_eq(const char *s, size_t n, const char *lower)
{
	size_t i;

	for (i = 0; i < n && lower[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)lower[i])
			return false;
	}
	return i == n && lower[i] == '\0';
}

struct head_state {
	bool http11;
	bool close;
	bool keep_alive;
	bool chunked;
	bool have_length;
	size_t length;
	unsigned hosts;
	unsigned ranges;
};

static enum http_result
fail(struct http_request *req, int status)
{
	req->status = status;
	return HTTP_ERROR;
}

static enum http_result
request_line(const char *buf, const char *s, size_t n, struct http_request *req,
	     struct head_state *st)
{
	size_t i = 0, m;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i > 32 || i == n || s[i] != ' ')
		return fail(req, 400);
	req->head = (i == 4 && memcmp(s, "HEAD", 4) == 0);
	req->get = (i == 3 && memcmp(s, "GET", 3) == 0);
	m = ++i;
	while (i < n && (unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7f)
		i++;
	if (i == m || i == n || s[i] != ' ')
		return fail(req, 400);
	req->target_off = (size_t)(s + m - buf);
	req->target_len = i - m;
	req->metrics = (req->get || req->head) && i - m == 8 &&
		       memcmp(s + m, "/metrics", 8) == 0;
	s += i + 1;
	n -= i + 1;
	if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[5] < '0' || s[5] > '9' ||
	    s[6] != '.' || s[7] < '0' || s[7] > '9')
		return fail(req, 400);
	if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
		return fail(req, 505);
	st->http11 = s[7] == '1';
	return HTTP_PARTIAL;
}

static enum http_result
content_length(const char *v, size_t n, size_t limit, struct http_request *req,
	       struct head_state *st)
{
	size_t value = 0, i;
	bool huge = false;

	if (n == 0)
		return fail(req, 400);
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(req, 400);
		if (value > limit)
			huge = true;
		else
			value = value * 10 + (size_t)(v[i] - '0');
	}
	if (st->have_length && (huge || value != st->length))
		return fail(req, 400);
	if (huge || value > limit)
		return fail(req, 413);
	st->have_length = true;
	st->length = value;
	return HTTP_PARTIAL;
}

/* "close" or "keep-alive" among the comma-separated tokens of a Connection
 * header. */
static void
connection(const char *v, size_t n, struct head_state *st)
{
	size_t i = 0;

	while (i < n) {
		size_t j;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		j = i;
		while (j < n && v[j] != ',' && v[j] != ' ' && v[j] != '\t')
			j++;
		if (lower_eq(v + i, j - i, "close"))
			st->close = true;
		else if (lower_eq(v + i, j - i, "keep-alive"))
			st->keep_alive = true;
		i = j;
	}
}

static enum http_result
header_line(const char *buf, const char *s, size_t n, size_t limit,
	    struct http_request *req, struct head_state *st)
{
	size_t i = 0, end;
	const char *v;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n || s[i] != ':')
		return fail(req, 400);
	for (size_t k = i + 1; k < n; k++)
		if (!is_field_char((unsigned char)s[k]))
			return fail(req, 400);
	v = s + i + 1;
	end = n - i - 1;
	while (end > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		end--;
	}
	while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
		end--;
	if (lower_eq(s, i, "content-length"))
		return content_length(v, end, limit, req, st);
	if (lower_eq(s, i, "transfer-encoding"))
		st->chunked = true;
	else if (lower_eq(s, i, "connection"))
		connection(v, end, st);
	else if (lower_eq(s, i, "host"))
		st->hosts++;
	else if (lower_eq(s, i, "range") && st->ranges++ == 0) {
		req->range_off = (size_t)(v - buf);
		req->range_len = end;
	}
	return HTTP_PARTIAL;
}

enum http_result
http_parse(const char *buf, size_t len, size_t limit, struct http_request *req)
{
	struct head_state st = {0};
	bool first = true;
	size_t pos = 0;

	*req = (struct http_request){0};
	for (;;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		const char *line = buf + pos;
		enum http_result r;
		size_t n;

		if (nl == NULL)
			return len >= limit ? fail(req, 413) : HTTP_PARTIAL;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (memchr(line, '\r', n) != NULL)
			return fail(req, 400);
		pos = (size_t)(nl - buf) + 1;
		if (first && n == 0)
			continue;
		if (n == 0)
			break;
		if (first)
			r = request_line(buf, line, n, req, &st);
		else if (line[0] == ' ' || line[0] == '\t')
			r = fail(req, 400); /* obsolete line folding */
		else
			r = header_line(buf, line, n, limit, req, &st);
		if (r != HTTP_PARTIAL)
			return r;
		first = false;
	}
	if (st.chunked)
		return fail(req, 501);
	if (st.http11 && st.hosts != 1)
		return fail(req, 400);
	if (st.length > limit - pos)
		return fail(req, 413);
	if (len - pos < st.length) {
		req->length = pos + st.length; /* what a buffer must hold */
		return HTTP_PARTIAL;
	}
	if (st.ranges > 1)
		req->range_len = 0;
	req->length = pos + st.length;
	req->keep_alive = !st.close && (st.http11 || st.keep_alive);
	return HTTP_COMPLETE;
}

struct canned {
	int status;
	const char *reason;
	const char *extra; /* more header lines */
	const char *body;
	char text[256];
	size_t len;
};

static struct canned canned[] = {
	{400, "Bad Request", "", "malformed request\n", "", 0},
	{403, "Forbidden", "", "outside the served tree\n", "", 0},
	{404, "Not Found", "", "no such file\n", "", 0},
	{405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
	 "only GET and HEAD\n", "", 0},
	{413, "Content Too Large", "", "request too large\n", "", 0},
	{501, "Not Implemented", "", "transfer codings are not supported\n", "",
	 0},
	{500, "Internal Server Error", "", "the server could not do that\n", "",
	 0},
	{503, "Service Unavailable", "Retry-After: 1\r\n",
	 "out of buffers, try again\n", "", 0},
	{505, "HTTP Version Not Supported", "", "only HTTP/1.0 and HTTP/1.1\n",
	 "", 0},
};

void
http_init(void)
{
	for (size_t i = 0; i < sizeof(canned) / sizeof(canned[0]); i++) {
		struct canned *c = &canned[i];
		int n = snprintf(c->text, sizeof(c->text),
				 "HTTP/1.1 %d %s\r\n"
				 "Content-Type: text/plain\r\n"
				 "Content-Length: %zu\r\n"
				 "Connection: close\r\n"
				 "%s\r\n%s",
				 c->status, c->reason, strlen(c->body),
				 c->extra, c->body);

		c->len = (size_t)n;
	}
}

const char *
http_error(int status, size_t *len)
{
	for (size_t i = 0; i < sizeof(canned) / sizeof(canned[0]); i++)
		if (canned[i].status == status) {
			*len = canned[i].len;
			return canned[i].text;
		}
	return http_error(400, len);
}

size_t
http_ok_head(char *dst, const char *server, size_t body_size,
	     uint64_t generation)
{
	int n = snprintf(dst, RESPONSE_HEAD_MAX,
			 "HTTP/1.1 200 OK\r\n"
			 "Server: %.32s\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n"
			 "X-Generation: %llu\r\n"
			 "Connection: keep-alive\r\n"
			 "\r\n",
			 server, body_size, (unsigned long long)generation);

	return (size_t)n;
}

void
http_fill_body(char *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)('a' + i % 26);
}
