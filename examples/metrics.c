/* SPDX-License-Identifier: MIT */
/* The /metrics response (metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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

static void say(struct sink *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
say(struct sink *s, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	append(s, line);
}

/* The families a heap's classes report: what a dashboard of buffers by
 * size needs (cbm_pool_stats_print names and types them the same). */
struct family {
	const char *name;
	size_t offset;
	bool counter, size_t_field;
	const char *help;
};

#define GAUGE(f, h)                                                            \
	{                                                                      \
#f, offsetof(cbm_stats, f), false, true, h                     \
	}
#define COUNTER(f, h)                                                          \
	{                                                                      \
#f, offsetof(cbm_stats, f), true, false, h                     \
	}

static const struct family families[] = {
	GAUGE(capacity, "buffers in the pool (grows, if elastic)"),
	GAUGE(block_size, "usable bytes per buffer"),
	GAUGE(free, "buffers in the global tier (freelist and depot)"),
	GAUGE(cached, "buffers in per-CPU caches"),
	GAUGE(retired, "buffers retired, waiting for a grace period"),
	GAUGE(in_use, "buffers held by the application"),
	GAUGE(max_capacity, "the ceiling capacity may grow to"),
	GAUGE(resident_bytes, "the pool's memory the OS backs now"),
	GAUGE(released_bytes, "given back to the OS, not yet reused"),
	COUNTER(allocs, "buffers handed out, bulk included"),
	COUNTER(frees, "buffers given back by cbm_free and bulk"),
	COUNTER(retires, "buffers given back by cbm_retire"),
	COUNTER(alloc_failures, "cbm_alloc NULL or cbm_alloc_bulk -ENOMEM"),
	COUNTER(reclaimed, "retired buffers back in the pool"),
	COUNTER(grows, "times the pool grew"),
	COUNTER(releases, "passes or calls that gave memory back"),
};

static uint64_t
value_of(const cbm_stats *st, const struct family *f)
{
	const char *p = (const char *)st + f->offset;
	uint64_t v64;
	size_t vz;

	if (f->size_t_field) {
		memcpy(&vz, p, sizeof(vz));
		return vz;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

/* Each family once, with a sample per class used: the text format wants
 * a family's samples together. */
static void
heap_body(const struct bufs *b, const cbm_stats *st, int n, struct sink *s,
	  bool help)
{
	for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		const struct family *f = &families[k];
		const char *suffix = f->counter ? "_total" : "";

		if (help)
			say(s, "# HELP cbm_%s%s %s\n", f->name, suffix,
			    f->help);
		say(s, "# TYPE cbm_%s%s %s\n", f->name, suffix,
		    f->counter ? "counter" : "gauge");
		for (int i = 0; i < n; i++)
			if (st[i].capacity > 0 || st[i].allocs > 0)
				say(s,
				    "cbm_%s%s{pool=\"%s/%zu\"} %" PRIu64 "\n",
				    f->name, suffix, b->name, st[i].block_size,
				    value_of(&st[i], f));
	}
	if (help)
		say(s, "# HELP cbm_heap_bytes bytes of buffers all classes "
		       "hold from the OS (what the ceiling bounds)\n");
	say(s, "# TYPE cbm_heap_bytes gauge\n");
	say(s, "cbm_heap_bytes{pool=\"%s\"} %zu\n", b->name,
	    cbm_heap_bytes(b->heap));
	if (help)
		say(s, "# HELP cbm_heap_max_bytes the heap's ceiling\n");
	say(s, "# TYPE cbm_heap_max_bytes gauge\n");
	say(s, "cbm_heap_max_bytes{pool=\"%s\"} %zu\n", b->name, b->capacity);
}

static bool
body(const struct bufs *b, const cbm_stats *st, int n, struct sink *s,
     const char *opts)
{
	s->len = 0;
	s->full = false;
	if (b->heap)
		heap_body(b, st, n, s, strchr(opts, 'h') == NULL);
	else if (b->pool)
		cbm_pool_stats_print(b->pool, append, s, opts);
	else
		append(s, "# --malloc: no pool, no statistics\n");
	return !s->full;
}

size_t
metrics_response(const struct bufs *b, bool head_only, char *dst, size_t room)
{
	char head[RESPONSE_HEAD_MAX];
	cbm_stats *st = NULL;
	struct sink s;
	int n = 0;
	bool fits;

	if (room <= RESPONSE_HEAD_MAX)
		return 0;
	if (b->heap) {
		n = cbm_heap_stats(b->heap, NULL, 0);
		st = n > 0 ? calloc((size_t)n, sizeof(*st)) : NULL;
		if (st == NULL)
			return 0;
		n = cbm_heap_stats(b->heap, st, (size_t)n);
	}
	s.dst = dst + RESPONSE_HEAD_MAX;
	s.room = room - RESPONSE_HEAD_MAX;
	/* Many CPUs' cache lines may not fit a small buffer, nor the HELP
	 * lines: the families of the pool's counters and gauges matter
	 * most. */
	fits = body(b, st, n, &s, "P") || body(b, st, n, &s, "Pc") ||
	       body(b, st, n, &s, "Pch");
	free(st);
	if (!fits)
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

char *
metrics_build(struct bufs *b, bool head_only, size_t *len)
{
	size_t want = b->size, cap;

	for (;;) {
		char *buf = bufs_get_size(b, want, &cap);

		if (buf == NULL)
			return NULL;
		*len = metrics_response(b, head_only, buf, cap);
		if (*len > 0)
			return buf;
		bufs_put(b, buf);
		if (cap >= b->max_size) {
			errno = EMSGSIZE;
			return NULL;
		}
		want = cap > b->max_size / 2 ? b->max_size : 2 * cap;
	}
}
