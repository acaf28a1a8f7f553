/* SPDX-License-Identifier: MIT */
/*
 * cbm_pool_stats_print: a snapshot (cbm_pool_stats) as text for a human,
 * as one JSON object, or in the Prometheus text format.
 *
 * Every field of cbm_stats is one row of FIELDS below, and the three
 * formats are written from that table alone: a new field is one new row.
 * tests/stats_print.py checks that the JSON names every field that cbm.h
 * declares, so a field without a row fails the tests.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"
#include "report.h"

/* How a field is read: it is a size_t, a uint64_t or an unsigned, told
 * apart by size. */
enum kind {
	COUNTER, /* only grows: a Prometheus counter (_total) */
	GAUGE,	 /* goes up and down: a gauge */
	CONFIG,	 /* fixed at create: a gauge, for dashboards to divide by */
};

struct field {
	const char *name;
	size_t offset, size;
	enum kind kind;
	const char *help;
};

#define FIELD(f, kind, help)                                                   \
	{                                                                      \
#f, offsetof(cbm_stats, f), sizeof(((cbm_stats *)0)->f), kind, \
			help                                                   \
	}

static const struct field FIELDS[] = {
	FIELD(capacity, GAUGE, "buffers in the pool (grows, if elastic)"),
	FIELD(block_size, CONFIG, "usable bytes per buffer"),
	FIELD(free, GAUGE, "buffers in the global tier (freelist and depot)"),
	FIELD(cached, GAUGE, "buffers in per-CPU caches"),
	FIELD(retired, GAUGE, "buffers retired, waiting for a grace period"),
	FIELD(in_use, GAUGE, "buffers held by the application"),
	FIELD(allocs, COUNTER, "buffers handed out, bulk included"),
	FIELD(frees, COUNTER, "buffers given back by cbm_free and bulk"),
	FIELD(retires, COUNTER, "buffers given back by cbm_retire"),
	FIELD(alloc_failures, COUNTER,
	      "cbm_alloc NULL or cbm_alloc_bulk -ENOMEM"),
	FIELD(depot_exchanges, COUNTER, "magazines moved to or from the depot"),
	FIELD(global_pops, COUNTER, "cache refills from the freelist"),
	FIELD(global_pushes, COUNTER, "cache spills to the freelist"),
	FIELD(busy_fallbacks, COUNTER,
	      "calls that found their CPU's cache held and went global"),
	FIELD(steals, COUNTER,
	      "buffers drained from CPU caches so an allocation could succeed"),
	FIELD(trims, COUNTER, "buffers moved out of CPU caches by trim"),
	FIELD(idle_drains, COUNTER, "buffers moved out of idle CPUs' caches"),
	FIELD(reclaimed, COUNTER, "retired buffers back in the pool"),
	FIELD(grace_periods, COUNTER, "grace periods waited for this pool"),
	FIELD(rseq_aborts, COUNTER, "restartable sequences the kernel aborted"),
	FIELD(magazine_size, CONFIG, "buffers per magazine"),
	FIELD(cpus, CONFIG, "CPUs with caches"),
	FIELD(percpu_mode, CONFIG, "0: portable, 1: rseq"),
	FIELD(hugepages, CONFIG,
	      "0: normal pages, 1: explicit huge pages, 2: transparent"),
	FIELD(max_capacity, CONFIG, "the ceiling capacity may grow to"),
	FIELD(resident_bytes, GAUGE, "the pool's memory the OS backs now"),
	FIELD(released_bytes, GAUGE, "given back to the OS, not yet reused"),
	FIELD(grows, COUNTER, "times the pool grew"),
	FIELD(releases, COUNTER, "passes or calls that gave memory back"),
};

#define NFIELDS (sizeof(FIELDS) / sizeof(FIELDS[0]))

static uint64_t
value_of(const cbm_stats *st, const struct field *f)
{
	const char *p = (const char *)st + f->offset;

	if (f->size == sizeof(uint64_t)) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));
		return v;
	}
	if (f->size == sizeof(uint32_t)) {
		uint32_t v;

		memcpy(&v, p, sizeof(v));
		return v;
	}
	return 0; /* cbm_stats has only 4- and 8-byte fields */
}

struct out {
	void (*write_cb)(void *cbopaque, const char *text);
	void *cbopaque;
};

