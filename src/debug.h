/* SPDX-License-Identifier: MIT */
/*
 * Debug pools' buffer states and guard zones, and the sanitizer hooks that
 * every build's pools share.
 *
 * A debug pool keeps a state per buffer (pooled, held, retired, dropped),
 * changed with a compare-and-swap from the state each transition expects,
 * and a guard zone after each buffer, filled when it is handed out and
 * checked when it comes back. A transition that finds another state is a
 * double free (or a broken pool), reported, and the buffer is kept out.
 */
#ifndef CBM_DEBUG_H
#define CBM_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "atomics.h"
#include "compiler.h"

#ifdef CBM_ASAN
#include <sanitizer/asan_interface.h>
#endif

struct cbm_pool;

/* Where a debug pool's buffer is. */
enum cbm_block_state {
	CBM_BLOCK_POOLED = 0, /* freelist, depot or a CPU cache */
	CBM_BLOCK_HELD,	      /* handed to the application */
	CBM_BLOCK_RETIRED,    /* waiting for a grace period */
	CBM_BLOCK_DROPPED,    /* found damaged; never handed out again */
};

/* A debug pool's part: one state per buffer. */
struct cbm_debug {
	cbm_atomic_u8 *state; /* NULL unless the pool is a debug pool */
	const struct cbm_blocks *blocks;
	size_t block_size;	      /* the guard zone follows it */
	const struct cbm_pool *owner; /* named in reports */
};

/* Buffer idx is being handed out; it must be POOLED. Arms its guard zone.
 * Otherwise reports CBM_ERR_CORRUPT and returns false: the caller must not
 * hand it out (someone else holds it). */
bool cbm_debug_on_alloc(const struct cbm_debug *d, uint32_t idx);

/* The application gives buffer idx back (to POOLED, or to RETIRED). false,
 * after reporting, if it was not HELD or its guard zone was written; it
 * must then not be put in the pool. */
bool cbm_debug_on_release(const struct cbm_debug *d, uint32_t idx,
			  enum cbm_block_state to, const char *op);

/* The reclamation thread returns retired buffer idx to the pool; it must
 * be RETIRED. Otherwise reports CBM_ERR_CORRUPT and returns false: the
 * caller must leave it out. */
bool cbm_debug_on_reclaim(const struct cbm_debug *d, uint32_t idx);

/*
 * AddressSanitizer: a pooled buffer is poisoned, so that an application
 * that touches a buffer after giving it back is caught at the access.
 *
 * ASan keeps one shadow byte per 8-byte granule, and a shadow byte can only
 * say "the first k bytes are addressable". When the stride is not a
 * multiple of 8, two neighbouring buffers share a granule, whose shadow
 * byte no poisoning of one buffer can set without reading and rewriting
 * the other's part: two threads (or a thread and the reclamation thread)
 * doing so at once lose one update, and a held buffer is left poisoned.
 * And no value of that byte says "the first buffer's bytes are poisoned,
 * the second's are not". So only the granules wholly inside a buffer are
 * ever poisoned or unpoisoned; a granule shared with a neighbour (or with
 * the arena's tail) is never written and stays addressable, as the
 * frontier leaves each buffer's stride when it first hands it out
 * (cbm_san_clear). No shadow byte then belongs to two
 * buffers, and a buffer whose own granules are unpoisoned is addressable
 * from end to end. The price: up to 7 bytes at each end of a pooled
 * buffer go unwatched, and only when the stride is not a multiple of 8.
 * Rounding the stride up to 8 in ASan builds would watch them, but ASan
 * builds would then lay buffers out as no shipped build does, and stop
 * testing the packed layout (align 1) and the odd-stride pointer check.
 */
#ifdef CBM_ASAN
/* ASan's shadow scale is 3 on every target gcc supports. */
#define CBM_SAN_GRANULE ((uintptr_t)8)

/* The granules wholly inside buffer buf: *len bytes from the return. */
static inline char *
cbm_san_own_granules(const struct cbm_blocks *blocks, void *buf, size_t *len)
{
	uintptr_t lo =
		((uintptr_t)buf + CBM_SAN_GRANULE - 1) & ~(CBM_SAN_GRANULE - 1);
	uintptr_t hi =
		((uintptr_t)buf + blocks->stride) & ~(CBM_SAN_GRANULE - 1);

	*len = hi > lo ? (size_t)(hi - lo) : 0;
	return (char *)lo;
}
#endif

static inline void
cbm_san_enter_pool(const struct cbm_blocks *blocks, void *buf)
{
#ifdef CBM_ASAN
	size_t len;
	char *own = cbm_san_own_granules(blocks, buf, &len);

	ASAN_POISON_MEMORY_REGION(own, len);
#else
	(void)blocks;
	(void)buf;
#endif
}

static inline void
cbm_san_leave_pool(const struct cbm_blocks *blocks, void *buf)
{
#ifdef CBM_ASAN
	size_t len;
	char *own = cbm_san_own_granules(blocks, buf, &len);

	ASAN_UNPOISON_MEMORY_REGION(own, len);
#else
	(void)blocks;
	(void)buf;
#endif
}

/* Bytes [lo, lo + len) of the arena addressable: each buffer's whole
 * stride as it first comes out of the frontier (the granules buffers share
 * must start so, and a reservation may inherit shadow that someone left
 * poisoned there), and what the pool used before it is unmapped, by
 * destroy or by a create that failed, so as to leave no poisoned shadow
 * for whatever is mapped there next (ASan does not clear it on munmap).
 * Only what was used: the shadow of a whole reservation for a ceiling
 * would be written out page by page. */
static inline void
cbm_san_clear(void *lo, size_t len)
{
#ifdef CBM_ASAN
	if (lo != NULL && len > 0)
		ASAN_UNPOISON_MEMORY_REGION(lo, len);
#else
	(void)lo;
	(void)len;
#endif
}

#endif /* CBM_DEBUG_H */
