/* SPDX-License-Identifier: MIT */
/*
 * A magazine: an array of up to pool->mag_size buffer pointers and a count
 * (Bonwick & Adams, "Magazines and Vmem", 2001).
 *
 * Contract: a magazine has one owner at a time, and only the owner reads or
 * writes its slots: the CPU cache that holds it (under that cache's lock),
 * or the thread that took it from the depot. The count is an atomic only so
 * that statistics may read it from elsewhere; the owner writes it with plain
 * relaxed stores.
 */
#ifndef CBM_MAGAZINE_H
#define CBM_MAGAZINE_H

#include <stdint.h>

#include "atomics.h"

struct cbm_mag {
	cbm_atomic_u32 count; /* slots[0 .. count-1] hold buffers */
	uint32_t id;	      /* index in the depot's magazine array */
	void *slots[];
};

static inline uint32_t
cbm_mag_count(const struct cbm_mag *m)
{
	return cbm_load_relaxed_u32(&m->count);
}

static inline void
cbm_mag_set_count(struct cbm_mag *m, uint32_t n)
{
	cbm_store_relaxed_u32(&m->count, n);
}

#endif /* CBM_MAGAZINE_H */
