/* SPDX-License-Identifier: MIT */
/* The /metrics response (metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include "http.h"

/* The body goes after room for the head, which is written once the body's
 * length is known, and then moved up against it. */
struct sink {
	char *dst;
	size_t room, len;
	bool full;
};

static void
append(void *cbopaque, const char *text)
{
	struct sink *s = cbopaque;
	size_t n = strlen(text);

	if (s->full || n > s->room - s->len) {
		s->full = true;
		return;
	}
	memcpy(s->dst + s->len, text, n);
	s->len += n;
}

static bool
body(const struct bufs *b, struct sink *s, const char *opts)
{
	s->len = 0;
	s->full = false;
	if (b->pool == NULL)
		append(s, "# --malloc: no pool, no statistics\n");
	else
		cbm_pool_stats_print(b->pool, append, s, opts);
	return !s->full;
}

size_t
metrics_response(const struct bufs *b, bool head_only, char *dst, size_t room)
{
	char head[RESPONSE_HEAD_MAX];
	struct sink s;
	int n;

	if (room <= RESPONSE_HEAD_MAX)
		return 0;
	s.dst = dst + RESPONSE_HEAD_MAX;
	s.room = room - RESPONSE_HEAD_MAX;
	/* Many CPUs' cache lines may not fit a small buffer, nor the HELP
	 * lines: the families of the pool's counters and gauges matter
	 * most. */
	if (!body(b, &s, "P") && !body(b, &s, "Pc") && !body(b, &s, "Pch"))
		return 0;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 200 OK\r\n"
		     "Content-Type: text/plain; version=0.0.4\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: keep-alive\r\n"
		     "\r\n",
		     s.len);
	memcpy(dst, head, (size_t)n);
	if (head_only)
		return (size_t)n;
	memmove(dst + n, s.dst, s.len);
	return (size_t)n + s.len;
}
