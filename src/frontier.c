/* SPDX-License-Identifier: MIT */
/*
 * The frontier (frontier.h, where its invariants F1-F4 are argued).
 */
#include "frontier.h"

#include "contract.h"
#include "plant.h"

void
cbm_frontier_init(struct cbm_frontier *f, cbm_atomic_u64 *exists,
		  uint64_t initial, uint64_t max)
{
	CBM_ASSERT(initial <= max);
	f->exists = exists;
	f->max = max;
	cbm_store_relaxed_u64(exists, initial);
	cbm_store_relaxed_u64(&f->fresh, 0);
	cbm_store_relaxed_u64(&f->grows, 0);
}

uint32_t
cbm_frontier_take(struct cbm_frontier *f, uint32_t n, uint32_t *first)
{
	CBM_ASSERT(n > 0);
	for (;;) {
		uint64_t taken = cbm_load_relaxed_u64(&f->fresh);
		uint64_t exists = cbm_load_relaxed_u64(f->exists);
		uint64_t want;

		if (taken < exists) {
			uint64_t k = exists - taken < n ? exists - taken : n;

			/* F3: one CAS claims [taken, taken + k). */
			if (cbm_cas_weak_relaxed_u64(&f->fresh, &taken,
						     taken + k)) {
				*first = (uint32_t)taken;
				return (uint32_t)k;
			}
			continue;
		}
		if (exists >= f->max)
			return 0;
		/* F4: every existing buffer was taken; make n more exist.
		 * A grower that loses the CAS finds them made by another. */
		CBM_YIELD_AT(CBM_SITE_GROWING);
		if (CBM_PLANTED(CBM_PLANT_GROW_PAST_CEILING)) {
			/* The bug: grow by an add, trusting the look above. */
			cbm_fetch_add_relaxed_u64(f->exists, n);
			continue;
		}
		want = f->max - exists < n ? f->max : exists + n;
		if (cbm_cas_weak_relaxed_u64(f->exists, &exists, want))
			cbm_fetch_add_relaxed_u64(&f->grows, 1);
	}
}

uint64_t
cbm_frontier_unused(const struct cbm_frontier *f)
{
	/* fresh first: exists read after it is at least as large (F1). */
	uint64_t taken = cbm_load_relaxed_u64(&f->fresh);

	return cbm_load_relaxed_u64(f->exists) - taken;
}

bool
cbm_frontier_spent(const struct cbm_frontier *f)
{
	return cbm_load_relaxed_u64(&f->fresh) >= f->max;
}
