/*
 * Idle trim: the reclamation thread drains the caches of CPUs that stopped
 * allocating, so memory is not stranded on CPUs the server no longer runs on.
 *
 * Idleness costs the fast path nothing: the thread samples each cache's
 * operation counters (allocs + frees, which the fast path keeps anyway) and
 * remembers when they last changed. A cache whose counters have not moved
 * for idle_trim_ms, and that holds buffers, is drained.
 *
 * Protocol: the drain takes the cache as any drainer does (cbm_cache_take:
 * portable mode waits for its lock; rseq mode sets REMOTE_LOCK and fences
 * the cache's CPU so that no restartable sequence begun before can commit,
 * rseq.h), so it never races with an alloc or free on that CPU; a thread
 * that arrives meanwhile finds the cache held and uses the spare (portable)
 * or the global tier (percpu.h, P3). Only the thread touches the
 * bookkeeping arrays, with the registry lock held.
 */
#include <errno.h>
#include <stdlib.h>

#include "percpu.h"
#include "plant.h"
#include "pool.h"
#include "reclaim.h"

int
cbm_trim_init(struct cbm_pool *pool, uint64_t now_ms)
{
	struct cbm_pool_reclaim *rc = &pool->reclaim;

	rc->trim_seen_ops = calloc(pool->ncaches, sizeof(uint64_t));
	rc->trim_quiet_since_ms = calloc(pool->ncaches, sizeof(uint64_t));
	if (rc->trim_seen_ops == NULL || rc->trim_quiet_since_ms == NULL) {
		cbm_trim_fini(pool);
		return -ENOMEM;
	}
	/* A new pool's caches are quiet from now, not from the epoch. */
	for (unsigned i = 0; i < pool->ncaches; i++)
		rc->trim_quiet_since_ms[i] = now_ms;
	return 0;
}

void
cbm_trim_fini(struct cbm_pool *pool)
{
	free(pool->reclaim.trim_seen_ops);
	free(pool->reclaim.trim_quiet_since_ms);
	pool->reclaim.trim_seen_ops = NULL;
	pool->reclaim.trim_quiet_since_ms = NULL;
}

void
cbm_trim_idle_caches(struct cbm_pool *pool, uint64_t now_ms)
{
	struct cbm_pool_reclaim *rc = &pool->reclaim;

	for (unsigned i = 0; i < pool->ncaches; i++) {
		struct cbm_cpu_cache *c = cbm_cache_at(pool, i);
		uint64_t ops = cbm_cache_allocs(c) + cbm_cache_frees(c);
		uint64_t word = cbm_load_relaxed_u64(&c->word);

		/* A busy cache that never takes a slow path would let its 32
		 * bits of pops wrap: fold them while there is time. */
		if (cbm_word_pops(word) > UINT32_MAX / 2)
			cbm_cache_fold(pool, i);
		if (rc->idle_trim_ms == CBM_IDLE_TRIM_OFF)
			continue;
		if (ops != rc->trim_seen_ops[i]) {
			rc->trim_seen_ops[i] = ops;
			rc->trim_quiet_since_ms[i] = now_ms;
			continue;
		}
		if (now_ms - rc->trim_quiet_since_ms[i] < rc->idle_trim_ms ||
		    cbm_word_count(word) == 0)
			continue;
		cbm_cache_drain(pool, i, &rc->idle_drains);
		rc->trim_quiet_since_ms[i] = now_ms;
	}
}
