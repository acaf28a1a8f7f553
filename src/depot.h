/* SPDX-License-Identifier: MIT */
/*
 * The depot: lock-free stacks of full and of empty magazines, shared by all
 * CPUs, so that a CPU trades a whole magazine (mag_size buffers) per CAS.
 *
 * Invariants:
 *  - A magazine on the full stack holds exactly mag_size buffers; one on the
 *    empty stack holds none. A magazine is on at most one stack, and while it
 *    is on one, nobody else owns it.
 *  - The magazines are reserved once, with the pool: enough for every
 *    buffer the pool may grow to to sit in a full one, one per cache for
 *    magazines in flight in slow paths, and one spare. They are minted
 *    (numbered and touched) only when the empty stack runs out, so a pool
 *    pays memory for the magazines it used, not for its ceiling: magazines
 *    [0, minted) exist, each on a stack or owned, and minted never falls.
 *    So a cache that needs an empty magazine normally finds one; when it
 *    does not, it spills to the freelist instead, and nothing depends on
 *    finding one.
 *
 * Every function is safe from any thread at once (istack is mpmc).
 */
#ifndef CBM_DEPOT_H
#define CBM_DEPOT_H

#include <stddef.h>
#include <stdint.h>

#include "istack.h"
#include "magazine.h"

struct cbm_depot {
	struct cbm_istack full;
	struct cbm_istack empty;
	cbm_atomic_u32 *links; /* one per magazine */
	char *mags;	       /* nmags magazines, mag_bytes apart */
	size_t mag_bytes;
	uint32_t nmags;
	uint32_t mag_size;
	cbm_atomic_u32 minted; /* magazines [0, minted) exist */
};

/* Reserve nmags empty magazines of mag_size slots, none minted yet. O(1).
 * Returns 0 or -ENOMEM. */
int cbm_depot_init(struct cbm_depot *d, uint32_t nmags, uint32_t mag_size);
void cbm_depot_fini(struct cbm_depot *d);

static inline struct cbm_mag *
cbm_depot_mag(const struct cbm_depot *d, uint32_t id)
{
	return (struct cbm_mag *)(d->mags + (size_t)id * d->mag_bytes);
}

/* Take a full (resp. empty) magazine, or NULL when there is none. */
struct cbm_mag *cbm_depot_take_full(struct cbm_depot *d);
struct cbm_mag *cbm_depot_take_empty(struct cbm_depot *d);

/* Give back a magazine the caller owns; full means count == mag_size,
 * empty means count == 0. */
void cbm_depot_give_full(struct cbm_depot *d, struct cbm_mag *m);
void cbm_depot_give_empty(struct cbm_depot *d, struct cbm_mag *m);

/* Magazines minted so far. */
static inline uint32_t
cbm_depot_minted(const struct cbm_depot *d)
{
	return cbm_load_relaxed_u32(&d->minted);
}

/* Bytes of magazines minted so far. */
static inline size_t
cbm_depot_minted_bytes(const struct cbm_depot *d)
{
	return (size_t)cbm_depot_minted(d) * d->mag_bytes +
	       (size_t)cbm_depot_minted(d) * sizeof(*d->links);
}

/* Full magazines on the depot (approximate while busy). */
static inline uint64_t
cbm_depot_full_count(const struct cbm_depot *d)
{
	return cbm_istack_count(&d->full);
}

#endif /* CBM_DEPOT_H */
