/* SPDX-License-Identifier: MIT */
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
#include "trim.h"

#include <errno.h>
#include <stdlib.h>

#include "cbm.h"
#include "plant.h"

int
cbm_trim_init(struct cbm_trim *t, const struct cbm_caches *caches,
	      unsigned idle_ms, uint64_t now_ms)
{
	t->idle_ms = idle_ms;
	t->seen_ops = CBM_FAIL_HERE("idle trim's counts")
			      ? NULL
			      : calloc(caches->ncaches, sizeof(uint64_t));
	t->quiet_since_ms = CBM_FAIL_HERE("idle trim's clocks")
				    ? NULL
				    : calloc(caches->ncaches, sizeof(uint64_t));
	if (t->seen_ops == NULL || t->quiet_since_ms == NULL) {
		cbm_trim_fini(t);
		return -ENOMEM;
	}
	/* A new pool's caches are quiet from now, not from the epoch. */
	for (unsigned i = 0; i < caches->ncaches; i++)
		t->quiet_since_ms[i] = now_ms;
	return 0;
}

void
cbm_trim_fini(struct cbm_trim *t)
{
	free(t->seen_ops);
	free(t->quiet_since_ms);
	t->seen_ops = NULL;
	t->quiet_since_ms = NULL;
}

void
cbm_trim_idle_caches(struct cbm_trim *t, struct cbm_caches *caches,
		     uint64_t now_ms)
{
	for (unsigned i = 0; i < caches->ncaches; i++) {
		struct cbm_cpu_cache *c = cbm_cache_at(caches, i);
		uint64_t ops = cbm_cache_allocs(c) + cbm_cache_frees(c);

		/* A busy cache that never takes a slow path would let its 32
		 * bits of pops wrap: fold them while there is time. */
		if (cbm_cache_unfolded_pops(c) > UINT32_MAX / 2)
			cbm_cache_fold(caches, i);
		if (t->idle_ms == CBM_IDLE_TRIM_OFF)
			continue;
		if (ops != t->seen_ops[i]) {
			t->seen_ops[i] = ops;
			t->quiet_since_ms[i] = now_ms;
			continue;
		}
		if (now_ms - t->quiet_since_ms[i] < t->idle_ms ||
		    cbm_cache_count(c) == 0)
			continue;
		cbm_cache_drain(caches, i, &t->idle_drains);
		t->quiet_since_ms[i] = now_ms;
	}
}
