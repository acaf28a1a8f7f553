/* SPDX-License-Identifier: MIT */
/*
 * The global tier (global.h, where its policy and invariant are stated).
 */
#include "global.h"

#include <errno.h>
#include <string.h>

#include "contract.h"
#include "debug.h"
#include "plant.h"

int
cbm_global_init(struct cbm_global *g, const struct cbm_blocks *blocks,
		cbm_atomic_u32 *links, cbm_atomic_u64 *exists, uint64_t initial,
		uint32_t nmags, uint32_t mag_size)
{
	g->blocks = blocks;
	g->links = links;
	g->mag_size = mag_size;
	cbm_transit_init(&g->transit);
	cbm_istack_init(&g->freelist);
	cbm_istack_init(&g->released);
	cbm_frontier_init(&g->frontier, exists, initial, blocks->max);
	cbm_store_relaxed_u64(&g->low_water, 0);
	cbm_store_relaxed_u64(&g->released_bytes, 0);
	cbm_store_relaxed_u64(&g->released_buffers, 0);
	g->map = g->unmap = NULL;
	g->hook_arg = NULL;
	g->budget = NULL;
	return cbm_depot_init(&g->depot, nmags, mag_size);
}

void
cbm_global_fini(struct cbm_global *g)
{
	cbm_frontier_fini(&g->frontier);
	cbm_depot_fini(&g->depot);
}

void
cbm_global_set_hooks(struct cbm_global *g, cbm_extent_fn map,
		     cbm_extent_fn unmap, void *arg, uint64_t step)
{
	CBM_ASSERT((map == NULL) == (unmap == NULL));
	g->map = map;
	g->unmap = unmap;
	g->hook_arg = arg;
	if (map != NULL)
		cbm_frontier_set_map(&g->frontier, map, arg, step);
}

void
cbm_global_set_budget(struct cbm_global *g, struct cbm_budget *budget)
{
	CBM_ASSERT(g->map == NULL);
	g->budget = budget;
	cbm_frontier_set_budget(&g->frontier, budget, g->blocks->stride,
				g->blocks->group);
}

/* What a released group is charged up front (cbm_global_set_budget): the
 * most pages a group can have, its bytes rounded down to pages (exact for
 * groups of whole pages, arena.h), so that whenever the budget holds some
 * group's pages it holds this. */
static uint64_t
group_bound(const struct cbm_global *g)
{
	return ((uint64_t)g->blocks->group * g->blocks->stride) &
	       ~(uint64_t)(g->blocks->page - 1);
}

/* With a budget, whether a released group could be paid for now. */
static bool
released_affordable(const struct cbm_global *g)
{
	return g->budget == NULL ||
	       cbm_budget_affords(g->budget, group_bound(g));
}

void
cbm_global_unmapping(struct cbm_global *g, uint32_t group)
{
	if (g->unmap != NULL)
		g->unmap(g->hook_arg, (uint64_t)group * g->blocks->group,
			 cbm_blocks_group_size(g->blocks, group));
}

bool
cbm_global_looks_empty(const struct cbm_global *g)
{
	/* The counts never read below the truth (istack.c, I4): 0 is empty. */
	return cbm_depot_full_count(&g->depot) == 0 &&
	       cbm_istack_count(&g->freelist) == 0 &&
	       (cbm_istack_count(&g->released) == 0 ||
		!released_affordable(g)) &&
	       cbm_frontier_closed(&g->frontier);
}

uint64_t
cbm_global_resident_count(const struct cbm_global *g)
{
	return cbm_istack_count(&g->freelist) +
	       cbm_depot_full_count(&g->depot) * g->mag_size;
}

uint64_t
cbm_global_released_count(const struct cbm_global *g)
{
	/* Not the list's count x group: the last group may be short. */
	return cbm_load_relaxed_u64(&g->released_buffers);
}

/* After a take from the freelist or the depot: a new low for the release
 * policy. The CAS keeps the lowest of racing takers. */
static void
note_low_water(struct cbm_global *g)
{
	uint64_t now = cbm_global_resident_count(g);
	uint64_t low = cbm_load_relaxed_u64(&g->low_water);

	while (now < low && !cbm_cas_weak_relaxed_u64(&g->low_water, &low, now))
		;
}

uint64_t
cbm_global_low_water(struct cbm_global *g, uint64_t forget)
{
	uint64_t now = cbm_global_resident_count(g);

	now = now > forget ? now - forget : 0;
	return cbm_xchg_acq_rel_u64(&g->low_water, now);
}

/* The index of the buffers that exist: every index a tier holds is below
 * it (frontier.h, F2). For assertions (unused where they compile out). */
