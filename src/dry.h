/*
 * The NULL decision: whether a dry allocation may give up (dry.c).
 */
#ifndef CBM_DRY_H
#define CBM_DRY_H

#include <stdbool.h>

struct cbm_pool;

/*
 * true when, at one instant during the call, every place a free buffer can
 * be (freelist, depot, every CPU cache) was empty and no buffer was in
 * transit between them: every buffer not retired was then held by the
 * application, and cbm_alloc may return NULL. false means "look again":
 * something was there, or moved, or was moving. Never blocks; O(CPUs).
 */
bool cbm_pool_seen_dry(const struct cbm_pool *pool);

#endif /* CBM_DRY_H */
