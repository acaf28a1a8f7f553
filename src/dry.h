/* SPDX-License-Identifier: MIT */
/*
 * The NULL decision: whether a dry allocation may give up (dry.c).
 */
#ifndef CBM_DRY_H
#define CBM_DRY_H

#include <stdbool.h>

struct cbm_pool;

#include <stdint.h>

/* What a look at a pool that seemed empty saw (dry.c). */
enum cbm_seen {
	CBM_SEEN_DRY,	    /* at one instant every place was empty and
			       nothing but the caller's own moves in flight:
			       every buffer not retired was held by the
			       application (or by the caller) */
	CBM_SEEN_SOMETHING, /* a buffer, or a move that ended: look again */
	CBM_SEEN_MOVING,    /* a move in flight that will end without
			       waiting for the caller: wait for it */
	CBM_SEEN_RIVAL,	    /* the caller has a move of its own in flight
			       and so does another application call: each
			       may be waiting for what the other holds, so
			       the caller must give back and start over */
};

/*
 * Look whether the pool is dry. own is what the caller's own moves in
 * flight add to the transit word (0, or CBM_MOVER_APPLICATION for a bulk
 * allocation gathering buffers). Never blocks; O(CPUs).
 */
enum cbm_seen cbm_pool_look_dry(const struct cbm_pool *pool, uint32_t own);

#endif /* CBM_DRY_H */
