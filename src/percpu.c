/*
 * Per-CPU caches, portable mode (invariants P1-P4 in percpu.h).
 *
 * At most one trip in mag_size goes below this layer, whatever the pattern
 * of allocs and frees: after a refill the loaded magazine holds mag_size
 * buffers, or after a make-room it has mag_size free slots, and the previous
 * magazine is then the opposite (Bonwick & Adams), so mag_size operations in
 * one direction are needed before the next trip.
 */
#include "percpu.h"

#include <sched.h>

#include <ck_pr.h>

#include "depot.h"
#include "global.h"
#include "plant.h"
#include "pool.h"

void
cbm_cache_lock_wait(struct cbm_cpu_cache *c)
{
	unsigned spins = 0;

	while (!cbm_cache_trylock(c)) {
		/* The holder may be preempted on this very CPU: spin briefly
		 * (ck_pr_stall is the pause instruction, no memory access),
		 * then give the CPU away so that it can finish. */
		while (cbm_load_relaxed_u32(&c->lock) != 0) {
			if (++spins < 64)
				ck_pr_stall();
			else
				sched_yield();
		}
	}
}

static struct cbm_mag *
previous(struct cbm_cpu_cache *c)
{
	return atomic_load_explicit(&c->mags[c->cur ^ 1], memory_order_relaxed);
}

static void
set_previous(struct cbm_cpu_cache *c, struct cbm_mag *m)
{
	atomic_store_explicit(&c->mags[c->cur ^ 1], m, memory_order_relaxed);
}

static void
swap(struct cbm_cpu_cache *c)
{
	c->cur ^= 1;
}

bool
cbm_cache_refill_locked(struct cbm_pool *pool, struct cbm_cpu_cache *c)
{
	struct cbm_mag *prev = previous(c);
	struct cbm_mag *full;

	if (cbm_mag_count(prev) > 0) {
		swap(c);
		return true;
	}
	/* Both empty: trade the previous one for a full one, which becomes
	 * the loaded one; the old loaded (empty) becomes the previous. */
	full = cbm_depot_take_full(&pool->depot);
	if (full != NULL) {
		cbm_depot_give_empty(&pool->depot, prev);
		set_previous(c, full);
		swap(c);
		cbm_counter_add_owned(&c->depot_exchanges, 1);
		return true;
	}
	if (cbm_global_fill(pool, cbm_cache_loaded(c)) > 0) {
		cbm_counter_add_owned(&c->global_pops, 1);
		return true;
	}
	return false;
}

void
cbm_cache_make_room_locked(struct cbm_pool *pool, struct cbm_cpu_cache *c)
{
	struct cbm_mag *prev = previous(c);
	struct cbm_mag *empty;

	if (cbm_mag_count(prev) < pool->mag_size) {
		swap(c);
		return;
	}
	/* Both full: trade the previous one for an empty one, which becomes
	 * the loaded one; the old loaded (full) becomes the previous. */
	empty = cbm_depot_take_empty(&pool->depot);
	if (empty != NULL) {
		cbm_depot_give_full(&pool->depot, prev);
		set_previous(c, empty);
		swap(c);
		cbm_counter_add_owned(&c->depot_exchanges, 1);
		return;
	}
	cbm_global_spill(pool, prev);
	swap(c);
	cbm_counter_add_owned(&c->global_pushes, 1);
}

size_t
cbm_cache_drain_locked(struct cbm_pool *pool, struct cbm_cpu_cache *c)
{
	size_t moved = 0;

	for (int i = 0; i < 2; i++) {
		struct cbm_mag *m =
			atomic_load_explicit(&c->mags[i], memory_order_relaxed);
		uint32_t n = cbm_mag_count(m);
		struct cbm_mag *empty;

		if (n == 0)
			continue;
		moved += n;
		/* A full magazine goes to the depot whole, if an empty one
		 * can take its place; anything else is spilled. */
		if (n == pool->mag_size &&
		    (empty = cbm_depot_take_empty(&pool->depot)) != NULL) {
			cbm_depot_give_full(&pool->depot, m);
			atomic_store_explicit(&c->mags[i], empty,
					      memory_order_relaxed);
		} else {
			cbm_global_spill(pool, m);
		}
	}
	return moved;
}

size_t
cbm_cache_count(const struct cbm_cpu_cache *c)
{
	size_t n = 0;

	for (int i = 0; i < 2; i++) {
		const struct cbm_mag *m =
			atomic_load_explicit(&c->mags[i], memory_order_relaxed);

		n += cbm_mag_count(m);
	}
	return n;
}

size_t
cbm_caches_drain(struct cbm_pool *pool, bool stop_early)
{
	size_t moved = 0;

	for (unsigned i = 0; i < pool->ncaches; i++) {
		struct cbm_cpu_cache *c = &pool->cpus[i];

		/* Skip a cache that is visibly empty without taking its lock
		 * (a racy read: at worst one drain too few under load). */
		if (cbm_cache_count(c) == 0)
			continue;
		if (CBM_PLANTED(CBM_PLANT_TRIM_NO_LOCK)) {
			moved += cbm_cache_drain_locked(pool, c);
		} else {
			cbm_cache_lock_wait(c);
			moved += cbm_cache_drain_locked(pool, c);
			cbm_cache_unlock(c);
		}
		if (stop_early && moved > 0)
			break;
	}
	return moved;
}
