/* SPDX-License-Identifier: MIT */
/*
 * The frontier: buffers never handed out yet, and the count of buffers
 * that exist. A pool reserves its arena for its ceiling (max) at create;
 * buffer i exists once i < exists, and from then on keeps its address and
 * index for the pool's life. No buffer is linked or touched before it is
 * first taken from here, so create costs O(1) whatever the ceiling.
 *
 * Invariants:
 *  F1. fresh <= exists <= max, and neither ever falls.
 *  F2. Buffers [fresh, exists) exist and are in no place of the pool: the
 *      frontier is the place that holds them. [0, fresh) were taken, each
 *      once, and are wherever the pool's other invariants say.
 *  F3. Take claims [f, f + k) with one CAS on fresh from f, having read
 *      exists >= f + k before it; exists never falls (F1), so what it
 *      claims exists, and two takers never claim the same buffer.
 *  F4. Growth raises exists with a CAS, only when fresh has reached it, by
 *      what the grower needs (never past max). Nothing else is needed to
 *      make a buffer exist: its memory is the arena's, zero until touched,
 *      and its side-array entries are written before they are read.
 *  F5. With a map hook (cbm_frontier_set_map), growth is serialized
 *      instead: a grower takes the growth lock, looks again (another may
 *      have grown meanwhile: it then claims as in F3), rounds the new
 *      count up to a multiple of step (never past max), calls map for the
 *      buffers it adds, and only then stores exists. So map has returned
 *      for every buffer before any thread can claim it (F3 reads exists
 *      first), and calls of map never overlap. The lock is taken only
 *      when every existing buffer was taken: claims stay one CAS.
 *  F6. With a budget (cbm_frontier_set_budget: a size-class heap's
 *      ceiling, budget.h), a growth first charges unit bytes per buffer it
 *      adds, and gives the charge back if its CAS on exists loses: exists
 *      x unit is then always charged, never more (B2). It grows in whole
 *      steps (a release group: arena.h), all it needs rounded up, or as
 *      many whole steps as the budget holds, at least one, or it adds none
 *      and the take returns 0; only the last step, cut by max, may be
 *      short. So exists stays a multiple of step (or max), and a caller
 *      that claims whole steps (global.c) leaves no group partly claimed:
 *      every group's memory can go back whole. Such a frontier may give nothing while below max and grow
 *      again later, when other pools gave memory back; "closed" (below)
 *      is the look the NULL decision takes at it.
 *
 * Ordering: both words are relaxed, but for the one load of exists a claim
 * reads (acquire) and the store of a hooked growth (release): that pair
 * makes what map did (its caller's bookkeeping, a kernel registration)
 * happen before the claim and everything its taker does with the buffer.
 * A buffer's index is published to another thread only by handing the
 * buffer over (through the caller's own synchronization, or the tiers'
 * release/acquire), which the claim happens-before; so a thread that
 * checks a pointer against exists (the free path's check, relaxed) reads
 * an exists at least as large as the claim saw.
 * exists is the pool's hot-line word (pool.h), which is why the frontier
 * holds a pointer to it: the free path reads it without a second line.
 */
#ifndef CBM_FRONTIER_H
#define CBM_FRONTIER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"
#include "budget.h"

/* Told that buffers [first, first + n) are about to be used (map) or that
 * their memory is about to go back to the OS (unmap): what a caller above
 * keeps in step with the buffers (pool.c: the application's region
 * callbacks). */
typedef void (*cbm_extent_fn)(void *arg, uint64_t first, uint64_t n);

struct cbm_frontier {
	cbm_atomic_u64 *exists; /* buffers that exist (the pool's hot line) */
	cbm_atomic_u64 fresh;	/* F2: [fresh, *exists) never handed out */
	uint64_t max;		/* the ceiling */
	cbm_atomic_u64 grows;	/* times exists was raised */
	/* F5: NULL, or called for each growth before it is published. */
	cbm_extent_fn map;
	void *map_arg;
	uint64_t step;		   /* a hooked growth ends at a multiple */
	pthread_mutex_t grow_lock; /* serializes hooked growth (F5) */
	/* F6: NULL, or charged unit bytes per buffer growth adds. */
	struct cbm_budget *budget;
	uint64_t unit;
};

/* initial buffers exist, none taken; at most max ever will. */
void cbm_frontier_init(struct cbm_frontier *f, cbm_atomic_u64 *exists,
		       uint64_t initial, uint64_t max);

/* From now on (before any take) growth calls map(arg, first, n) for the
 * buffers it adds, and grows to a multiple of step (> 0) or max (F5). */
void cbm_frontier_set_map(struct cbm_frontier *f, cbm_extent_fn map, void *arg,
			  uint64_t step);

/* Before any buffer exists: growth charges budget unit bytes per buffer
 * and grows in whole steps (F6). Not with a map hook. */
void cbm_frontier_set_budget(struct cbm_frontier *f, struct cbm_budget *budget,
			     uint64_t unit, uint64_t step);

/* Fork: hold the growth lock across fork() (after the caches: a grower may
 * hold one while it waits for the lock, never the other way round), so
 * that the child finds no growth half done. */
void cbm_frontier_fork_prepare(struct cbm_frontier *f);
void cbm_frontier_fork_after(struct cbm_frontier *f);

void cbm_frontier_fini(struct cbm_frontier *f);

/* Claim up to n (> 0) never-used buffers, raising exists when every
 * existing one was taken (F4): returns how many, the first in *first; 0
 * only when all max were taken. Lock-free without a map hook; with one, a
 * growth waits for the growth lock, so for the map hook of another (F5). */
uint32_t cbm_frontier_take(struct cbm_frontier *f, uint32_t n, uint32_t *first);

/* Buffers that exist and were never taken (F2), read relaxed. */
uint64_t cbm_frontier_unused(const struct cbm_frontier *f);

/* true once every one of max buffers was taken: from then on the frontier
 * never gives another (F1), so one look is a stable one. */
bool cbm_frontier_spent(const struct cbm_frontier *f);

/*
 * true when a take would give nothing now: every existing buffer was taken
 * and the frontier cannot grow (spent, or its budget cannot pay for one
 * more buffer: F6). Spent stays so; a budget's refusal may end, which is
 * why the NULL decision compares exists between its looks too (dry.c).
 */
bool cbm_frontier_closed(const struct cbm_frontier *f);

static inline uint64_t
cbm_frontier_exists(const struct cbm_frontier *f)
{
	return cbm_load_relaxed_u64(f->exists);
}

static inline uint64_t
cbm_frontier_taken(const struct cbm_frontier *f)
{
	return cbm_load_relaxed_u64(&f->fresh);
}

#endif /* CBM_FRONTIER_H */
