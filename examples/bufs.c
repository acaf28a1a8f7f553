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

int
bufs_init(struct bufs *b, const char *name, size_t size, size_t capacity,
	  size_t max_capacity, bool use_malloc)
{
	return bufs_init_aligned(b, name, size, capacity, max_capacity, 0,
				 use_malloc);
}

int
bufs_init_aligned(struct bufs *b, const char *name, size_t size,
		  size_t capacity, size_t max_capacity, size_t align,
		  bool use_malloc)
{
	cbm_pool_config cfg = {
		.block_size = size,
		.capacity = capacity,
		.max_capacity = max_capacity,
		.align = align,
		.name = name,
	};
	int rc;

	*b = (struct bufs){.size = size, .capacity = capacity};
	if (use_malloc)
		return 0;
	rc = cbm_pool_create(&cfg, &b->pool);
	if (rc == 0)
		b->size = cbm_block_size(b->pool);
	return rc;
}

void *
bufs_malloc(struct bufs *b)
{
	struct counts *c = counts();
	void *p = malloc(b->size);

	bump(p ? &c->allocs : &c->failures);
	return p;
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
	if (b->pool)
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

bool
bufs_report(struct bufs *b, FILE *out)
{
	bool whole = b->pool ? report_pool(b, out) : report_malloc(out);

	fflush(out);
	return whole;
}

void
bufs_fini(struct bufs *b)
{
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
