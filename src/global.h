/* SPDX-License-Identifier: MIT */
/*
 * The global tier: the buffer freelist, the depot of magazines, the
 * released list and the frontier behind one interface. Only this tier
 * knows they exist (and the audits that walk them, verify.c and stats.c);
 * the caches ask for runs and give back runs, and this file alone decides
 * where they come from and go:
 *
 *   - A run of a magazine's size goes to the depot as a full magazine
 *     when an empty one can be had, and comes from the depot, whole, when a
 *     full one is there: one CAS moves mag_size buffers.
 *   - Anything else is a chain on the freelist (one CAS for the chain).
 *   - A single buffer for a caller without a cache comes off the freelist;
 *     when that is empty, a full magazine is split onto it.
 *   - When the freelist and the depot are empty, buffers come from the
 *     released list (release groups whose pages went back to the OS,
 *     release.c), and then from the frontier (frontier.h), which makes
 *     more buffers exist while the pool is below its ceiling. Free buffers
 *     never go back to either: a released group taken is whole again, a
 *     buffer taken from the frontier is like any other.
 *
 * Moves between places (transit.h, T1): the caller of take_run / put_run
 * has begun the move the run belongs to (its destination is the caller's
 * cache); alloc_one brackets its own. Every function is safe from any
 * thread at once (the stacks are mpmc, istack.h).
 *
 * Invariant: buffers enter the freelist only as whole blocks the caller
 * owns, and leave it only by a successful pop, so the freelist's invariants
 * (istack.c) carry over: no buffer is ever in the freelist twice, or in it
 * and in a magazine at once.
 */
#ifndef CBM_GLOBAL_H
#define CBM_GLOBAL_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "depot.h"
#include "frontier.h"
#include "istack.h"
#include "transit.h"

struct cbm_global {
	struct cbm_istack freelist; /* buffer indices; head on its own line */
	struct cbm_depot depot;
	/* Release groups whose pages went back to the OS, named by their first
	 * buffer and linked through it (arena.h, "Release groups"). */
	struct cbm_istack released;
	struct cbm_frontier frontier; /* never-used buffers (frontier.h) */
	/* Moves between places in flight, and how many ended (transit.h). */
	struct cbm_transit transit;
	cbm_atomic_u32 *links; /* per buffer: freelist and retired links */
	const struct cbm_blocks *blocks;
	uint32_t mag_size;
	/* The fewest buffers the freelist and depot held since the release
	 * policy last looked (cbm_global_low_water): those stayed free all
	 * along. Lowered after every take, with a CAS. */
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 low_water;
	cbm_atomic_u64 released_bytes;	 /* pages given back, not yet reused */
	cbm_atomic_u64 released_buffers; /* in released groups */
	/* NULL, or told of each release group before its pages go (unmap)
	 * and before a released one is handed out again (map): see
	 * cbm_global_set_hooks. */
	cbm_extent_fn map, unmap;
	void *hook_arg;
	/* NULL, or the budget the tier's memory is charged to (budget.h):
	 * growth pays through the frontier (F6); a released group taken
	 * back pays for its pages, and a group put on the released list
	 * gives them back (cbm_global_set_budget). */
	struct cbm_budget *budget;
};

/* How a run moved, for the caches' counters. */
enum cbm_run_kind {
	CBM_RUN_NONE = 0,
	CBM_RUN_MAGAZINE, /* a whole magazine, to or from the depot */
	CBM_RUN_CHAIN,	  /* a chain, to or from the freelist */
};

/*
 * Set up the tier: nmags empty magazines (minted as first needed), an empty
 * freelist, and a frontier of initial buffers that may grow to the
 * blocks' max; links has an entry per buffer up to max, and *exists is the
 * word that counts the buffers that exist (frontier.h). O(1). Returns 0 or
 * -ENOMEM.
 */
int cbm_global_init(struct cbm_global *g, const struct cbm_blocks *blocks,
		    cbm_atomic_u32 *links, cbm_atomic_u64 *exists,
		    uint64_t initial, uint32_t nmags, uint32_t mag_size);
void cbm_global_fini(struct cbm_global *g);

/*
 * Before any buffer is taken: map(arg, first, n) is called for buffers
 * that are about to be handed out for the first time (a growth, before it
 * is published: frontier.h, F5, which also makes growth end at a multiple
 * of step) or for the first time since their memory went back to the OS
 * (a released group, popped, before any of it is handed out or spilled);
 * unmap(arg, first, n) for a release group before its pages go
 * (cbm_global_unmapping, release.h, L2). Both or neither.
 */
