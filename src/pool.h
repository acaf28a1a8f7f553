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
	unsigned ncpus;
	struct cbm_cpu_cache *cpus; /* ncpus caches */
	cbm_atomic_u32 *links;	    /* freelist/retired links, per buffer */

	/* The global tier; each stack head on its own line (freelist.h). */
	struct cbm_istack freelist;
	struct cbm_depot depot;

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

/* The CPU cache for the calling thread (a hint, cpu.h). */
static inline struct cbm_cpu_cache *
cbm_cache_current(const struct cbm_pool *pool)
{
	unsigned cpu = cbm_current_cpu();

	if (cbm_unlikely(cpu >= pool->ncpus))
		cpu %= pool->ncpus;
	return &pool->cpus[cpu];
}

#endif /* CBM_POOL_H */
