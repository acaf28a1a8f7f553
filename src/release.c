/* SPDX-License-Identifier: MIT */
/*
 * Releasing free buffers' memory (release.h, where L1-L4 are argued).
 */
#include "release.h"

#include <stdlib.h>

#include "arena.h"
#include "cbm.h"
#include "contract.h"
#include "plant.h"

void
cbm_release_init(struct cbm_release *r, unsigned ms, bool never)
{
	r->ms = ms;
	r->never = never;
	r->window_start_ms = 0;
	/* Nothing has been free for a whole window yet. */
	for (int i = 0; i < 3; i++)
		r->low_prev[i] = 0;
	cbm_store_relaxed_u64(&r->releases, 0);
}

static int
by_index(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Split idx[0..n) (sorted, distinct) into whole release groups, written to
 * groups (returns how many), and the rest, moved to the front of idx
 * (*rest of them). L3.
 */
static uint32_t
find_groups(const struct cbm_blocks *b, uint32_t *idx, uint32_t n,
	    uint32_t *groups, uint32_t *rest)
{
	uint32_t ng = 0, keep = 0;

	for (uint32_t i = 0; i < n;) {
		uint32_t g = idx[i] / b->group, k = cbm_blocks_group_size(b, g);
		char *lo, *hi;

		/* Sorted and distinct: the group's k in a row from its first
		 * is the whole group. */
		if (idx[i] % b->group == 0 && n - i >= k &&
		    idx[i + k - 1] == idx[i] + k - 1) {
			cbm_blocks_group_pages(b, g, &lo, &hi);
			if (hi > lo) {
				groups[ng++] = g;
				i += k;
				continue;
			}
		}
		idx[keep++] = idx[i++];
	}
	*rest = keep;
	return ng;
}

/* madvise the groups' pages, one call per run of neighbouring groups. */
static size_t
release_pages(const struct cbm_blocks *b, const uint32_t *groups, uint32_t ng)
{
	char *run_lo = NULL, *run_hi = NULL;
	size_t bytes = 0;

	for (uint32_t i = 0; i < ng; i++) {
		char *lo, *hi;

		cbm_blocks_group_pages(b, groups[i], &lo, &hi);
		bytes += (size_t)(hi - lo);
		if (lo != run_hi) {
			cbm_pages_release(run_lo, run_hi);
			run_lo = lo;
		}
		run_hi = hi;
	}
	cbm_pages_release(run_lo, run_hi);
	return bytes;
}

size_t
cbm_release_now(struct cbm_release *r, struct cbm_global *g, uint64_t max,
		uint64_t *taken)
{
	const struct cbm_blocks *b = g->blocks;
	uint64_t resident = cbm_global_resident_count(g);
	uint32_t *idx, *groups, n, ng, rest;
	size_t bytes = 0;

	if (taken != NULL)
		*taken = 0;
	if (r->never || max == 0 || resident == 0) /* T3: look first */
		return 0;
	if (max > resident)
		max = resident;
	if (max > UINT32_MAX)
		max = UINT32_MAX;
	/* Scratch for what comes out: O(max). Where that much cannot be had,
	 * a smaller pass gives back less, and the next pass the rest. */
	for (;;) {
		idx = malloc(sizeof(*idx) * (size_t)max);
		groups = malloc(sizeof(*groups) * ((size_t)max / b->group + 1));
		if ((idx != NULL && groups != NULL) || max <= 1024)
			break;
		free(idx);
		free(groups);
		max /= 2;
	}
	if (idx == NULL || groups == NULL)
		goto out; /* nothing taken: the memory stays, no harm done */

	cbm_transit_begin(&g->transit);
	n = cbm_global_take_resident(g, idx, (uint32_t)max);
	if (b->group > 1)
		qsort(idx, n, sizeof(*idx), by_index);
	ng = find_groups(b, idx, n, groups, &rest);
	if (CBM_PLANTED(CBM_PLANT_RELEASE_PUBLISHED))
		for (uint32_t i = 0; i < ng; i++) /* against L2: the bug */
			cbm_global_put_released(g, groups[i]);
	/* Out of every place, pages still there (L1). */
	CBM_YIELD_AT(CBM_SITE_RELEASING);
	/* L2: whoever keeps the groups' memory registered lets go first. */
	for (uint32_t i = 0; i < ng; i++)
		cbm_global_unmapping(g, groups[i]);
	bytes = release_pages(b, groups, ng);
	if (!CBM_PLANTED(CBM_PLANT_RELEASE_PUBLISHED))
		for (uint32_t i = 0; i < ng; i++) /* L2: after the pages */
			cbm_global_put_released(g, groups[i]);
	cbm_global_put_back(g, idx, rest);
	cbm_transit_end(&g->transit, n > 0);
	if (ng > 0)
		cbm_fetch_add_relaxed_u64(&r->releases, 1);
	if (taken != NULL) {
		*taken = 0;
		for (uint32_t i = 0; i < ng; i++)
			*taken += cbm_blocks_group_size(b, groups[i]);
	}
out:
	free(idx);
	free(groups);
	return bytes;
}

void
cbm_release_tick(struct cbm_release *r, struct cbm_global *g, uint64_t now_ms)
{
	uint64_t quarter, low, n, gone = 0;

	if (r->never || r->ms == CBM_RELEASE_OFF)
		return;
	quarter = r->ms / 4;
	if (r->window_start_ms == 0)
		r->window_start_ms = now_ms;
	if (now_ms - r->window_start_ms < quarter)
		return;
	/* L4: the low water of this quarter window, and of the three before. */
	low = cbm_global_low_water(g, 0);
	n = low;
	for (int i = 0; i < 3; i++)
		n = r->low_prev[i] < n ? r->low_prev[i] : n;
	r->window_start_ms = now_ms;
	if (n > 0) {
		cbm_release_now(r, g, n, &gone);
		/* The next window counts from what is left. */
		(void)cbm_global_low_water(g, 0);
	}
	/* What went is no longer there to have stayed free. */
	for (int i = 0; i < 3; i++)
		r->low_prev[i] =
			r->low_prev[i] > gone ? r->low_prev[i] - gone : 0;
	r->low_prev[2] = r->low_prev[1];
	r->low_prev[1] = r->low_prev[0];
	r->low_prev[0] = low > gone ? low - gone : 0;
}
