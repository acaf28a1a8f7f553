/* SPDX-License-Identifier: MIT */
/*
 * The pool object, private to the library: each layer's part, composed.
 * Only pool.c creates and destroys it; the tier files (layers 1 to 4,
 * tools/check_layers.py) never see it, only the part they own.
 */
#ifndef CBM_POOL_H
#define CBM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbm.h"
#include "cbm/inline.h"

#include "arena.h"
#include "atomics.h"
#include "compiler.h"
#include "debug.h"
#include "global.h"
#include "percpu.h"
#include "reclaim.h"
#include "regions.h"
#include "release.h"
#include "trim.h"

#define CBM_NAME_MAX 64

struct cbm_pool {
	/* Read by every alloc and free: one line. base, stride_inv and
	 * stride_shift are blocks' (below), copied here so that the pointer
	 * check reads no other line; all but capacity are read-only after
	 * create. capacity is the count of buffers that exist, which the
	 * frontier raises as an elastic pool grows (frontier.h): read
	 * relaxed, it is at least every index the reader was handed. */
	_Alignas(CBM_CACHELINE) char *base;
	uint64_t stride_inv;
	struct cbm_cache_map map; /* the caches (percpu.h) */
	cbm_atomic_u64 capacity;
	uint8_t stride_shift;
	uint8_t inline_key;    /* cbm/inline.h: its layout, if it may run */
	bool trust_bulk_frees; /* CBM_POOL_TRUST_BULK_FREES, and fast paths */
	uint8_t unused;
	uint32_t fast; /* CBM_FAST_*: the fast path */

	/* Read-only after create, for slow paths. */
	_Alignas(CBM_CACHELINE) struct cbm_blocks blocks; /* arena.h */
	cbm_atomic_u32 *links; /* freelist/retired links, per buffer */
	unsigned flags;	       /* CBM_POOL_* */

	/* The layers' own parts. */
	struct cbm_global global;	 /* freelist + depot (global.h) */
	struct cbm_caches caches;	 /* percpu.h */
	struct cbm_debug debug;		 /* debug.h */
	struct cbm_pool_reclaim reclaim; /* reclaim.h */
	struct cbm_trim trim;		 /* trim.h */
	struct cbm_release release;	 /* release.h */
	/* The application's region callbacks, if any (regions.h). */
	struct cbm_region_hooks region_hooks;

	/* Counters of rare paths, shared by every thread. */
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 uncached_allocs;
	cbm_atomic_u64 uncached_frees;
	cbm_atomic_u64 alloc_failures;
	cbm_atomic_u64 steals;
	cbm_atomic_u64 trims;

	/* Cold. */
	size_t arena_bytes; /* reserved * stride: the reservation */
	size_t reserved;    /* buffers the reservations hold (pool.c) */
	size_t block_size;  /* usable bytes per buffer */
	size_t fixed_bytes; /* bookkeeping that does not grow: the pool, the
			       caches */
	struct cbm_arena arena;
	/* cbm_pool_place's ceiling hook, or NULL. */
	bool (*at_ceiling)(void *arg, const cbm_pool *pool, unsigned attempt);
	void *ceiling_arg;
	char name[CBM_NAME_MAX];
};

/*
 * The fast table (percpu.h) sits CBM_POOL_FAST_AT bytes into the pool's
 * allocation, past the struct: at an offset that does not move when the
 * struct grows, so that the assembly fast paths and cbm/inline.h index it
 * from the pool pointer itself, one load (CBM_FAST_BEFORE +
 * cbm_fast_table_bound(ncpus) entries; map.fast is CPU 0's).
 */
#define CBM_POOL_FAST_AT 4096

_Static_assert(sizeof(struct cbm_pool) <= CBM_POOL_FAST_AT,
	       "the pool ends before its fast table");

static inline struct cbm_cpu_cache **
cbm_pool_fast_table(struct cbm_pool *pool)
{
	return (struct cbm_cpu_cache **)(void *)((char *)pool +
						 CBM_POOL_FAST_AT);
}

_Static_assert(offsetof(struct cbm_pool, blocks) == CBM_CACHELINE,
	       "what every alloc and free reads fits the first line");

/*
 * The fast word: one load and one compare tell a fast path it may run
 * without any bookkeeping. The inline paths run only when it equals
 * CBM_FAST_RSEQ or CBM_FAST_PORTABLE; a debug pool, or a pool created while
 * a memory checker watches the process (watch.h), sets a bit that sends
 * every call to the general path.
 */
#define CBM_FAST_PORTABLE 1u
#define CBM_FAST_RSEQ 2u
#define CBM_FAST_BOOKKEEPING 4u

static inline uint32_t
cbm_fast_word(unsigned mode, unsigned flags)
{
	uint32_t fast =
		mode == CBM_MODE_RSEQ ? CBM_FAST_RSEQ : CBM_FAST_PORTABLE;

	if ((flags & CBM_POOL_DEBUG) || cbm_watch_start() != 0)
		fast |= CBM_FAST_BOOKKEEPING;
	return fast;
}

/*
 * A pool whose creator chose where its arena goes: a size-class heap
 * (heap.c) puts each class at a slot of one reservation, so that a
 * pointer's class is a shift. at (page aligned, reserved by the caller,
 * bytes long) receives the arena; the pool's memory is charged to budget
 * (budget.h; NULL for none). The config must be elastic with capacity 0
 * and without region callbacks (-EINVAL otherwise: a budget is charged by
 * growth, and hooks and budgets are one or the other), and the arena for
 * its ceiling must fit bytes (-EOVERFLOW). Otherwise as cbm_pool_create;
 * destroy leaves the slot reserved, empty.
 */
struct cbm_pool_place {
	void *at;
	size_t bytes;
	struct cbm_budget *budget;
	/* NULL, or called when an allocation (single or bulk) finds the
	 * pool dry, with no cache held and no move in flight, attempt 0
	 * first: true when it may have made room (other pools gave memory
	 * back to the budget), and the allocation then looks again, and
	 * asks again (attempt + 1) if that found nothing. */
	bool (*at_ceiling)(void *arg, const cbm_pool *pool, unsigned attempt);
	void *ceiling_arg;
};
int cbm_pool_create_placed(const cbm_pool_config *cfg,
			   const struct cbm_pool_place *place, cbm_pool **out);

/* The stride (bytes from one buffer to the next) cbm_pool_create would
 * give cfg, CBM_DEBUG in the environment included: what a heap sizes its
 * slots by. Returns 0 and sets *stride, or what cbm_pool_create would
 * return for cfg's errors. Makes nothing. */
int cbm_pool_config_stride(const cbm_pool_config *cfg, size_t *stride);

/* cbm_alloc and cbm_free under names that bind inside the library, for
 * its own callers (heap.c): a direct call or jump, not one through the
 * GOT that an exported, interposable name needs. Aliases of the same
 * code (fastpath_x86_64.c, or alloc.c in portable builds). */
void *cbm_alloc_local(cbm_pool *pool);
void cbm_free_local(cbm_pool *pool, void *buf);

/* Buffers that exist now (frontier.h). */
static inline uint64_t
cbm_pool_capacity(const struct cbm_pool *pool)
{
	return cbm_load_relaxed_u64(&pool->capacity);
}

static inline void *
cbm_block_ptr(const struct cbm_pool *pool, uint32_t idx)
{
	return cbm_blocks_ptr(&pool->blocks, idx);
}

#endif /* CBM_POOL_H */
