/*
 * The global tier (global.h). Buffers enter the freelist only as whole
 * blocks the caller owns, and leave it only by a successful pop, so the
 * freelist's invariants (freelist.c) carry over: no buffer is ever in the
 * freelist twice, or in it and in a magazine at once.
 */
#include "global.h"

#include "check.h"
#include "plant.h"
#include "pool.h"

uint32_t
cbm_global_fill_slots(struct cbm_pool *pool, void **slots, uint32_t max)
{
	uint32_t n, idx;

	idx = cbm_istack_pop_chain(&pool->freelist, pool->links, max, &n);
	for (uint32_t i = 0; i < n; i++) {
		slots[i] = cbm_block_ptr(pool, idx);
		idx = cbm_load_relaxed_u32(&pool->links[idx]);
	}
	return n;
}

void
cbm_global_spill_slots(struct cbm_pool *pool, void *const *slots, uint32_t n)
{
	uint32_t first, prev;

	if (n == 0)
		return;
	if (CBM_PLANTED(CBM_PLANT_LOSE_BUFFER) && n > 1)
		n--;
	/* Link slots[0] -> slots[1] -> ... -> slots[n-1]; push_chain writes
	 * the last link. */
	first = prev = cbm_block_index_trusted(pool, slots[0]);
	for (uint32_t i = 1; i < n; i++) {
		uint32_t idx = cbm_block_index_trusted(pool, slots[i]);

		cbm_store_relaxed_u32(&pool->links[prev], idx);
		prev = idx;
	}
	cbm_istack_push_chain(&pool->freelist, pool->links, first, prev, n);
}

void *
cbm_global_alloc_one(struct cbm_pool *pool)
{
	uint32_t idx = cbm_istack_pop(&pool->freelist, pool->links);
	struct cbm_mag *m;
	uint32_t n;
	void *buf;

	if (idx != CBM_NIL)
		return cbm_block_ptr(pool, idx);
	/* A magazine is split here: a move between places (transit.h, T1),
	 * begun only when there looks to be one to take (T3). */
	if (cbm_depot_full_count(&pool->depot) == 0)
		return NULL;
	cbm_transit_begin(&pool->transit);
	m = cbm_depot_take_full(&pool->depot);
	if (m == NULL) {
		cbm_transit_end(&pool->transit, false);
		return NULL;
	}
	/* A magazine in no one's hands but ours. */
	CBM_YIELD_AT(CBM_SITE_MAG_IN_HAND);
	n = cbm_mag_count(m);
	buf = m->slots[n - 1];
	cbm_global_spill_slots(pool, m->slots, n - 1);
	cbm_mag_set_count(m, 0);
	cbm_depot_give_empty(&pool->depot, m);
	cbm_transit_end(&pool->transit, true);
	return buf;
}

void
cbm_global_free_one(struct cbm_pool *pool, uint32_t idx)
{
	cbm_istack_push(&pool->freelist, pool->links, idx);
}

uint64_t
cbm_global_count(const struct cbm_pool *pool)
{
	return cbm_istack_count(&pool->freelist) +
	       cbm_depot_full_count(&pool->depot) * pool->mag_size;
}
