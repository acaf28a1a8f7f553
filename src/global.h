/*
 * The global tier as the caches see it: the block freelist plus the depot.
 * Moves buffers between slot arrays and the freelist, converting between
 * buffer pointers (what caches and magazines hold) and indices (what the freelist
 * links). Every function is safe from any thread at once.
 */
#ifndef CBM_GLOBAL_H
#define CBM_GLOBAL_H

#include <stdint.h>

struct cbm_pool;

/* Pop up to max buffers from the freelist into slots, with one CAS;
 * returns how many (0 when the freelist is empty). */
uint32_t cbm_global_fill_slots(struct cbm_pool *pool, void **slots,
			       uint32_t max);

/* Push n buffers the caller owns to the freelist, with one CAS. */
void cbm_global_spill_slots(struct cbm_pool *pool, void *const *slots,
			    uint32_t n);

/* One buffer from the freelist, else from a full depot magazine; NULL when
 * both are empty. For callers without a usable CPU cache. */
void *cbm_global_alloc_one(struct cbm_pool *pool);

/* One buffer, known to be block idx, onto the freelist. */
void cbm_global_free_one(struct cbm_pool *pool, uint32_t idx);

/* Total buffers in the global tier (approximate while busy). */
uint64_t cbm_global_count(const struct cbm_pool *pool);

#endif /* CBM_GLOBAL_H */
