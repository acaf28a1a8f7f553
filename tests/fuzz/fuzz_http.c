/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness 3: examples/http.c's request parser.
 *
 * The first two bytes choose the limit (the buffer size a request must
 * fit, at least the bytes in it); the rest is the bytes received so far, copied into a heap block of
 * exactly that size, so that AddressSanitizer catches any read past them.
 * Checks, from http.h's contract:
 *   - the result is one of the three, and an error's status one of 400,
 *     413, 501, 505;
 *   - a complete request's length is within the bytes given and the limit;
 *   - waiting for more bytes (HTTP_PARTIAL) only while fewer than limit
 *     bytes are in: a request that cannot fit is 413 as soon as known;
 *     and the length it tells once the head is whole is past the bytes
 *     in and within the limit (what a server grows its buffer to);
 *   - the parser reads only the request: a complete request parses the
 *     same (length, keep_alive, head) from exactly its own bytes, and
 *     every shorter prefix of it is HTTP_PARTIAL (an error is reported
 *     when a line is complete, and a prefix's complete lines are the
 *     request's own).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

static enum http_result
parse_copy(const uint8_t *data, size_t len, size_t limit,
	   struct http_request *req)
{
	char *copy = malloc(len ? len : 1);
	enum http_result r;

	FUZZ_CHECK(copy != NULL, "malloc");
	memcpy(copy, data, len);
	r = http_parse(copy, len, limit, req);
	free(copy);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_bytes b = {data, size};
	struct http_request req, again;
	enum http_result r;
	const uint8_t *msg;
	size_t limit, len;

	limit = 1 + fuzz_u16(&b) % 4096;
	msg = b.p;
	len = b.n;
	/* The bytes received are in the buffer, so never more than it holds
	 * (the servers' use; http_parse does not check it). */
	if (limit < len)
		limit = len;
	r = parse_copy(msg, len, limit, &req);
	switch (r) {
	case HTTP_PARTIAL:
		FUZZ_CHECK(len < limit,
			   "partial with %zu bytes in, limit %zu: should be "
			   "413",
			   len, limit);
		/* What a server grows its buffer to: past the bytes in,
		 * within the limit. */
		FUZZ_CHECK(req.length == 0 ||
				   (req.length > len && req.length <= limit),
			   "partial with %zu bytes in, limit %zu, says the "
			   "request takes %zu",
			   len, limit, req.length);
		break;
	case HTTP_ERROR:
		FUZZ_CHECK(req.status == 400 || req.status == 413 ||
				   req.status == 501 || req.status == 505,
			   "error status %d", req.status);
		break;
	case HTTP_COMPLETE:
		FUZZ_CHECK(req.length > 0 && req.length <= len &&
				   req.length <= limit,
			   "complete length %zu of %zu bytes, limit %zu",
			   req.length, len, limit);
		FUZZ_CHECK(parse_copy(msg, req.length, limit, &again) ==
					   HTTP_COMPLETE &&
				   again.length == req.length &&
				   again.keep_alive == req.keep_alive &&
				   again.head == req.head,
			   "the request's own %zu bytes parse differently",
			   req.length);
		/* The prefixes: the last byte missing, and one more that
		 * the input picks. */
		{
			size_t cut[2] = {req.length - 1,
					 (len * 2654435761u + limit) %
						 req.length};

			for (int i = 0; i < 2; i++) {
				enum http_result p =
					parse_copy(msg, cut[i], limit, &again);

				FUZZ_CHECK(p == HTTP_PARTIAL,
					   "a %zu-byte prefix of a complete "
					   "%zu-byte request: result %d, "
					   "status %d",
					   cut[i], req.length, (int)p,
					   again.status);
			}
		}
		break;
	default:
		FUZZ_FAIL("result %d", (int)r);
	}
	return 0;
}
