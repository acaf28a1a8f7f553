/* SPDX-License-Identifier: MIT */
/*
 * Just enough HTTP/1.1 for the example servers: a strict parser of request
 * heads (RFC 9112), and the responses they send. Requests are parsed from
 * one contiguous buffer, again from the start each time more bytes arrive:
 * buffers are a few KiB, so that costs less than keeping parser state.
 */
#ifndef EXAMPLES_HTTP_H
#define EXAMPLES_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes a 200 response's status line and headers take. */
#define RESPONSE_HEAD_MAX 256

enum http_result {
	HTTP_PARTIAL,  /* no error so far; wait for more bytes */
	HTTP_COMPLETE, /* a whole request: req->length bytes */
	HTTP_ERROR,    /* answer req->status and close the connection */
};

struct http_request {
	size_t length;	 /* HTTP_COMPLETE: bytes of head and body;
			    HTTP_PARTIAL: the same once the head is whole
			    (its body still coming), else 0 */
	int status;	 /* HTTP_ERROR: 400, 413, 501 or 505 */
	bool keep_alive; /* HTTP/1.1 without "Connection: close", or
			    HTTP/1.0 with "Connection: keep-alive" */
	bool head;	 /* a HEAD request: answer without the body */
	bool get;	 /* a GET request */
	/* HTTP_COMPLETE: where in buf the request target is, and the value of
	 * the Range header (range_len 0: none; the header twice counts as
	 * none, as RFC 9110 lets a server ignore a Range it cannot use). */
	size_t target_off, target_len;
	size_t range_off, range_len;
	bool metrics; /* GET or HEAD /metrics: the pool's statistics */
};

/*
 * Parse the request at the start of buf[0..len). limit is the most bytes a
 * request (head and body) may take: larger ones are HTTP_ERROR 413, as
 * soon as that is known. Errors in a line
 * are reported as soon as the line is complete. HTTP/1.0 requests are
 * answered and closed unless they ask for keep-alive ("Connection:
 * keep-alive", as ab -k does); chunked bodies are 501.
 */
enum http_result http_parse(const char *buf, size_t len, size_t limit,
			    struct http_request *req);

/* Build the canned responses; once, before any other call here. */
void http_init(void);

/*
 * A whole response for an error status (400, 403, 404, 405, 413, 500, 501,
 * 503, 505) that asks
 * the client to close ("Connection: close"), in static storage, and its
 * length in *len.
 */
const char *http_error(int status, size_t *len);

/*
 * Write the head of a 200 response with a body of body_size bytes into dst
 * (room for RESPONSE_HEAD_MAX bytes). generation goes in an X-Generation
 * header: which build of the response this is. Returns the head's length.
 * The head says "Connection: keep-alive", which HTTP/1.0 clients need to
 * keep the connection (HTTP/1.1 ones ignore it); the server still closes
 * after a request that did not ask for it.
 */
size_t http_ok_head(char *dst, const char *server, size_t body_size,
		    uint64_t generation);

/* The fixed body: byte i is 'a' + i % 26. */
void http_fill_body(char *dst, size_t n);

#endif /* EXAMPLES_HTTP_H */
