/* SPDX-License-Identifier: MIT */
/*
 * The global tier (global.h, where its policy and invariant are stated).
 */
#include "global.h"

#include <errno.h>
#include <string.h>

#include "contract.h"
#include "plant.h"

int
cbm_global_init(struct cbm_global *g, const struct cbm_blocks *blocks,
		cbm_atomic_u32 *links, uint32_t nmags, uint32_t mag_size)
{
	uint32_t cap = (uint32_t)blocks->capacity;

	g->blocks = blocks;
	g->links = links;
	g->mag_size = mag_size;
	cbm_transit_init(&g->transit);
	cbm_istack_init(&g->freelist);
	if (cbm_depot_init(&g->depot, nmags, mag_size) != 0)
		return -ENOMEM;
	for (uint32_t i = 0; i + 1 < cap; i++)
		cbm_store_relaxed_u32(&links[i], i + 1);
	cbm_istack_push_chain(&g->freelist, links, 0, cap - 1, cap);
	return 0;
}

void
cbm_global_fini(struct cbm_global *g)
{
	cbm_depot_fini(&g->depot);
}

bool
cbm_global_looks_empty(const struct cbm_global *g)
{
	/* The counts never read below the truth (istack.c, I4): 0 is empty. */
	return cbm_depot_full_count(&g->depot) == 0 &&
	       cbm_istack_count(&g->freelist) == 0;
}

/* Pop up to max buffers off the freelist into slots, with one CAS. */
static uint32_t
fill_slots(struct cbm_global *g, void **slots, uint32_t max)
{
	uint32_t n, idx;

	idx = cbm_istack_pop_chain(&g->freelist, g->links, max, &n);
	for (uint32_t i = 0; i < n; i++) {
		slots[i] = cbm_blocks_ptr(g->blocks, idx);
		idx = cbm_load_relaxed_u32(&g->links[idx]);
	}
	return n;
}

/* Push n buffers the caller owns onto the freelist, with one CAS. */
static void
spill_slots(struct cbm_global *g, void *const *slots, uint32_t n)
{
	uint32_t first, prev;

	if (n == 0)
		return;
	if (CBM_PLANTED(CBM_PLANT_LOSE_BUFFER) && n > 1)
		n--;
	/* Link slots[0] -> slots[1] -> ... -> slots[n-1]; push_chain writes
	 * the last link. */
	first = prev = cbm_blocks_index(g->blocks, slots[0]);
	CBM_ASSERT_EXPENSIVE(first < g->blocks->capacity);
	for (uint32_t i = 1; i < n; i++) {
		uint32_t idx = cbm_blocks_index(g->blocks, slots[i]);

		/* Every index below capacity: slots hold the pool's buffers. */
		CBM_ASSERT_EXPENSIVE(idx < g->blocks->capacity);
		cbm_store_relaxed_u32(&g->links[prev], idx);
		prev = idx;
	}
	cbm_istack_push_chain(&g->freelist, g->links, first, prev, n);
}

uint32_t
cbm_global_take_run(struct cbm_global *g, void **slots, uint32_t max,
		    enum cbm_run_kind *kind)
{
	struct cbm_mag *full = NULL;
	uint32_t got;

	CBM_ASSERT(max > 0 && max <= g->mag_size);
	if (max == g->mag_size)
		full = cbm_depot_take_full(&g->depot);
	if (full != NULL) {
		memcpy(slots, full->slots, max * sizeof(void *));
		cbm_mag_set_count(full, 0);
		cbm_depot_give_empty(&g->depot, full);
		*kind = CBM_RUN_MAGAZINE;
		return max;
	}
	got = fill_slots(g, slots, max);
	*kind = got > 0 ? CBM_RUN_CHAIN : CBM_RUN_NONE;
	return got;
}

enum cbm_run_kind
cbm_global_put_run(struct cbm_global *g, void *const *slots, uint32_t n)
{
	struct cbm_mag *empty = NULL;

	CBM_ASSERT(n > 0 && n <= g->mag_size);
	if (n == g->mag_size)
		empty = cbm_depot_take_empty(&g->depot);
	if (empty != NULL) {
		memcpy(empty->slots, slots, n * sizeof(void *));
		cbm_mag_set_count(empty, n);
		cbm_depot_give_full(&g->depot, empty);
		return CBM_RUN_MAGAZINE;
	}
	spill_slots(g, slots, n);
	return CBM_RUN_CHAIN;
}

void *
cbm_global_alloc_one(struct cbm_global *g)
{
	uint32_t idx = cbm_istack_pop(&g->freelist, g->links);
	struct cbm_mag *m;
	uint32_t n;
	void *buf;

	if (idx != CBM_NIL)
		return cbm_blocks_ptr(g->blocks, idx);
	/* A magazine is split here: a move between places (transit.h, T1),
	 * begun only when there looks to be one to take (T3). */
	if (cbm_depot_full_count(&g->depot) == 0)
		return NULL;
	cbm_transit_begin(&g->transit);
	m = cbm_depot_take_full(&g->depot);
	if (m == NULL) {
		cbm_transit_end(&g->transit, false);
		return NULL;
	}
	/* A magazine in no one's hands but ours. */
	CBM_YIELD_AT(CBM_SITE_MAG_IN_HAND);
	n = cbm_mag_count(m);
	buf = m->slots[n - 1];
	spill_slots(g, m->slots, n - 1);
	cbm_mag_set_count(m, 0);
	cbm_depot_give_empty(&g->depot, m);
	cbm_transit_end(&g->transit, true);
	return buf;
}

void
cbm_global_free_one(struct cbm_global *g, uint32_t idx)
{
	CBM_ASSERT(idx < g->blocks->capacity);
	cbm_istack_push(&g->freelist, g->links, idx);
}

void
cbm_global_free_chain(struct cbm_global *g, uint32_t first, uint32_t last,
		      uint32_t n)
{
	cbm_istack_push_chain(&g->freelist, g->links, first, last, n);
}

uint64_t
cbm_global_count(const struct cbm_global *g)
{
	return cbm_istack_count(&g->freelist) +
	       cbm_depot_full_count(&g->depot) * g->mag_size;
}

void
cbm_global_heads(const struct cbm_global *g, uint64_t *freelist, uint64_t *full)
{
	/* Acquire: pairs with the release CAS of the push or pop that wrote
	 * each head (dry.c, D1). */
	*freelist = cbm_load_acquire_u64(&g->freelist.head);
	*full = cbm_load_acquire_u64(&g->depot.full.head);
}
