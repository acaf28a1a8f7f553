/* SPDX-License-Identifier: MIT */
/*
 * Giving memory back to the OS: the policy (which free buffers, and when)
 * and the pass that does it. The mechanism's places are the global tier's
 * (global.h: the released list; arena.h: release groups and their pages).
 *
 * Invariants:
 *  L1. Only buffers in the global tier's freelist or full magazines are
 *      released, never one in a CPU cache, retired or held: a pass takes
 *      them out of the tier (a move, transit.h T1) before it touches their
 *      pages, and they are in no one else's hands until it puts them back.
 *  L2. Pages go back (madvise) before their group is published on the
 *      released list, and the group's buffers are handed out only after a
 *      pop from that list: so no page is released under a buffer anyone
 *      can reach, and what a holder writes is never lost. The unmap hook
 *      (global.h) hears of a group before its madvise, while the pass
 *      still owns it; the map hook, after the pop that ends its release.
 *  L3. Only whole release groups go (arena.h): for buffers smaller than a
 *      page, pages all of whose buffers were taken out together; for larger
 *      ones, the pages wholly inside a buffer. The other buffers taken out
 *      go back to the freelist in the same move.
 *  L4. The background policy releases, every release_ms / 4, at most the
 *      fewest buffers the freelist and depot held during the last release_ms
 *      (four quarter windows' low water, global.h): that many stayed free
 *      the whole time, so the pool gives back what it did not need and no
 *      more, within release_ms and a quarter of it after they came.
 *
 * The background pass runs in the reclamation thread with the registry
 * locked (reclaim.c); cbm_pool_release runs in the caller's thread. Both
 * may run at once: each owns what it took out.
 */
#ifndef CBM_RELEASE_H
#define CBM_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "global.h"

struct cbm_release {
	unsigned ms; /* CBM_RELEASE_OFF: only when asked */
	bool never;  /* explicit huge pages: nothing can go */
	/* The reclamation thread's alone. */
	uint64_t window_start_ms;
	uint64_t low_prev[3];	 /* the three quarter windows before */
	cbm_atomic_u64 releases; /* passes and calls that gave back */
};

/* The first tick starts the first window. */
void cbm_release_init(struct cbm_release *r, unsigned ms, bool never);

/* The background policy (L4). Reclamation thread, registry locked. */
void cbm_release_tick(struct cbm_release *r, struct cbm_global *g,
		      uint64_t now_ms);

/* Give back the pages of up to max free buffers of the global tier now;
 * returns the bytes given back. *taken, when not NULL, is how many buffers
 * went to the released list. Any thread. */
size_t cbm_release_now(struct cbm_release *r, struct cbm_global *g,
		       uint64_t max, uint64_t *taken);

#endif /* CBM_RELEASE_H */
