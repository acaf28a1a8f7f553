/* SPDX-License-Identifier: MIT */
/*
 * A byte budget several pools share: the ceiling of a size-class heap
 * (heap.c), which bounds the bytes of buffers all its classes hold from
 * the OS together. A pool charges it before it makes memory its own (a
 * growth of the frontier, frontier.c; a released group taken back,
 * global.c) and gives it back when the memory goes to the OS (a release
 * group put on the released list). A pool with no budget (NULL) is bound
 * only by its own ceiling.
 *
 * Invariants:
 *  B1. used <= limit at every instant: a charge is one CAS from a value
 *      it read, made only when the result stays within limit.
 *  B2. used is the sum of what was charged and not given back: a charge
 *      that its caller cannot use (a lost race) is given back at once,
 *      so used never drifts from the bytes the pools hold.
 *
 * Ordering: relaxed throughout. The budget orders no memory of its own:
 * what a charge allows (a growth, a reuse) is published by the frontier's
 * and the stacks' own release/acquire pairs, and a stale read only makes a
 * charge fail (the caller then treats the class as at its ceiling, which
 * the NULL decision double-checks: dry.c) or retry its CAS.
 */
#ifndef CBM_BUDGET_H
#define CBM_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"

struct cbm_budget {
	cbm_atomic_u64 used; /* B2: bytes charged, not given back */
	uint64_t limit;	     /* B1 */
};

static inline void
cbm_budget_init(struct cbm_budget *b, uint64_t limit)
{
	cbm_store_relaxed_u64(&b->used, 0);
	b->limit = limit;
}

/* Charge as many whole units as fit, at most want bytes (a multiple of
 * unit > 0): returns the bytes charged, 0 when not one unit fits. */
static inline uint64_t
cbm_budget_take_up_to(struct cbm_budget *b, uint64_t want, uint64_t unit)
{
	uint64_t used = cbm_load_relaxed_u64(&b->used);

	for (;;) {
		uint64_t room = used < b->limit ? b->limit - used : 0;
		uint64_t take = want < room ? want : room - room % unit;

		if (take == 0)
			return 0;
		/* B1: from the value read, within limit. */
		if (cbm_cas_weak_relaxed_u64(&b->used, &used, used + take))
			return take;
	}
}

/* Charge exactly bytes, or nothing: false when they do not fit. */
static inline bool
cbm_budget_take(struct cbm_budget *b, uint64_t bytes)
{
	return bytes == 0 || cbm_budget_take_up_to(b, bytes, bytes) == bytes;
}

/* B2: give back bytes charged earlier. */
static inline void
cbm_budget_give(struct cbm_budget *b, uint64_t bytes)
{
	if (bytes != 0)
		cbm_fetch_sub_relaxed_u64(&b->used, bytes);
}

/* Whether a charge of bytes would fit now (a racy look). */
static inline bool
cbm_budget_affords(const struct cbm_budget *b, uint64_t bytes)
{
	uint64_t used = cbm_load_relaxed_u64(&b->used);

	return used <= b->limit && b->limit - used >= bytes;
}

static inline uint64_t
cbm_budget_used(const struct cbm_budget *b)
{
	return cbm_load_relaxed_u64(&b->used);
}

#endif /* CBM_BUDGET_H */