void cbm_global_set_hooks(struct cbm_global *g, cbm_extent_fn map,
			  cbm_extent_fn unmap, void *arg, uint64_t step);

/*
 * Before any buffer exists or is taken: charge budget for the tier's
 * memory. Growth pays stride bytes a buffer (frontier.h, F6); taking a
 * released group back pays for its pages, up front the most any group
 * has (group x stride rounded down to pages) with what it does not need
 * given back at once; putting a group on the released list gives its
 * pages back. So budget's used is, for this tier, exists x stride less
 * the released bytes (B2). Not with hooks (one or the other).
 */
void cbm_global_set_budget(struct cbm_global *g, struct cbm_budget *budget);

/* false when the tier certainly holds a buffer; true when it looks empty
 * (a racy look, for deciding whether to begin a move: T3). */
bool cbm_global_looks_empty(const struct cbm_global *g);

/* Take up to max (<= mag_size) buffers into slots; returns how many (0:
 * the tier is empty) and sets *kind. Within the caller's move. */
uint32_t cbm_global_take_run(struct cbm_global *g, void **slots, uint32_t max,
			     enum cbm_run_kind *kind);

/* Give n buffers the caller owns; returns how they went. Within the
 * caller's move. */
enum cbm_run_kind cbm_global_put_run(struct cbm_global *g, void *const *slots,
				     uint32_t n);

/* One buffer, NULL when the tier is empty. For callers without a usable
 * cache; a move of its own when it splits a magazine. */
void *cbm_global_alloc_one(struct cbm_global *g);

/* One buffer, known to be block idx, onto the freelist. */
void cbm_global_free_one(struct cbm_global *g, uint32_t idx);

/* Push a chain first -> ... -> last of n buffers, already linked through
 * links, onto the freelist (reclaimed batches). */
void cbm_global_free_chain(struct cbm_global *g, uint32_t first, uint32_t last,
			   uint32_t n);

/* Total buffers in the tier, released and never used ones included
 * (approximate while busy). */
uint64_t cbm_global_count(const struct cbm_global *g);

/* Buffers on the freelist and in the depot's full magazines: the free
 * buffers whose memory is resident (approximate while busy). */
uint64_t cbm_global_resident_count(const struct cbm_global *g);

/* Buffers in released groups. */
uint64_t cbm_global_released_count(const struct cbm_global *g);

/* The heads of the freelist, the depot's full stack and the released list,
 * read with acquire, for a look at whether the tier is empty (dry.c): the
 * index half is CBM_NIL when each is empty, and the tag half moves on every
 * change; and whether the frontier is spent (it then stays so). */
struct cbm_global_heads {
	uint64_t freelist, full, released;
	/* The frontier gives nothing now (cbm_frontier_closed), and how many
	 * buffers existed: a closed frontier that grew between two looks
	 * was not closed throughout. */
	bool frontier_closed;
	uint64_t frontier_exists;
	/* With a budget: the released list's groups cannot be paid for now
	 * (the most pages a group has do not fit), so none would be taken. */
	bool released_closed;
};
void cbm_global_heads(const struct cbm_global *g, struct cbm_global_heads *h);

/* ---- for the release policy (release.c) ---- */

/* The fewest buffers the freelist and depot held since the last call, and
 * start counting again from what they hold now less forget (buffers the
 * caller is about to take out and give back). */
uint64_t cbm_global_low_water(struct cbm_global *g, uint64_t forget);

/* Take up to max free buffers from the freelist and the depot's full
 * magazines into idx, within the caller's move; returns how many. */
uint32_t cbm_global_take_resident(struct cbm_global *g, uint32_t *idx,
				  uint32_t max);

/* Release group `group` (whose buffers the caller owns) is about to give
 * its pages back: the unmap hook, if any. */
void cbm_global_unmapping(struct cbm_global *g, uint32_t group);

/* Release group g (whose pages the caller gave back, and whose buffers it
 * owns) onto the released list. */
void cbm_global_put_released(struct cbm_global *g, uint32_t group);

/* Put n owned buffers idx[0..n) back on the freelist as one chain. */
void cbm_global_put_back(struct cbm_global *g, const uint32_t *idx, uint32_t n);

#endif /* CBM_GLOBAL_H */
