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

#define CBM_NAME_MAX 64

struct cbm_pool {
	/* Read-only after create, read by every call: one line, shared. */
	_Alignas(CBM_CACHELINE) char *base; /* arena start */
	size_t stride;			    /* bytes from one buffer to next */
	uint64_t stride_inv;		    /* inverse of stride's odd part */
	unsigned stride_shift;		    /* trailing zero bits of stride */
	uint32_t capacity;
	uint32_t mag_size;
	unsigned flags;
	unsigned ncaches;	    /* CBM_CACHES_PER_CPU per CPU */
	struct cbm_cpu_cache *cpus; /* ncaches caches */
	cbm_atomic_u32 *links;	    /* freelist/retired links, per buffer */

	/* The global tier; each stack head on its own line (freelist.h). */
	struct cbm_istack freelist;
	struct cbm_depot depot;

	/* Retired buffers and the reclamation thread's part (reclaim.h). */
	struct cbm_pool_reclaim reclaim;

	/* Counters of rare paths, shared by every thread. */
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 uncached_allocs;
	cbm_atomic_u64 uncached_frees;
	cbm_atomic_u64 alloc_failures;
	cbm_atomic_u64 busy_fallbacks;
	cbm_atomic_u64 steals;
	cbm_atomic_u64 trims;

	/* Cold, or debug pools only. */
	cbm_atomic_u8 *state; /* debug pools: enum cbm_block_state */
	size_t arena_bytes;   /* capacity * stride */
	size_t block_size;    /* usable bytes per buffer */
	struct cbm_arena arena;
	char name[CBM_NAME_MAX];
};

_Static_assert(offsetof(struct cbm_pool, freelist) == CBM_CACHELINE,
	       "the read-only fields fit the first line");

static inline void *
cbm_block_ptr(const struct cbm_pool *pool, uint32_t idx)
{
	return pool->base + (size_t)idx * pool->stride;
}

/*
 * Lock a cache of the calling thread's CPU (a hint, cpu.h): the CPU's own,
 * or when a thread preempted inside it holds that one, the CPU's spare
 * (percpu.h, P3). NULL when both are held: the caller goes global.
 */
static inline struct cbm_cpu_cache *
cbm_cache_lock_current(const struct cbm_pool *pool)
{
	unsigned slot = cbm_current_cpu() * CBM_CACHES_PER_CPU;
	struct cbm_cpu_cache *c;

	if (cbm_unlikely(slot >= pool->ncaches))
		slot %= pool->ncaches;
	c = &pool->cpus[slot];
	if (cbm_likely(cbm_cache_trylock(c)))
		return c;
	if (cbm_cache_trylock(c + 1))
		return c + 1;
	return NULL;
}

#endif /* CBM_POOL_H */
