/* SPDX-License-Identifier: MIT */
/*
 * A pool's memory as regions for the kernel or a device (cbm.h:
 * cbm_pool_regions, cbm_region_index): io_uring registered buffers,
 * ibv_reg_mr, a DMA mapping.
 *
 * G1. Region r covers buffers [r << s, (r + 1) << s) of those that exist
 *     now, where 2^s is the largest power of two with 2^s x stride <=
 *     CBM_REGION_MAX (1 GiB, io_uring's limit for one registered buffer).
 *     A region starts at a buffer's start and ends at the end of a
 *     buffer's stride, so no buffer straddles two regions, and buffer q's
 *     region is q >> s: a shift, whatever the stride.
 * G2. The last region ends at the last buffer that exists now. A fixed
 *     pool's buffers all exist from create on, so its regions never
 *     change. Where buffers come into being later (an elastic pool), the
 *     buffers that exist are always a prefix of the arena, so regions
 *     only ever grow at the end (the last one lengthens, then a new one
 *     follows) and G1 keeps every index already handed out valid.
 *     pool_buffers() is the one place that says how many exist.
 *     Nothing here follows memory the pool releases (release.h): a region
 *     still covers a released buffer, whose pages the kernel would keep
 *     pinned under a registration; cbm.h tells the caller. The region
 *     callbacks (on_map, on_unmap: regions.h, region_hooks.c) do follow
 *     it, with a pool that then releases and grows by whole regions.
 * G3. A region spans whole strides: in a debug pool it includes each
 *     buffer's guard zone (so a device that writes past a buffer's end is
 *     caught there, as the CPU is), but an address inside a guard zone is
 *     in no buffer and cbm_region_index rejects it.
 *
 * Everything read here (base, stride, block_size) is fixed at create;
 * nothing is written, so any thread may call at any time.
 */
#include <errno.h>
#include <sys/uio.h>

#include "pool.h"
#include "regions.h"
#include "report.h"

/* The buffers that exist now (G2): all of a fixed pool's, the frontier's
 * count in an elastic one. Relaxed (frontier.h): it counts at least every
 * buffer whose address the caller was handed. */
static inline uint64_t
pool_buffers(const struct cbm_pool *pool)
{
	return cbm_pool_capacity(pool);
}

/* s of G1 (regions.h), or -1 when one stride is larger than a region
 * may be. */
static int
region_shift(const struct cbm_pool *pool)
{
	return cbm_region_shift(pool->blocks.stride);
}

static CBM_COLD int
bad_pool(const char *op)
{
	cbm_report(NULL, CBM_ERR_BAD_ARG, NULL, "%s: NULL pool", op);
	return -EINVAL;
}

int
cbm_pool_regions(const cbm_pool *pool, struct iovec *regions, unsigned n)
{
	uint64_t buffers, per, count;
	size_t stride;
	int shift;

	if (pool == NULL)
		return bad_pool("cbm_pool_regions");
	if (regions == NULL && n > 0) {
		cbm_report(pool, CBM_ERR_BAD_ARG, NULL,
			   "cbm_pool_regions: NULL array of %u regions", n);
		return -EINVAL;
	}
	shift = region_shift(pool);
	if (shift < 0)
		return -EOVERFLOW;
	stride = pool->blocks.stride;
	buffers = pool_buffers(pool);
	per = (uint64_t)1 << shift;
	count = (buffers + per - 1) >> shift;
	if (count > INT_MAX)
		return -EOVERFLOW;
	for (uint64_t r = 0; r < count && r < n; r++) {
		uint64_t first = r << shift;
		uint64_t in = buffers - first < per ? buffers - first : per;

		regions[r].iov_base = pool->blocks.base + first * stride;
		regions[r].iov_len = (size_t)in * stride;
	}
	return (int)count;
}

int
cbm_region_index(const cbm_pool *pool, const void *buf)
{
	uintptr_t off;
	uint64_t q, buffers;
	size_t stride;
	int shift;

	if (pool == NULL)
		return bad_pool("cbm_region_index");
	shift = region_shift(pool);
	if (shift < 0)
		return -EOVERFLOW;
	buffers = pool_buffers(pool);
	/* A buffer's start: the pointer check's multiply (arena.h). */
	q = cbm_quotient(pool->blocks.base, pool->blocks.stride_inv,
			 pool->blocks.stride_shift, buf);
	if (cbm_likely(q < buffers))
		return (int)(q >> shift);
	/* Inside a buffer: one division. */
	stride = pool->blocks.stride;
	off = (uintptr_t)buf - (uintptr_t)pool->blocks.base;
	q = off / stride;
	if (q >= buffers || off - q * stride >= pool->block_size) {
		cbm_report(pool, CBM_ERR_FOREIGN, buf,
			   "cbm_region_index: not inside a buffer of this "
			   "pool");
		return -EINVAL;
	}
	return (int)(q >> shift);
}
