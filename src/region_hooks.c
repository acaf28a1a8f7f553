/* SPDX-License-Identifier: MIT */
/*
 * The application's region callbacks (regions.h, where H1-H3 are argued):
 * the global tier's extent hooks, in buffers, turned into calls with a
 * region's index, address and length.
 */
#include "regions.h"

#include <errno.h>
#include <stdlib.h>

#include "contract.h"
#include "plant.h"

int
cbm_region_hooks_init(struct cbm_region_hooks *h, cbm_region_fn on_map,
		      cbm_region_fn on_unmap, void *arg,
		      const struct cbm_blocks *blocks, cbm_atomic_u64 *exists)
{
	int shift = cbm_region_shift(blocks->stride);

	CBM_ASSERT(shift >= 0 && on_map != NULL && on_unmap != NULL);
	h->shift = (unsigned)shift;
	h->nregions = (blocks->max + ((uint64_t)1 << shift) - 1) >> shift;
	/* A byte per region: at most a few hundred thousand for any arena
	 * the address space holds (regions are over 512 MiB unless the
	 * ceiling is smaller), so O(1) in practice; calloc'd zero. */
	h->mapped = CBM_FAIL_HERE("the region map")
			    ? NULL
			    : calloc(h->nregions, sizeof(*h->mapped));
	if (h->mapped == NULL)
		return -ENOMEM;
	h->on_map = on_map;
	h->on_unmap = on_unmap;
	h->arg = arg;
	h->blocks = blocks;
	h->exists = exists;
	return 0;
}

/* Region r's start, and the length of its part of buffers [0, end) (H3). */
static void
extent(const struct cbm_region_hooks *h, uint64_t r, uint64_t end, void **addr,
       size_t *len)
{
	uint64_t first = r << h->shift, last = (r + 1) << h->shift;

	if (last > end)
		last = end;
	*addr = h->blocks->base + (size_t)first * h->blocks->stride;
	*len = (size_t)(last - first) * h->blocks->stride;
}

void
cbm_region_hooks_map(void *arg, uint64_t first, uint64_t n)
{
	struct cbm_region_hooks *h = arg;
	uint64_t end = first + n;

	CBM_ASSERT(n > 0 && end <= h->blocks->max);
	/* Every region [first, end) touches: each covers its buffers up to
	 * end, which is where the buffers that exist will end (a growth) or
	 * past the region's own end (a released region, whole). */
	for (uint64_t r = first >> h->shift; r <= (end - 1) >> h->shift; r++) {
		void *addr;
		size_t len;

		extent(h, r, end, &addr, &len);
		h->on_map(h->arg, addr, len, (unsigned)r);
		cbm_store_relaxed_u8(&h->mapped[r], 1);
	}
}

void
cbm_region_hooks_unmap(void *arg, uint64_t first, uint64_t n)
{
	struct cbm_region_hooks *h = arg;
	uint64_t r = first >> h->shift;
	void *addr;
	size_t len;

	/* A release group is a whole region (pool.c), the last one cut short
	 * by the ceiling, and it is mapped. */
	CBM_ASSERT(first == r << h->shift &&
		   n == ((uint64_t)1 << h->shift < h->blocks->max - first
				 ? (uint64_t)1 << h->shift
				 : h->blocks->max - first));
	CBM_ASSERT(cbm_load_relaxed_u8(&h->mapped[r]) == 1);
	extent(h, r, first + n, &addr, &len);
	h->on_unmap(h->arg, addr, len, (unsigned)r);
	cbm_store_relaxed_u8(&h->mapped[r], 0);
}

void
cbm_region_hooks_fini(struct cbm_region_hooks *h)
{
	uint64_t exists;

	if (h->on_map == NULL)
		return;
	exists = cbm_load_relaxed_u64(h->exists);
	for (uint64_t r = 0; r < h->nregions; r++) {
		void *addr;
		size_t len;

		if (cbm_load_relaxed_u8(&h->mapped[r]) == 0)
			continue;
		extent(h, r, exists, &addr, &len);
		h->on_unmap(h->arg, addr, len, (unsigned)r);
		cbm_store_relaxed_u8(&h->mapped[r], 0);
	}
	free(h->mapped);
	h->mapped = NULL;
}
