/*
 * Misuse detection: pointer validation, debug-pool buffer states and guard
 * zones, sanitizer annotations, and the error handler.
 *
 * Pointer validation costs a subtraction, a multiply, a rotate and a
 * compare, and no divide. The arena is contiguous (arena.h) and its stride
 * is d = odd x 2^k. With off = ptr - base (wrapping below base) and
 * q = ror(off x inverse(odd) mod 2^64, k): ptr is buffer q exactly when
 * q < capacity. If 2^k does not divide off, the product's low k bits are
 * not all zero (multiplying by an odd number keeps the lowest set bit), the
 * rotation moves them to the top, and q >= 2^(64-k) > capacity. If it does,
 * q = (off >> k) x inverse(odd) mod 2^(64-k), which is (off >> k) / odd when
 * odd divides it, and otherwise exceeds (2^(64-k) - 1) / odd, because the
 * multiples of odd below 2^(64-k) are exactly the images of 0 .. (2^(64-k)
 * - 1) / odd. Both bounds are >= capacity because capacity x d < 2^64
 * (pool.c checks it). So one compare rejects foreign and interior pointers
 * alike (the exact division test of Granlund and Montgomery), and only the
 * cold path tells them apart.
 */
#ifndef CBM_CHECK_H
#define CBM_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "freelist.h"
#include "pool.h"

#ifdef CBM_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Where a debug pool's buffer is. */
enum cbm_block_state {
	CBM_BLOCK_POOLED = 0, /* freelist, depot or a CPU cache */
	CBM_BLOCK_HELD,	      /* handed to the application */
	CBM_BLOCK_RETIRED,    /* waiting for a grace period */
	CBM_BLOCK_DROPPED,    /* found damaged; never handed out again */
};

/* Report a programming error to the error handler (cbm_set_error_handler).
 * Never called with a cache lock held (percpu.h, P4). */
CBM_COLD void cbm_report(const struct cbm_pool *pool, int err, const void *ptr,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline uint64_t
cbm_ror64(uint64_t x, unsigned k)
{
	return (x >> k) | (x << ((64 - k) & 63));
}

/* The buffer number ptr would be; >= capacity when it is not one. */
static inline uint64_t
cbm_block_quotient(const struct cbm_pool *pool, const void *buf)
{
	uintptr_t off = (uintptr_t)buf - (uintptr_t)pool->base;

	return cbm_ror64(off * pool->stride_inv, pool->stride_shift);
}

/* Index of a pointer the library itself handed out or holds. */
static inline uint32_t
cbm_block_index_trusted(const struct cbm_pool *pool, const void *buf)
{
	return (uint32_t)cbm_block_quotient(pool, buf);
}

static inline bool
cbm_block_valid(const struct cbm_pool *pool, const void *buf)
{
	return cbm_block_quotient(pool, buf) < pool->capacity;
}

CBM_COLD uint32_t cbm_block_reject(const struct cbm_pool *pool, const void *buf,
				   const char *op);

/* Index of a pointer from the application, or CBM_NIL after reporting
 * CBM_ERR_FOREIGN or CBM_ERR_MISALIGNED. op names the call. */
static inline uint32_t
cbm_block_index_checked(const struct cbm_pool *pool, const void *buf,
			const char *op)
{
	uint64_t idx = cbm_block_quotient(pool, buf);

	if (cbm_unlikely(idx >= pool->capacity))
		return cbm_block_reject(pool, buf, op);
	return (uint32_t)idx;
}

static inline bool
cbm_pool_is_debug(const struct cbm_pool *pool)
{
	return pool->flags & CBM_POOL_DEBUG;
}

/* Debug pools: buffer idx is being handed out; it must be POOLED. Arms its
 * guard zone. Otherwise reports CBM_ERR_CORRUPT and returns false: the
 * caller must not hand it out (someone else holds it). */
bool cbm_debug_on_alloc(const struct cbm_pool *pool, uint32_t idx);

/* Debug pools: the application gives buffer idx back (to POOLED, or to
 * RETIRED). false, after reporting, if it was not HELD or its guard zone
 * was written; it must then not be put in the pool. */
bool cbm_debug_on_release(const struct cbm_pool *pool, uint32_t idx,
			  enum cbm_block_state to, const char *op);

/* Debug pools: the reclamation thread returns retired buffer idx to the
 * pool; it must be RETIRED. Otherwise reports CBM_ERR_CORRUPT and returns
 * false: the caller must leave it out. */
bool cbm_debug_on_reclaim(const struct cbm_pool *pool, uint32_t idx);

/* Hold the error handler's lock across fork (fork.c). */
void cbm_report_fork_prepare(void);
void cbm_report_fork_parent(void);
void cbm_report_fork_child(void);

/* Install the fork handlers once per process (fork.c). */
void cbm_fork_handlers_install(void);

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
 * the arena's tail) is never written and stays addressable, as create
 * leaves the whole arena (pool.c). No shadow byte then belongs to two
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
cbm_san_own_granules(const struct cbm_pool *pool, void *buf, size_t *len)
{
	uintptr_t lo =
		((uintptr_t)buf + CBM_SAN_GRANULE - 1) & ~(CBM_SAN_GRANULE - 1);
	uintptr_t hi = ((uintptr_t)buf + pool->stride) & ~(CBM_SAN_GRANULE - 1);

	*len = hi > lo ? (size_t)(hi - lo) : 0;
	return (char *)lo;
}
#endif

static inline void
cbm_san_enter_pool(const struct cbm_pool *pool, void *buf)
{
#ifdef CBM_ASAN
	size_t len;
	char *own = cbm_san_own_granules(pool, buf, &len);

	ASAN_POISON_MEMORY_REGION(own, len);
#else
	(void)pool;
	(void)buf;
#endif
}

static inline void
cbm_san_leave_pool(const struct cbm_pool *pool, void *buf)
{
#ifdef CBM_ASAN
	size_t len;
	char *own = cbm_san_own_granules(pool, buf, &len);

	ASAN_UNPOISON_MEMORY_REGION(own, len);
#else
	(void)pool;
	(void)buf;
#endif
}

/* The whole arena addressable: at create before any buffer is poisoned
 * (the granules buffers share must start so, and a new mapping may inherit
 * shadow that someone left poisoned there), and before it is unmapped, by
 * destroy or by a create that failed, so as to leave no poisoned shadow
 * for whatever is mapped there next (ASan does not clear it on munmap). */
static inline void
cbm_san_clear_arena(const struct cbm_arena *arena)
{
#ifdef CBM_ASAN
	if (arena->map != NULL)
		ASAN_UNPOISON_MEMORY_REGION(arena->map, arena->map_bytes);
#else
	(void)arena;
#endif
}

#endif /* CBM_CHECK_H */
