/*
 * The pool object, private to the library. Every layer sees it; only
 * pool.c creates and destroys it.
 */
#ifndef CBM_POOL_H
#define CBM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbm.h"

#include "arena.h"
#include "atomics.h"
#include "compiler.h"
#include "depot.h"
#include "freelist.h"
#include "percpu.h"
#include "reclaim.h"
#include "transit.h"

#define CBM_NAME_MAX 64

struct cbm_pool {
	/* Read-only after create, read by every alloc and free: one line. */
	_Alignas(CBM_CACHELINE) char *base; /* arena start */
	uint64_t stride_inv;		    /* inverse of stride's odd part */
	struct cbm_cache_map map;	    /* the caches (percpu.h) */
	uint64_t capacity;		    /* 64 bits: compared with 64 */
	unsigned stride_shift;		    /* trailing zero bits of stride */
	uint32_t fast;			    /* CBM_FAST_*: the fast path */

	/* Read-only after create, for slow paths. */
	_Alignas(CBM_CACHELINE) size_t stride; /* bytes between buffers */
	cbm_atomic_u32 *links; /* freelist/retired links, per buffer */
	uint32_t mag_size;
	unsigned flags;		 /* CBM_POOL_* */
	unsigned mode;		 /* enum cbm_percpu_mode (rseq.h) */
	unsigned ncaches;	 /* caches_per_cpu x map.ncpus */
	unsigned caches_per_cpu; /* portable mode has a spare per CPU */
	size_t cache_bytes;	 /* from one cache to the next */

	/* The global tier; each stack head on its own line (freelist.h). */
	struct cbm_istack freelist;
	struct cbm_depot depot;
	/* Moves between places in flight, and how many ended (transit.h). */
	struct cbm_transit transit;

	/* Retired buffers and the reclamation thread's part (reclaim.h). */
	struct cbm_pool_reclaim reclaim;

	/* Counters of rare paths, shared by every thread. */
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 uncached_allocs;
	cbm_atomic_u64 uncached_frees;
	cbm_atomic_u64 alloc_failures;
	cbm_atomic_u64 busy_fallbacks;
	cbm_atomic_u64 steals;
	cbm_atomic_u64 trims;
	cbm_atomic_u64 rseq_aborts;

	/* Cold, or debug pools only. */
	cbm_atomic_u8 *state; /* debug pools: enum cbm_block_state */
	size_t arena_bytes;   /* capacity * stride */
	size_t block_size;    /* usable bytes per buffer */
	struct cbm_arena arena;
	char name[CBM_NAME_MAX];
};

_Static_assert(offsetof(struct cbm_pool, stride) == CBM_CACHELINE,
	       "what every alloc and free reads fits the first line");

/*
 * The fast word: one load and one compare tell a fast path it may run
 * without any bookkeeping. The inline paths run only when it equals
 * CBM_FAST_RSEQ or CBM_FAST_PORTABLE; a debug pool or a sanitizer build
 * sets a bit that sends every call to the general path.
 */
#define CBM_FAST_PORTABLE 1u
#define CBM_FAST_RSEQ 2u
#define CBM_FAST_BOOKKEEPING 4u

static inline uint32_t
cbm_fast_word(unsigned mode, unsigned flags)
{
	uint32_t fast =
		mode == CBM_MODE_RSEQ ? CBM_FAST_RSEQ : CBM_FAST_PORTABLE;

	if (flags & CBM_POOL_DEBUG)
		fast |= CBM_FAST_BOOKKEEPING;
#ifdef CBM_ASAN
	fast |= CBM_FAST_BOOKKEEPING;
#endif
	return fast;
}

static inline void *
cbm_block_ptr(const struct cbm_pool *pool, uint32_t idx)
{
	return pool->base + (size_t)idx * pool->stride;
}

static inline struct cbm_cpu_cache *
cbm_cache_at(const struct cbm_pool *pool, unsigned i)
{
	return (struct cbm_cpu_cache *)(void *)(pool->map.caches +
						(size_t)i * pool->cache_bytes);
}

/*
 * Portable mode: take a cache of the calling thread's CPU (a hint, cpu.h):
 * the CPU's own, or when a thread preempted inside holds that one, the
 * CPU's spare (percpu.h, P3). NULL when both are held: the caller goes
 * global. *w is the word as taken.
 */
static inline struct cbm_cpu_cache *
cbm_cache_lock_current(const struct cbm_pool *pool, uint64_t *w)
{
	unsigned cpu = cbm_current_cpu();
	struct cbm_cpu_cache *c;

	if (cbm_unlikely(cpu >= pool->map.ncpus))
		cpu %= pool->map.ncpus;
	c = (struct cbm_cpu_cache *)(void *)(pool->map.caches +
					     cpu * pool->map.cpu_bytes);
	if (cbm_likely(cbm_cache_trylock(c, w)))
		return c;
	c = (struct cbm_cpu_cache *)(void *)((char *)c + pool->cache_bytes);
	if (cbm_cache_trylock(c, w))
		return c;
	return NULL;
}

#endif /* CBM_POOL_H */