static void say(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
say(struct out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	o->write_cb(o->cbopaque, line);
}

static void
to_stderr(void *cbopaque, const char *text)
{
	(void)cbopaque;
	fputs(text, stderr);
}

/* A string as JSON or as a Prometheus label value: ", \ and control
 * characters escaped (a pool's name is the application's). */
static void
quoted(char *dst, size_t n, const char *s)
{
	size_t k = 0;

	for (; *s != '\0' && k + 7 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			dst[k++] = '\\';
			dst[k++] = (char)c;
		} else if (c == '\n') {
			dst[k++] = '\\';
			dst[k++] = 'n';
		} else if (c < 0x20) {
			k += (size_t)snprintf(dst + k, n - k, "\\u%04x", c);
		} else {
			dst[k++] = (char)c;
		}
	}
	dst[k] = '\0';
}

static void
print_text(struct out *o, const struct cbm_pool *pool, const cbm_stats *st,
	   bool per_cache)
{
	say(o, "cbm pool '%s'\n", pool->name);
	for (size_t i = 0; i < NFIELDS; i++)
		say(o, "  %-16s %20" PRIu64 "  %s\n", FIELDS[i].name,
		    value_of(st, &FIELDS[i]), FIELDS[i].help);
	if (!per_cache)
		return;
	say(o, "  %-16s", "cache fill");
	for (unsigned i = 0; i < pool->caches.ncaches; i++)
		say(o, " %zu", cbm_cache_count(cbm_cache_at(&pool->caches, i)));
	say(o, "\n");
}

static void
print_json(struct out *o, const struct cbm_pool *pool, const cbm_stats *st,
	   bool per_cache)
{
	char name[4 * CBM_NAME_MAX];

	quoted(name, sizeof(name), pool->name);
	say(o, "{\"name\":\"%s\"", name);
	for (size_t i = 0; i < NFIELDS; i++)
		say(o, ",\"%s\":%" PRIu64, FIELDS[i].name,
		    value_of(st, &FIELDS[i]));
	if (!per_cache) {
		say(o, "}\n");
		return;
	}
	/* Per cache: one per CPU in rseq mode, two in portable mode. */
	say(o, ",\"cache_fill\":[");
	for (unsigned i = 0; i < pool->caches.ncaches; i++)
		say(o, "%s%zu", i ? "," : "",
		    cbm_cache_count(cbm_cache_at(&pool->caches, i)));
	say(o, "]}\n");
}

static void
print_prometheus(struct out *o, const struct cbm_pool *pool,
		 const cbm_stats *st, bool per_cache, bool help)
{
	char name[4 * CBM_NAME_MAX];

	quoted(name, sizeof(name), pool->name);
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &FIELDS[i];
		const char *suffix = f->kind == COUNTER ? "_total" : "";

		if (help)
			say(o, "# HELP cbm_%s%s %s\n", f->name, suffix,
			    f->help);
		say(o, "# TYPE cbm_%s%s %s\n", f->name, suffix,
		    f->kind == COUNTER ? "counter" : "gauge");
		say(o, "cbm_%s%s{pool=\"%s\"} %" PRIu64 "\n", f->name, suffix,
		    name, value_of(st, f));
	}
	if (!per_cache)
		return;
	if (help)
		say(o, "# HELP cbm_cache_fill buffers in each per-CPU cache\n");
	say(o, "# TYPE cbm_cache_fill gauge\n");
	for (unsigned i = 0; i < pool->caches.ncaches; i++)
		say(o, "cbm_cache_fill{pool=\"%s\",cache=\"%u\"} %zu\n", name,
		    i, cbm_cache_count(cbm_cache_at(&pool->caches, i)));
}

void
cbm_pool_stats_print(const cbm_pool *pool,
		     void (*write_cb)(void *cbopaque, const char *text),
		     void *cbopaque, const char *opts)
{
	struct out o = {write_cb ? write_cb : to_stderr, cbopaque};
	char format = 't';
	bool per_cache = true, help = true;
	cbm_stats st;

	if (pool == NULL) {
		cbm_report(NULL, CBM_ERR_BAD_ARG, NULL,
			   "cbm_pool_stats_print: NULL pool");
		return;
	}
	for (const char *c = opts ? opts : ""; *c != '\0'; c++) {
		if (*c == 'c') {
			per_cache = false;
			continue;
		}
		if (*c == 'h') {
			help = false;
			continue;
		}
		if (*c != 'J' && *c != 'P') {
			cbm_report(pool, CBM_ERR_BAD_ARG, NULL,
				   "cbm_pool_stats_print: unknown option '%c' "
				   "(J: JSON, P: Prometheus, c: no per-cache "
				   "fill, h: no Prometheus HELP lines)",
				   *c);
			return;
		}
		format = *c;
	}
	cbm_pool_stats(pool, &st);
	if (format == 'J')
		print_json(&o, pool, &st, per_cache);
	else if (format == 'P')
		print_prometheus(&o, pool, &st, per_cache, help);
	else
		print_text(&o, pool, &st, per_cache);
}
