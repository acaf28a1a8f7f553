/* SPDX-License-Identifier: MIT */
/*
 * Where the example servers' I/O buffers come from, shared by every
 * worker: a cbm heap (buffers of every size, each of the smallest class
 * that holds it); one cbm pool (buffers of one size: --pool, and the file
 * server, whose buffers the kernel has registered); or, with --malloc,
 * malloc and free, so that they can be compared under the same load. Every
 * way the buffers are counted, and at exit bufs_report says whether every
 * one came back.
 *
 * A server takes a first buffer of b->size bytes (bufs_get) and, where a
 * request outgrows it, moves to a larger one (bufs_move): the heap and
 * malloc give any size up to b->max_size, a pool only its own.
 */
#ifndef EXAMPLES_BUFS_H
#define EXAMPLES_BUFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cbm.h>
#include <urcu/urcu-memb.h>

enum bufs_source {
	BUFS_HEAP,
	BUFS_POOL,
	BUFS_MALLOC,
};

struct bufs {
	cbm_heap *heap;	 /* BUFS_HEAP */
	cbm_pool *pool;	 /* BUFS_POOL; neither: malloc mode */
	size_t size;	 /* usable bytes of a first buffer (bufs_get) */
	size_t max_size; /* the most bufs_get_size gives: size for a pool */
	size_t capacity; /* a pool's buffers; a heap's ceiling in bytes */
	const char *name;
};

struct bufs_config {
	const char *name;
	enum bufs_source source;
	size_t size;	 /* a first buffer's bytes */
	size_t max_size; /* heap, malloc: the largest buffer (>= size) */
	/* A pool: capacity buffers, elastic up to max_capacity when that is
	 * not 0. A heap: at most max(capacity, max_capacity) x size bytes of
	 * buffers from the OS, raised to the largest class when below it. */
	size_t capacity, max_capacity;
	size_t align; /* a pool's alignment; 0: the pool's default */
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

/* Make the heap or the pool cfg asks for, or set up the malloc mode (its
 * counters are the process's: one malloc-mode bufs at a time). Returns 0
 * or a negative errno. Before any other call. */
int bufs_create(struct bufs *b, const struct bufs_config *cfg);

/* A pool of capacity buffers of size bytes (elastic up to max_capacity
 * when that is not 0), or the malloc mode with buffers of size bytes. */
int bufs_init(struct bufs *b, const char *name, size_t size, size_t capacity,
	      size_t max_capacity, bool use_malloc);

void *bufs_malloc(struct bufs *b, size_t size);
void bufs_mfree(struct bufs *b, void *p);

/*
 * A first buffer, of b->size bytes, or NULL when the heap or pool has none
 * to give (with malloc: when memory is short). Any thread; O(1), from the
 * calling CPU's cache.
 */
static inline void *
bufs_get(struct bufs *b)
{
	if (b->heap)
		return cbm_heap_alloc(b->heap, b->size);
	return b->pool ? cbm_alloc(b->pool) : bufs_malloc(b, b->size);
}

/*
 * A buffer of at least size bytes; *cap (when not NULL) is set to what it
 * holds: its class's size in a heap (cbm_heap_usable_size), b->size in a
 * pool, size with malloc. NULL with errno EMSGSIZE above b->max_size, or
 * ENOMEM when there is no buffer to give. Any thread.
 */
void *bufs_get_size(struct bufs *b, size_t size, size_t *cap);

/*
 * Move the first used bytes of p into a buffer of at least size bytes
 * (bufs_get_size; used <= size) and give p back. Returns the new buffer,
 * or NULL (errno as bufs_get_size's) with p untouched and still the
 * caller's. Any thread.
 */
void *bufs_move(struct bufs *b, void *p, size_t used, size_t size, size_t *cap);

/*
 * A request buffer p (*cap bytes, used of them read) that filled up: move
 * it (bufs_move) to one that holds need bytes when the request's length
 * is known (need > *cap), else to twice its size while the head is still
 * coming in; never past limit. NULL as bufs_move.
 */
void *bufs_grow(struct bufs *b, void *p, size_t used, size_t need, size_t limit,
		size_t *cap);

/* Give back a buffer from bufs_get, bufs_get_size or bufs_move. NULL is a
 * no-op. Any thread. */
static inline void
bufs_put(struct bufs *b, void *p)
{
	if (b->heap)
		cbm_heap_free(b->heap, p);
	else if (b->pool)
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

/* Destroy the heap or the pool. */
void bufs_fini(struct bufs *b);

#endif /* EXAMPLES_BUFS_H */
