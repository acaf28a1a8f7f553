/* SPDX-License-Identifier: MIT */
/*
 * Regions (regions.c, G1-G3): their geometry, and the application's
 * callbacks that follow them (cbm.h, on_map and on_unmap), fed by the
 * global tier's extent hooks (global.h), which speak of buffers only.
 *
 * Invariants of the callbacks:
 *  H1. Region r is mapped (mapped[r] == 1) from the on_map that first
 *      covers it until the on_unmap that ends it, and again from the next
 *      on_map. on_map of a mapped region (a growth that lengthens the last
 *      one) replaces its extent; on_unmap only ever comes for a mapped one.
 *  H2. The calls for one region never overlap: growth maps under the
 *      frontier's lock (frontier.h, F5); a release unmaps a region only
 *      when it took every buffer of it out of the tier (release.h, L1, L3:
 *      the release group is the region), so its growth is over; the map
 *      of a released region follows the pop that ends the release
 *      (global.h). Calls for different regions may run at once on
 *      different threads, which is why mapped is a byte per region (no
 *      read-modify-write of a shared word).
 *  H3. A call's extent is the region's buffers that exist: from its start
 *      to the end of the last existing buffer's stride in it (G1, G2).
 */
#ifndef CBM_REGIONS_H
#define CBM_REGIONS_H

#include <stddef.h>
#include <stdint.h>

#include "cbm.h"

#include "arena.h"
#include "atomics.h"

/* io_uring_register_buffers takes at most this per iovec. */
#define CBM_REGION_MAX ((size_t)1 << 30)

/* s of G1: the largest s with 2^s x stride <= CBM_REGION_MAX, or -1 when
 * one stride is larger than a region may be. */
static inline int
cbm_region_shift(size_t stride)
{
	size_t per = CBM_REGION_MAX / stride;

	if (per == 0)
		return -1;
	return 63 - __builtin_clzll((unsigned long long)per);
}

struct cbm_region_hooks {
	cbm_region_fn on_map, on_unmap; /* NULL: none (then nothing here) */
	void *arg;
	const struct cbm_blocks *blocks;
	unsigned shift;		/* G1 */
	uint64_t nregions;	/* regions of the ceiling */
	cbm_atomic_u8 *mapped;	/* per region, H1 */
	cbm_atomic_u64 *exists; /* buffers that exist (frontier.h) */
};

/* Take the application's callbacks; the caller checked that the stride
 * has a shift (-EOVERFLOW otherwise). 0 or -ENOMEM. */
int cbm_region_hooks_init(struct cbm_region_hooks *h, cbm_region_fn on_map,
			  cbm_region_fn on_unmap, void *arg,
			  const struct cbm_blocks *blocks,
			  cbm_atomic_u64 *exists);

/* The global tier's hooks (global.h, cbm_extent_fn); arg is the hooks. */
void cbm_region_hooks_map(void *arg, uint64_t first, uint64_t n);
void cbm_region_hooks_unmap(void *arg, uint64_t first, uint64_t n);

/* on_unmap for every region still mapped (destroy, before the arena goes),
 * then let go of the bookkeeping. Quiescent pool. */
void cbm_region_hooks_fini(struct cbm_region_hooks *h);

#endif /* CBM_REGIONS_H */
