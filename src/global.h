/*
 * The global tier as the caches see it: the block freelist plus the depot.
 * Moves buffers between magazines and the freelist, converting between
 * buffer pointers (what magazines hold) and indices (what the freelist
 * links). Every function is safe from any thread at once.
 */
#ifndef CBM_GLOBAL_H
#define CBM_GLOBAL_H

#include <stdint.h>

#include "magazine.h"

struct cbm_pool;

/* Fill an empty magazine the caller owns from the freelist, with one CAS;
 * returns how many buffers it got (0 when the freelist is empty). */
uint32_t cbm_global_fill(struct cbm_pool *pool, struct cbm_mag *m);

/* Push every buffer of a magazine the caller owns to the freelist, with one
 * CAS; the magazine is left empty. */
void cbm_global_spill(struct cbm_pool *pool, struct cbm_mag *m);

/* One buffer from the freelist, else from a full depot magazine; NULL when
 * both are empty. For callers without a usable CPU cache. */
void *cbm_global_alloc_one(struct cbm_pool *pool);

/* One buffer, known to be block idx, onto the freelist. */
void cbm_global_free_one(struct cbm_pool *pool, uint32_t idx);

/* Total buffers in the global tier (approximate while busy). */
uint64_t cbm_global_count(const struct cbm_pool *pool);

#endif /* CBM_GLOBAL_H */
