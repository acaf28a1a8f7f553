/* SPDX-License-Identifier: MIT */
/*
 * Idle trim (trim.c): the reclamation thread drains the caches of CPUs
 * that stopped allocating. Its state, one entry per cache, is touched only
 * by that thread with the registry lock held (reclaim.c).
 */
#ifndef CBM_TRIM_H
#define CBM_TRIM_H

#include <stdint.h>

#include "atomics.h"
#include "percpu.h"

struct cbm_trim {
	unsigned idle_ms;	    /* CBM_IDLE_TRIM_OFF: never */
	uint64_t *seen_ops;	    /* each cache's allocs + frees, last seen */
	uint64_t *quiet_since_ms;   /* when they last changed */
	cbm_atomic_u64 idle_drains; /* buffers drained (cbm_stats) */
};

/* Bookkeeping for caches->ncaches caches, quiet from now_ms. Returns 0 or
 * -ENOMEM. */
int cbm_trim_init(struct cbm_trim *t, const struct cbm_caches *caches,
		  unsigned idle_ms, uint64_t now_ms);
void cbm_trim_fini(struct cbm_trim *t);

/* Drain the caches that have been idle for idle_ms, and fold the pops of
 * busy ones in time. The reclamation thread, registry locked. */
void cbm_trim_idle_caches(struct cbm_trim *t, struct cbm_caches *caches,
			  uint64_t now_ms);

#endif /* CBM_TRIM_H */
