/* SPDX-License-Identifier: MIT */
/*
 * The frontier (frontier.h, where its invariants F1-F6 are argued).
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
	f->map = NULL;
	f->map_arg = NULL;
	f->step = 1;
	f->budget = NULL;
	f->unit = 0;
	pthread_mutex_init(&f->grow_lock, NULL);
}

void
cbm_frontier_fini(struct cbm_frontier *f)
{
	pthread_mutex_destroy(&f->grow_lock);
}

void
cbm_frontier_set_map(struct cbm_frontier *f, cbm_extent_fn map, void *arg,
		     uint64_t step)
{
	CBM_ASSERT(step > 0 && f->budget == NULL);
	f->map = map;
	f->map_arg = arg;
	f->step = step;
}

void
cbm_frontier_set_budget(struct cbm_frontier *f, struct cbm_budget *budget,
			uint64_t unit, uint64_t step)
{
	CBM_ASSERT(unit > 0 && step > 0 && f->map == NULL);
	CBM_ASSERT(cbm_load_relaxed_u64(f->exists) == 0);
	f->budget = budget;
	f->unit = unit;
	f->step = step;
}

void
cbm_frontier_fork_prepare(struct cbm_frontier *f)
{
	if (f->map != NULL)
		pthread_mutex_lock(&f->grow_lock);
}

void
cbm_frontier_fork_after(struct cbm_frontier *f)
{
	if (f->map != NULL)
		pthread_mutex_unlock(&f->grow_lock);
}

/* F5: under the lock, look again; if every existing buffer is still taken
 * and the ceiling is not reached, map what growth adds, then publish it. */
static void
grow_hooked(struct cbm_frontier *f, uint32_t n)
{
	uint64_t exists, want;

	pthread_mutex_lock(&f->grow_lock);
	exists = cbm_load_relaxed_u64(f->exists); /* only growers write it */
	if (cbm_load_relaxed_u64(&f->fresh) < exists || exists >= f->max) {
		pthread_mutex_unlock(&f->grow_lock);
		return; /* grown by another meanwhile, or at the ceiling */
	}
	want = f->max - exists < n ? f->max : exists + n;
	/* Up to the next multiple of step, within max. */
	want = want + (f->step - want % f->step) % f->step;
	if (want > f->max)
		want = f->max;
	if (CBM_PLANTED(CBM_PLANT_MAP_AFTER_PUBLISH)) /* against F5: the bug */
		cbm_store_release_u64(f->exists, want);
	/* The lock held, the new buffers not yet published. */
	CBM_YIELD_AT(CBM_SITE_MAPPING);
	f->map(f->map_arg, exists, want - exists);
	/* Release: pairs with the claim's acquire load of exists (take), so
	 * what map did happens before any claim of the buffers it covers. */
	cbm_store_release_u64(f->exists, want);
	cbm_fetch_add_relaxed_u64(&f->grows, 1);
	pthread_mutex_unlock(&f->grow_lock);
}

/*
 * F6: pay for a growth from exists (a multiple of step) to *want, rounded
 * up to a multiple of step or max; as many whole steps as the budget
 * holds if not all (*want lowered to match). Returns the bytes charged, 0
 * when not one step fits.
 */
static uint64_t
grow_charge(struct cbm_frontier *f, uint64_t exists, uint64_t *want)
{
	uint64_t to = *want + (f->step - *want % f->step) % f->step;
	uint64_t step_bytes = f->step * f->unit, charged;

	if (to > f->max)
		to = f->max;
	if (CBM_PLANTED(CBM_PLANT_UNPAID_GROWTH)) { /* the bug: plant.h */
		*want = to;
		return (to - exists) * f->unit;
	}
	/* All of it (which may end at max, short of a whole step). */
	if (cbm_budget_take(f->budget, (to - exists) * f->unit)) {
		*want = to;
		return (to - exists) * f->unit;
	}
	/* Else whole steps only, so that the frontier stays on them. */
	charged = cbm_budget_take_up_to(
		f->budget, (to - exists) / f->step * step_bytes, step_bytes);
	*want = exists + charged / f->unit;
	return charged;
}

uint32_t
cbm_frontier_take(struct cbm_frontier *f, uint32_t n, uint32_t *first)
{
	CBM_ASSERT(n > 0);
	for (;;) {
		uint64_t taken = cbm_load_relaxed_u64(&f->fresh);
		/* Acquire: pairs with a hooked growth's release store (F5). */
		uint64_t exists = cbm_load_acquire_u64(f->exists);
		uint64_t want, charged = 0;

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
		if (f->map != NULL) {
			grow_hooked(f, n);
			continue;
		}
		if (CBM_PLANTED(CBM_PLANT_GROW_PAST_CEILING)) {
			/* The bug: grow by an add, trusting the look above. */
			cbm_fetch_add_relaxed_u64(f->exists, n);
			continue;
		}
		want = f->max - exists < n ? f->max : exists + n;
		if (f->budget != NULL) {
			charged = grow_charge(f, exists, &want);
			if (charged == 0)
				return 0;
		}
		if (cbm_cas_weak_relaxed_u64(f->exists, &exists, want))
			cbm_fetch_add_relaxed_u64(&f->grows, 1);
		else if (f->budget != NULL &&
			 !CBM_PLANTED(CBM_PLANT_UNPAID_GROWTH))
			cbm_budget_give(f->budget, charged); /* F6, B2 */
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

bool
cbm_frontier_closed(const struct cbm_frontier *f)
{
	/* fresh first: exists read after it is at least as large (F1). */
	uint64_t taken = cbm_load_relaxed_u64(&f->fresh);
	uint64_t exists = cbm_load_relaxed_u64(f->exists);

	if (taken < exists)
		return false;
	if (exists >= f->max)
		return true;
	/* The least a growth charges: a whole step, or what is left to max
	 * (F6). */
	return f->budget != NULL &&
	       !cbm_budget_affords(
		       f->budget,
		       (f->max - exists < f->step ? f->max - exists : f->step) *
			       f->unit);
}
