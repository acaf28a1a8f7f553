/* SPDX-License-Identifier: MIT */
/*
 * Where the example servers' I/O buffers come from: one cbm pool shared by
 * every worker, or, with --malloc, malloc and free, so that the two can be
 * compared under the same load. Either way the buffers are counted, and at
 * exit bufs_report says whether every one came back.
 */
#ifndef EXAMPLES_BUFS_H
#define EXAMPLES_BUFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cbm.h>
#include <urcu/urcu-memb.h>

struct bufs {
	cbm_pool *pool; /* NULL: malloc mode */
	size_t size;	/* usable bytes per buffer */
	size_t capacity;
};

/*
 * The first bytes of a buffer that may be retired (bufs_retire): what the
 * malloc mode needs to free it after a grace period with call_rcu. The pool
 * needs nothing inside the buffer.
 */
struct bufs_rcu {
	struct rcu_head head;
	struct bufs *owner;
};

/* Make a pool of capacity buffers of size bytes (elastic up to
 * max_capacity when that is not 0), aligned to align (0: the pool's
 * default; with malloc, malloc's), or set up the malloc mode (its counters
 * are the process's: one malloc-mode bufs at a time). Returns 0 or a
 * negative errno. Before any other call. */
int bufs_init_aligned(struct bufs *b, const char *name, size_t size,
		      size_t capacity, size_t max_capacity, size_t align,
		      bool use_malloc);
int bufs_init(struct bufs *b, const char *name, size_t size, size_t capacity,
	      size_t max_capacity, bool use_malloc);

void *bufs_malloc(struct bufs *b);
void bufs_mfree(struct bufs *b, void *p);

/*
 * A buffer of b->size bytes, or NULL when the pool is empty (with malloc:
 * when memory is short). Any thread; O(1), from the calling CPU's cache.
 */
static inline void *
bufs_get(struct bufs *b)
{
	return b->pool ? cbm_alloc(b->pool) : bufs_malloc(b);
}

/* Give back a buffer from bufs_get. NULL is a no-op. Any thread. */
static inline void
bufs_put(struct bufs *b, void *p)
{
	if (b->pool)
		cbm_free(b->pool, p);
	else
		bufs_mfree(b, p);
}

/*
 * Give back a buffer that readers inside cbm_read_lock sections may still
 * hold; it is reused only after a grace period. r is the buffer's start.
 * Any thread that has been inside a cbm_read_lock section (with malloc,
 * call_rcu wants a registered RCU thread). Never blocks.
 */
void bufs_retire(struct bufs *b, struct bufs_rcu *r);

/* Wait until everything retired so far is back. Not inside a read-side
 * section. */
void bufs_barrier(struct bufs *b);

/*
 * Print the statistics, and a last line "buffers: whole (in_use 0)" or
 * "buffers: LOST ...". Call when no other thread uses b and after
 * bufs_barrier. Returns true when every buffer is back.
 */
bool bufs_report(struct bufs *b, FILE *out);

/* Destroy the pool. */
void bufs_fini(struct bufs *b);

#endif /* EXAMPLES_BUFS_H */
