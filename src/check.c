/* SPDX-License-Identifier: MIT */
/*
 * Pointers the application gives back (check.h): what is wrong with one
 * that failed the check, told apart only here, off the fast path.
 */
#include "check.h"

#include "report.h"

uint32_t
cbm_block_reject(const struct cbm_pool *pool, const void *buf, const char *op)
{
	uintptr_t off = (uintptr_t)buf - (uintptr_t)pool->base;

	/* Past the buffers that exist (an elastic pool's reservation beyond
	 * its frontier, a heap class's slot): no buffer there at all. */
	if (off >= cbm_pool_capacity(pool) * pool->blocks.stride)
		cbm_report(pool, CBM_ERR_FOREIGN, buf,
			   "%s: not a buffer of this pool", op);
	else
		cbm_report(pool, CBM_ERR_MISALIGNED, buf,
			   "%s: %zu bytes into buffer %zu, not at its start",
			   op, (size_t)(off % pool->blocks.stride),
			   (size_t)(off / pool->blocks.stride));
	return CBM_NIL;
}
