/* SPDX-License-Identifier: MIT */
/* The audit behind cbm_pool_verify (verify.c). */
#ifndef CBM_VERIFY_H
#define CBM_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

struct cbm_pool;

/*
 * Audit a pool. With accounting, as cbm_pool_verify. Without, only the
 * structures: no buffer or magazine in two places, every link and slot
 * names a buffer (counts are not compared with lengths). That much holds even where some
 * buffers are between two places for good (a fork child, whose parent had
 * other threads inside library calls). Returns 0 or -EUCLEAN.
 */
int cbm_verify(const struct cbm_pool *pool, bool accounting);

/* The same walk without accounting, into seen (capacity + 1 bytes,
 * zeroed, capacity as cbm_pool_capacity reads it):
 * seen[i] nonzero for each buffer found in the pool, so the others are
 * held. 0, -EUCLEAN (printed) or -ENOMEM. */
int cbm_verify_places(const struct cbm_pool *pool, uint8_t *seen);

#endif /* CBM_VERIFY_H */