static __attribute__((unused)) uint64_t
existing(const struct cbm_global *g)
{
	return cbm_frontier_exists(&g->frontier);
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
	CBM_ASSERT_EXPENSIVE(first < existing(g));
	for (uint32_t i = 1; i < n; i++) {
		uint32_t idx = cbm_blocks_index(g->blocks, slots[i]);

		/* Every index below capacity: slots hold the pool's buffers. */
		CBM_ASSERT_EXPENSIVE(idx < existing(g));
		cbm_store_relaxed_u32(&g->links[prev], idx);
		prev = idx;
	}
	cbm_istack_push_chain(&g->freelist, g->links, first, prev, n);
}

/* Link buffers first .. first + n - 1 in order and push them onto the
 * freelist: the part of a released group the taker does not keep. */
static void
spill_range(struct cbm_global *g, uint32_t first, uint32_t n)
{
	if (n == 0)
		return;
	for (uint32_t i = 0; i + 1 < n; i++)
		cbm_store_relaxed_u32(&g->links[first + i], first + i + 1);
	cbm_istack_push_chain(&g->freelist, g->links, first, first + n - 1, n);
}

/* Pop one released group: its first buffer (CBM_NIL when the list is
 * empty), all *size of its buffers the caller's. Its pages come back as
 * they are touched; the map hook hears of it before any of its buffers
 * leaves the caller's hands (global.h). */
static uint32_t
take_released(struct cbm_global *g, uint32_t *size)
{
	uint64_t bound = group_bound(g);
	uint32_t first, group;
	char *lo, *hi;

	/* Pay before the pop, so that a group taken is always paid for: a
	 * budget that cannot leaves the list as it is (no push back, which
	 * would move its head and keep the NULL decision looking: dry.c). */
	/* Nothing to pay for (the count never reads below the truth,
	 * istack.c I4): no charge, which would otherwise be made and given
	 * back by every refill that finds the freelist empty, and read as
	 * spent by other pools of the budget meanwhile. */
	if (cbm_istack_count(&g->released) == 0)
		return CBM_NIL;
	if (CBM_PLANTED(CBM_PLANT_UNPAID_REUSE)) /* the bug: plant.h */
		bound = 0;
	if (g->budget != NULL && !cbm_budget_take(g->budget, bound))
		return CBM_NIL;
	first = cbm_istack_pop(&g->released, g->links);
	if (first == CBM_NIL) {
		if (g->budget != NULL)
			cbm_budget_give(g->budget, bound);
		return CBM_NIL;
	}
	group = first / g->blocks->group;
	*size = cbm_blocks_group_size(g->blocks, group);
	cbm_blocks_group_pages(g->blocks, group, &lo, &hi);
	/* B2: keep only the group's pages charged. */
	if (g->budget != NULL && bound != 0)
		cbm_budget_give(g->budget, bound - (uint64_t)(hi - lo));
	cbm_fetch_sub_relaxed_u64(&g->released_bytes, (uint64_t)(hi - lo));
	cbm_fetch_sub_relaxed_u64(&g->released_buffers, *size);
	if (g->map != NULL)
		g->map(g->hook_arg, first, *size);
	return first;
}

/* Buffers first .. first + n - 1 into slots. */
static void
range_to_slots(struct cbm_global *g, void **slots, uint32_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		slots[i] = cbm_blocks_ptr(g->blocks, first + i);
}

/* Up to max buffers from released groups, the rest of the last group onto
 * the freelist. Within the caller's move. */
static uint32_t
take_released_run(struct cbm_global *g, void **slots, uint32_t max)
{
	uint32_t got = 0, group;

	while (got < max) {
		uint32_t first = take_released(g, &group), keep;

		if (first == CBM_NIL)
			break;
		keep = max - got < group ? max - got : group;
		range_to_slots(g, &slots[got], first, keep);
		spill_range(g, first + keep, group - keep);
		got += keep;
	}
	return got;
}

/* Up to max never-used buffers; they enter the pool poisoned, as free
 * buffers are, their shared granules addressable (debug.h). */
static uint32_t
take_fresh(struct cbm_global *g, void **slots, uint32_t max)
{
	uint32_t first, n, want = max;

	/* Under a budget, whole release groups (frontier.h, F6): what does
	 * not fit slots goes onto the freelist, so no group is left partly
	 * in the frontier, where no release could reach it. The caller is
	 * within a move (the surplus is in its hands until spilled). */
	if (g->budget != NULL && g->blocks->group > 1)
		want = (uint32_t)(((uint64_t)max + g->blocks->group - 1) /
				  g->blocks->group * g->blocks->group);
	n = cbm_frontier_take(&g->frontier, want, &first);
	if (n > max) {
		for (uint32_t i = max; i < n; i++) {
			void *buf = cbm_blocks_ptr(g->blocks, first + i);

			cbm_san_fresh(g->blocks, &buf, 1);
		}
		spill_range(g, first + max, n - max);
		n = max;
	}
	range_to_slots(g, slots, first, n);
	cbm_san_fresh(g->blocks, slots, n);
	return n;
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
		note_low_water(g);
		*kind = CBM_RUN_MAGAZINE;
		return max;
	}
	got = fill_slots(g, slots, max);
	if (got > 0)
		note_low_water(g);
	if (got == 0)
		got = take_released_run(g, slots, max);
	if (got == 0)
		got = take_fresh(g, slots, max);
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

