/* SPDX-License-Identifier: MIT */
/*
 * The buffer source of the example servers (bufs.h): a cbm pool, or malloc.
 *
 * The malloc mode counts what it hands out so that the exit check means the
 * same in both modes. Its counters are per thread, so that counting adds no
 * shared cache line to the comparison: each thread's slot is written only
 * by that thread (relaxed load and store, no read-modify-write) and summed
 * by bufs_report once every worker has stopped; the slots live until
 * bufs_fini, so a thread may exit at any time.
 */
#include "bufs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct counts {
	_Atomic uint64_t allocs;
	_Atomic uint64_t frees;
	_Atomic uint64_t failures;
	struct counts *next;
};

static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct counts *all_counts;
static _Thread_local struct counts *my_counts;

static struct counts *
counts(void)
{
	struct counts *c = my_counts;

	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			perror("bufs: counters");
			abort();
		}
		pthread_mutex_lock(&counts_lock);
		c->next = all_counts;
		all_counts = c;
		pthread_mutex_unlock(&counts_lock);
		my_counts = c;
	}
	return c;
}

/* Only the owning thread writes its counters. */
static void
bump(_Atomic uint64_t *v)
{
	atomic_store_explicit(v,
			      atomic_load_explicit(v, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* The class that serves size, and the largest class: a heap's classes are
 * known before any is made (cbm_heap_stats). */
static int
heap_classes(const cbm_heap *heap, size_t size, size_t *first, size_t *last)
{
	int n = cbm_heap_stats(heap, NULL, 0);
	cbm_stats *st;

	if (n < 1)
		return n < 0 ? n : -EINVAL;
	st = calloc((size_t)n, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	n = cbm_heap_stats(heap, st, (size_t)n);
	*last = st[n - 1].block_size;
	*first = *last;
	for (int i = n - 1; i >= 0 && st[i].block_size >= size; i--)
		*first = st[i].block_size;
	free(st);
	return 0;
}

/*
 * The ceiling is counted in first buffers, as a pool's capacity is, but a
 * heap refuses one below its largest class: one request of the largest
 * size must fit. The classes are learnt from a heap without a ceiling (an
 * address reservation, nothing more), and the real one is made with it.
 */
static int
create_heap(struct bufs *b, const struct bufs_config *cfg)
{
	size_t most = cfg->max_capacity > cfg->capacity ? cfg->max_capacity
							: cfg->capacity;
	cbm_heap_config hc = {
		.max_size = cfg->max_size,
		.name = cfg->name,
	};
	size_t first, last;
	int rc = cbm_heap_create(&hc, &b->heap);

	if (rc)
		return rc;
	rc = heap_classes(b->heap, cfg->size, &first, &last);
	cbm_heap_destroy(b->heap);
	b->heap = NULL;
	if (rc)
		return rc;
	if (most > SIZE_MAX / first)
		return -EINVAL;
	hc.max_bytes = most * first < last ? last : most * first;
	rc = cbm_heap_create(&hc, &b->heap);
	if (rc)
		return rc;
	b->size = first;
	b->max_size = last;
	b->capacity = hc.max_bytes;
	return 0;
}

int
bufs_create(struct bufs *b, const struct bufs_config *cfg)
{
	cbm_pool_config pc = {
		.block_size = cfg->size,
		.capacity = cfg->capacity,
		.max_capacity = cfg->max_capacity,
		.align = cfg->align,
		.name = cfg->name,
	};
	int rc;

	*b = (struct bufs){.size = cfg->size,
			   .max_size = cfg->max_size,
			   .capacity = cfg->capacity,
			   .name = cfg->name};
	switch (cfg->source) {
	case BUFS_HEAP:
		return create_heap(b, cfg);
	case BUFS_POOL:
		rc = cbm_pool_create(&pc, &b->pool);
		if (rc == 0)
			b->size = b->max_size = cbm_block_size(b->pool);
		return rc;
	case BUFS_MALLOC:
		break;
	}
	if (b->max_size < b->size)
		b->max_size = b->size;
	return 0;
}

int
bufs_init(struct bufs *b, const char *name, size_t size, size_t capacity,
	  size_t max_capacity, bool use_malloc)
{
	struct bufs_config cfg = {
		.name = name,
		.source = use_malloc ? BUFS_MALLOC : BUFS_POOL,
		.size = size,
		.max_size = size,
		.capacity = capacity,
		.max_capacity = max_capacity,
	};

	return bufs_create(b, &cfg);
}

void *
bufs_malloc(struct bufs *b, size_t size)
{
	struct counts *c = counts();
	void *p = malloc(size);

	(void)b;
	bump(p ? &c->allocs : &c->failures);
	return p;
}

void *
bufs_get_size(struct bufs *b, size_t size, size_t *cap)
{
	void *p;

	if (size > b->max_size) {
		errno = EMSGSIZE;
		return NULL;
	}
	if (b->heap) {
		p = cbm_heap_alloc(b->heap, size);
		if (p && cap)
			*cap = cbm_heap_usable_size(b->heap, p);
		return p;
	}
	p = b->pool ? cbm_alloc(b->pool) : bufs_malloc(b, size);
	if (p == NULL)
		errno = ENOMEM;
	else if (cap)
		*cap = b->pool ? b->size : size;
	return p;
}

void *
bufs_move(struct bufs *b, void *p, size_t used, size_t size, size_t *cap)
{
	void *q = bufs_get_size(b, size, cap);

	if (q == NULL)
		return NULL;
	memcpy(q, p, used);
	bufs_put(b, p);
	return q;
}

void
bufs_mfree(struct bufs *b, void *p)
{
	(void)b;
	if (p == NULL)
		return;
	free(p);
	bump(&counts()->frees);
}

static void
retired_malloc(struct rcu_head *head)
{
	struct bufs_rcu *r = (struct bufs_rcu *)head;

	bufs_mfree(r->owner, r);
}

void
bufs_retire(struct bufs *b, struct bufs_rcu *r)
{
	if (b->heap) {
		cbm_heap_retire(b->heap, r);
		return;
	}
	if (b->pool) {
		cbm_retire(b->pool, r);
		return;
	}
	r->owner = b;
	urcu_memb_call_rcu(&r->head, retired_malloc);
}

void
bufs_barrier(struct bufs *b)
{
	if (b->heap)
		cbm_heap_barrier(b->heap);
	else if (b->pool)
		cbm_barrier(b->pool);
	else
		urcu_memb_barrier();
}

static bool
report_pool(struct bufs *b, FILE *out)
{
	cbm_stats st;
	int verify;

	cbm_pool_stats(b->pool, &st);
	fprintf(out,
		"pool: name=%s capacity=%zu block_size=%zu allocs=%llu "
		"frees=%llu alloc_failures=%llu\n"
		"pool: reclaimed=%llu grace_periods=%llu "
		"depot_exchanges=%llu global_pops=%llu global_pushes=%llu "
		"steals=%llu busy_fallbacks=%llu idle_drains=%llu\n"
		"pool: free=%zu cached=%zu retired=%zu in_use=%zu\n",
		cbm_pool_name(b->pool), st.capacity, st.block_size,
		(unsigned long long)st.allocs, (unsigned long long)st.frees,
		(unsigned long long)st.alloc_failures,
		(unsigned long long)st.reclaimed,
		(unsigned long long)st.grace_periods,
		(unsigned long long)st.depot_exchanges,
		(unsigned long long)st.global_pops,
		(unsigned long long)st.global_pushes,
		(unsigned long long)st.steals,
		(unsigned long long)st.busy_fallbacks,
		(unsigned long long)st.idle_drains, st.free, st.cached,
		st.retired, st.in_use);
	fflush(out);
	verify = cbm_pool_verify(b->pool);
	if (st.in_use == 0 && st.retired == 0 && verify == 0) {
		fprintf(out, "buffers: whole (in_use 0, verified)\n");
		return true;
	}
	fprintf(out, "buffers: LOST (in_use %zu, retired %zu, verify %d)\n",
		st.in_use, st.retired, verify);
	return false;
}

static bool
report_malloc(FILE *out)
{
	uint64_t allocs = 0, frees = 0, failures = 0;

	pthread_mutex_lock(&counts_lock);
	for (struct counts *c = all_counts; c; c = c->next) {
		allocs +=
			atomic_load_explicit(&c->allocs, memory_order_relaxed);
		frees += atomic_load_explicit(&c->frees, memory_order_relaxed);
		failures += atomic_load_explicit(&c->failures,
						 memory_order_relaxed);
	}
	pthread_mutex_unlock(&counts_lock);
	fprintf(out, "malloc: allocs=%llu frees=%llu alloc_failures=%llu\n",
		(unsigned long long)allocs, (unsigned long long)frees,
		(unsigned long long)failures);
	if (allocs == frees) {
		fprintf(out, "buffers: whole (in_use 0)\n");
		return true;
	}
	fprintf(out, "buffers: LOST (in_use %llu)\n",
		(unsigned long long)(allocs - frees));
	return false;
}

/* A class is made on its first allocation; one never used has nothing to
 * report (cbm_heap_stats: its capacity and allocations are 0). */
static bool
class_made(const cbm_stats *st)
{
	return st->capacity > 0 || st->allocs > 0;
}

/*
 * The heap's totals first, in the pool line's words (allocs=,
 * alloc_failures=: what the probe and load.sh read), then one line per
 * class used, in other words so that nothing reads them for the totals.
 */
static bool
report_heap(struct bufs *b, FILE *out)
{
	int n = cbm_heap_stats(b->heap, NULL, 0);
	cbm_stats *st = n > 0 ? calloc((size_t)n, sizeof(*st)) : NULL;
	cbm_stats t = {0};
	size_t used = 0;
	int bad = 0;

	if (st == NULL) {
		fprintf(out, "buffers: LOST (no statistics: %d)\n", n);
		return false;
	}
	n = cbm_heap_stats(b->heap, st, (size_t)n);
	for (int i = 0; i < n; i++) {
		if (!class_made(&st[i]))
			continue;
		used++;
		t.capacity += st[i].capacity;
		t.allocs += st[i].allocs;
		t.frees += st[i].frees;
		t.retires += st[i].retires;
		t.alloc_failures += st[i].alloc_failures;
		t.reclaimed += st[i].reclaimed;
		t.free += st[i].free;
		t.cached += st[i].cached;
		t.retired += st[i].retired;
		t.in_use += st[i].in_use;
		if (cbm_pool_verify(cbm_heap_pool(b->heap, st[i].block_size)))
			bad++;
	}
	fprintf(out,
		"heap: name=%s classes=%d used=%zu first=%zu largest=%zu "
		"bytes=%zu max_bytes=%zu\n"
		"heap: capacity=%zu allocs=%llu frees=%llu retires=%llu "
		"alloc_failures=%llu reclaimed=%llu\n"
		"heap: free=%zu cached=%zu retired=%zu in_use=%zu\n",
		b->name, n, used, b->size, b->max_size, cbm_heap_bytes(b->heap),
		b->capacity, t.capacity, (unsigned long long)t.allocs,
		(unsigned long long)t.frees, (unsigned long long)t.retires,
		(unsigned long long)t.alloc_failures,
		(unsigned long long)t.reclaimed, t.free, t.cached, t.retired,
		t.in_use);
	for (int i = 0; i < n; i++)
		if (class_made(&st[i]))
			fprintf(out,
				"heap: class of %zu bytes: %zu buffers, "
				"%llu handed out, %llu refused, %zu held\n",
				st[i].block_size, st[i].capacity,
				(unsigned long long)st[i].allocs,
				(unsigned long long)st[i].alloc_failures,
				st[i].in_use);
	free(st);
	if (t.in_use == 0 && t.retired == 0 && bad == 0) {
		fprintf(out, "buffers: whole (in_use 0, verified)\n");
		return true;
	}
	fprintf(out,
		"buffers: LOST (in_use %zu, retired %zu, classes that "
		"failed verify %d)\n",
		t.in_use, t.retired, bad);
	return false;
}

bool
bufs_report(struct bufs *b, FILE *out)
{
	bool whole = b->heap   ? report_heap(b, out)
		     : b->pool ? report_pool(b, out)
			       : report_malloc(out);

	fflush(out);
	return whole;
}

void
bufs_fini(struct bufs *b)
{
	if (b->heap) {
		cbm_heap_destroy(b->heap);
		b->heap = NULL;
		return;
	}
	if (b->pool) {
		cbm_pool_destroy(b->pool);
		b->pool = NULL;
		return;
	}
	pthread_mutex_lock(&counts_lock);
	while (all_counts) {
		struct counts *c = all_counts;

		all_counts = c->next;
		free(c);
	}
	my_counts = NULL;
	pthread_mutex_unlock(&counts_lock);
}

void *
bufs_grow(struct bufs *b, void *p, size_t used, size_t need, size_t limit,
	  size_t *cap)
{
	size_t want = need > *cap ? need : 2 * *cap;

	return bufs_move(b, p, used, want < limit ? want : limit, cap);
}
