/* SPDX-License-Identifier: MIT */
/*
 * The pool's check of pointers the application gives back: one
 * subtraction, a multiply, a rotate and a compare on the pool's hot line
 * (the proof is in arena.h), and whether the pool keeps debug states.
 */
#ifndef CBM_CHECK_H
#define CBM_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "istack.h"
#include "pool.h"

static inline uint64_t
cbm_block_quotient(const struct cbm_pool *pool, const void *buf)
{
	return cbm_quotient(pool->base, pool->stride_inv, pool->stride_shift,
			    buf);
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
	return cbm_block_quotient(pool, buf) < cbm_pool_capacity(pool);
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

	if (cbm_unlikely(idx >= cbm_pool_capacity(pool)))
		return cbm_block_reject(pool, buf, op);
	return (uint32_t)idx;
}

static inline bool
cbm_pool_is_debug(const struct cbm_pool *pool)
{
	return pool->flags & CBM_POOL_DEBUG;
}

#endif /* CBM_CHECK_H */
