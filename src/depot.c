/* SPDX-License-Identifier: MIT */
/*
 * The depot (see depot.h for its invariants). Magazines are named by their
 * index so that the stacks are tagged-index istacks: one 64-bit CAS each, and
 * ABA-safe (istack.c, I1).
 */
#include "depot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "compiler.h"
#include "contract.h"

int
cbm_depot_init(struct cbm_depot *d, uint32_t nmags, uint32_t mag_size)
{
	size_t bytes =
		sizeof(struct cbm_mag) + (size_t)mag_size * sizeof(void *);

	/* Each magazine on its own lines: two CPUs never write the same one. */
	bytes = (bytes + CBM_CACHELINE - 1) & ~(size_t)(CBM_CACHELINE - 1);
	memset(d, 0, sizeof(*d));
	d->mag_bytes = bytes;
	d->nmags = nmags;
	d->mag_size = mag_size;
	/* Reserved, not committed (arena.h): a magazine's lines are touched
	 * when it is minted. */
	d->mags = cbm_reserve(bytes * nmags);
	d->links = cbm_reserve(sizeof(*d->links) * nmags);
	if (d->mags == NULL || d->links == NULL) {
		cbm_depot_fini(d);
		return -ENOMEM;
	}
	cbm_istack_init(&d->full);
	cbm_istack_init(&d->empty);
	cbm_store_relaxed_u32(&d->minted, 0);
	return 0;
}

void
cbm_depot_fini(struct cbm_depot *d)
{
	cbm_unreserve(d->mags, d->mag_bytes * d->nmags);
	cbm_unreserve(d->links, sizeof(*d->links) * d->nmags);
	d->mags = NULL;
	d->links = NULL;
}

/* A magazine never used before, or NULL when all nmags were. Claimed by a
 * CAS on minted, so each id is minted once; its memory is zero until then
 * (a reservation), and the minter owns it. */
static struct cbm_mag *
mint(struct cbm_depot *d)
{
	uint32_t id = cbm_load_relaxed_u32(&d->minted);
	struct cbm_mag *m;

	do {
		if (id >= d->nmags)
			return NULL;
	} while (!cbm_cas_weak_relaxed_u32(&d->minted, &id, id + 1));
	m = cbm_depot_mag(d, id);
	cbm_mag_set_count(m, 0);
	m->id = id;
	return m;
}

static struct cbm_mag *
take(struct cbm_depot *d, struct cbm_istack *s)
{
	uint32_t id = cbm_istack_pop(s, d->links);

	return id == CBM_NIL ? NULL : cbm_depot_mag(d, id);
}

struct cbm_mag *
cbm_depot_take_full(struct cbm_depot *d)
{
	return take(d, &d->full);
}

struct cbm_mag *
cbm_depot_take_empty(struct cbm_depot *d)
{
	struct cbm_mag *m = take(d, &d->empty);

	return m != NULL ? m : mint(d);
}

void
cbm_depot_give_full(struct cbm_depot *d, struct cbm_mag *m)
{
	/* depot.h: a full magazine holds exactly mag_size buffers. */
	CBM_ASSERT(cbm_mag_count(m) == d->mag_size);
	cbm_istack_push(&d->full, d->links, m->id);
}

void
cbm_depot_give_empty(struct cbm_depot *d, struct cbm_mag *m)
{
	CBM_ASSERT(cbm_mag_count(m) == 0); /* depot.h */
	cbm_istack_push(&d->empty, d->links, m->id);
}