/* One buffer from a released group (the rest of it onto the freelist, a
 * move: T1, begun only when a group looks to be there, T3), else from the
 * frontier (a claim, no move). NULL when both are empty. */
static void *
alloc_unused(struct cbm_global *g)
{
	uint32_t got;
	void *buf;

	if (cbm_istack_count(&g->released) > 0) {
		uint32_t first, size;

		cbm_transit_begin(&g->transit);
		first = take_released(g, &size);
		if (first != CBM_NIL) {
			spill_range(g, first + 1, size - 1);
			cbm_transit_end(&g->transit, true);
			return cbm_blocks_ptr(g->blocks, first);
		}
		cbm_transit_end(&g->transit, false);
	}
	if (g->budget == NULL)
		return take_fresh(g, &buf, 1) == 1 ? buf : NULL;
	/* A claim of whole groups spills what it does not keep: a move. */
	cbm_transit_begin(&g->transit);
	got = take_fresh(g, &buf, 1);
	cbm_transit_end(&g->transit, got == 1);
	return got == 1 ? buf : NULL;
}

void *
cbm_global_alloc_one(struct cbm_global *g)
{
	uint32_t idx = cbm_istack_pop(&g->freelist, g->links);
	struct cbm_mag *m;
	uint32_t n;
	void *buf;

	if (idx != CBM_NIL) {
		note_low_water(g);
		return cbm_blocks_ptr(g->blocks, idx);
	}
	/* A magazine is split here: a move between places (transit.h, T1),
	 * begun only when there looks to be one to take (T3). */
	if (cbm_depot_full_count(&g->depot) == 0)
		return alloc_unused(g);
	cbm_transit_begin(&g->transit);
	m = cbm_depot_take_full(&g->depot);
	if (m == NULL) {
		cbm_transit_end(&g->transit, false);
		return alloc_unused(g);
	}
	note_low_water(g);
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
	CBM_ASSERT(idx < existing(g));
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
	return cbm_global_resident_count(g) + cbm_global_released_count(g) +
	       cbm_frontier_unused(&g->frontier);
}

void
cbm_global_heads(const struct cbm_global *g, struct cbm_global_heads *h)
{
	/* Acquire: pairs with the release CAS of the push or pop that wrote
	 * each head (dry.c, D1). */
	h->freelist = cbm_load_acquire_u64(&g->freelist.head);
	h->full = cbm_load_acquire_u64(&g->depot.full.head);
	h->released = cbm_load_acquire_u64(&g->released.head);
	h->released_closed = !released_affordable(g);
	h->frontier_exists = cbm_frontier_exists(&g->frontier);
	h->frontier_closed = cbm_frontier_closed(&g->frontier);
}

uint32_t
cbm_global_take_resident(struct cbm_global *g, uint32_t *idx, uint32_t max)
{
	uint32_t got = 0;

	while (got < max) {
		uint32_t n, first;
		struct cbm_mag *m;

		first = cbm_istack_pop_chain(&g->freelist, g->links, max - got,
					     &n);
		for (uint32_t i = 0; i < n; i++) {
			idx[got++] = first;
			first = cbm_load_relaxed_u32(&g->links[first]);
		}
		if (n > 0)
			continue;
		/* Only a magazine that fits: a part put back would be a
		 * second move. */
		if (max - got < g->mag_size ||
		    (m = cbm_depot_take_full(&g->depot)) == NULL)
			break;
		for (uint32_t i = 0; i < g->mag_size; i++)
			idx[got++] = cbm_blocks_index(g->blocks, m->slots[i]);
		cbm_mag_set_count(m, 0);
		cbm_depot_give_empty(&g->depot, m);
	}
	return got;
}

void
cbm_global_put_released(struct cbm_global *g, uint32_t group)
{
	uint32_t first = group * g->blocks->group;
	char *lo, *hi;

	cbm_blocks_group_pages(g->blocks, group, &lo, &hi);
	if (g->budget != NULL)
		cbm_budget_give(g->budget, (uint64_t)(hi - lo)); /* B2 */
	cbm_fetch_add_relaxed_u64(&g->released_bytes, (uint64_t)(hi - lo));
	cbm_fetch_add_relaxed_u64(&g->released_buffers,
				  cbm_blocks_group_size(g->blocks, group));
	cbm_istack_push(&g->released, g->links, first);
}

void
cbm_global_put_back(struct cbm_global *g, const uint32_t *idx, uint32_t n)
{
	if (n == 0)
		return;
	for (uint32_t i = 0; i + 1 < n; i++)
		cbm_store_relaxed_u32(&g->links[idx[i]], idx[i + 1]);
	cbm_istack_push_chain(&g->freelist, g->links, idx[0], idx[n - 1], n);
}
