/* SPDX-License-Identifier: MIT */
/*
 * The NULL decision (docs/design.md, "Capacity means capacity").
 *
 * cbm_alloc may return NULL only if, at some instant during the call, every
 * buffer not retired was held by the application. Under a size-class
 * heap's ceiling (budget.h) that reads: every buffer not retired was held
 * or in a released group, and the budget, read during the call, could pay
 * neither for a released group nor for a growth. Looking at each place
 * once is not enough: the looks happen at different moments, buffers move
 * between places meanwhile (transit.h), and a free into a place already
 * looked at can pair with an allocation from one not yet looked at. So the
 * dry path confirms with a double collect under the transit word:
 *
 *  D1. Read the transit word with no move in flight (T2); collect every
 *      place twice; read the word again. If both collects found every place
 *      empty and read the same values, and the word did not change, then at
 *      the instant between the two collects every place was empty (each
 *      place read the same value before and after that instant, and by D2
 *      nothing entered or left it in between) and no buffer was in transit
 *      (T2): that instant is the one the promise needs.
 *  D2. Values do not repeat within a collect's reach. The freelist's, the
 *      depot's and the released list's heads carry a tag that every push
 *      and pop moves (istack.c, I1); the frontier, once spent, never
 *      changes again (frontier.h, F1), and one closed by a budget is
 *      compared by its exists, which only rises (F1, F6). A cache's word changes count on every push and
 *      pop, and its pop field rises on every pop and falls only when folded,
 *      which happens within a move (percpu.c: a refill, a spill, a drain)
 *      or after 2^32 pops. So the sum of the pop fields over all caches
 *      rises whenever any cache is popped, and a cache whose count reads 0
 *      twice with no pop in between had nothing pushed either. That needs
 *      no copy of each word, only two sums, so the collect takes no memory
 *      whatever the number of CPUs. (Exceptions: 2^32 operations on one
 *      place between two reads, or a wrap of the word's pop field.)
 *  D3. A bulk allocation that cannot be served from its CPU's cache
 *      holds part of what it asked for while it looks for the rest, and
 *      gives it back if it fails: it does that inside a move of its own
 *      (alloc.c), so others wait for it rather than see those buffers
 *      missing, and its own look at the pool discounts that one move. A
 *      free that has not pushed yet is the application's, as is a buffer
 *      a pop is returning.
 *  D4. No one waits while holding a move another waiter may need: a
 *      caller with a move of its own in flight that sees another
 *      application call's move in flight too is told so (CBM_SEEN_RIVAL),
 *      gives back what it holds and starts over. Moves of the reclamation
 *      thread wait for nobody (transit.h, T4), so anyone may wait for them.
 *
 * The caller (alloc.c) loops: take from the global tier, else drain a
 * cache, else look here; CBM_SEEN_MOVING waits for the move (it holds no
 * lock and ends in bounded time unless its thread is preempted, so the
 * waiter yields, then sleeps, to let it run).
 */
#include "dry.h"

#include "pool.h"

struct collect {
	struct cbm_global_heads heads;
	uint64_t pops; /* sum of the caches' pop fields */
};

/* One look at every place; false as soon as one holds buffers. The
 * frontier is empty once spent, and stays so (frontier.h, F1); under a
 * heap's budget it is empty while closed (F6), which may end, and exists
 * moves when it does: the two collects compare it. A released list the
 * budget cannot pay from gives nothing either (global.h), and its head
 * moves when it changes. */
static bool
collect_empty(const struct cbm_pool *pool, struct collect *c)
{
	cbm_global_heads(&pool->global, &c->heads);
	if ((uint32_t)c->heads.freelist != CBM_NIL ||
	    (uint32_t)c->heads.full != CBM_NIL ||
	    ((uint32_t)c->heads.released != CBM_NIL &&
	     !c->heads.released_closed) ||
	    !c->heads.frontier_closed)
		return false;
	return cbm_caches_look_empty(&pool->caches, &c->pops);
}

enum cbm_seen
cbm_pool_look_dry(const struct cbm_pool *pool, uint32_t own)
{
	uint64_t t = cbm_transit_read_begin(&pool->global.transit);
	uint32_t moving = cbm_transit_in_flight(t);
	struct collect first, second;

	if (moving != own) {
		/* D4: never wait while holding buffers for another call that
		 * may be waiting for them. */
		if (own != 0 && (moving & ~CBM_TRANSIT_BY_RECLAIMER) > own)
			return CBM_SEEN_RIVAL;
		return CBM_SEEN_MOVING;
	}
	if (!collect_empty(pool, &first) || !collect_empty(pool, &second))
		return CBM_SEEN_SOMETHING;
	if (first.heads.freelist == second.heads.freelist &&
	    first.heads.full == second.heads.full &&
	    first.heads.released == second.heads.released &&
	    first.heads.frontier_exists == second.heads.frontier_exists &&
	    first.pops == second.pops &&
	    cbm_transit_read_end(&pool->global.transit, t)) /* D1 */
		return CBM_SEEN_DRY;
	return CBM_SEEN_SOMETHING;
}
