/* SPDX-License-Identifier: MIT */
/*
 * The reclamation thread: one per process, serving every pool. It returns
 * retired buffers to their pools after a grace period, and drains the
 * caches of CPUs that went idle.
 */
#ifndef CBM_RECLAIM_H
#define CBM_RECLAIM_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"
#include "istack.h"

struct cbm_pool;
struct rcu_flavor_struct;

/* A pool's part in reclamation (lives in struct cbm_pool). */
struct cbm_pool_reclaim {
	/* Retired buffers, linked through pool->links; pushed by any thread
	 * (cbm_retire), taken whole by the reclamation thread. */
	struct cbm_ilist retired;
	cbm_atomic_u64 in_flight; /* taken, waiting for their grace period */
	cbm_atomic_u64 reclaimed;
	cbm_atomic_u64 grace_periods;
	const struct rcu_flavor_struct *flavor;

	/* Under the registry lock (reclaim.c). */
	struct cbm_pool *next; /* the registry's list of pools */
	bool in_pass;	       /* its batch is in the current pass */
	uint32_t batch_first;  /* the batch: a chain through pool->links */
	uint32_t batch_n;
	struct cbm_pool *batch_next;
};

/*
 * Add a pool to the registry, starting the thread if it is the first.
 * Returns 0, -ENOMEM, or -EAGAIN when the thread cannot be started.
 */
int cbm_reclaim_register(struct cbm_pool *pool);

/* Take a pool out of the registry once no pass holds it (after
 * cbm_barrier); the last one out stops and joins the thread. Waits at most
 * for the pass in flight: none begins while it waits (reclaim.c, R5). */
void cbm_reclaim_unregister(struct cbm_pool *pool);

/* Wake the thread if it is idle and something was retired; with urgent
 * (an allocation found the pool dry while buffers wait for their grace
 * period), also cut its batching nap short. Never blocks. */
void cbm_reclaim_kick(bool urgent);

/* In a fork child the thread is gone until something restarts it. The
 * slow paths check (one relaxed load) and restart it, with no cache held
 * (the registry lock comes before any cache, percpu.h P4). */
bool cbm_reclaim_thread_missing(void);
void cbm_reclaim_restart(void);

/* Buffers retired and not yet back (approximate while busy). */
uint64_t cbm_reclaim_pending(const struct cbm_pool *pool);

/* Run f(pool, arg) with the registry locked and no pass in flight, so that
 * every retired buffer is either on its pool's list or back in the pool.
 * Waits at most for the pass in flight (reclaim.c, R5). */
void cbm_reclaim_quiesce(void (*f)(void *arg), void *arg);

/* Passes begun and ended since the process started (for tests). */
void cbm_reclaim_pass_counts(uint64_t *started, uint64_t *done);

/* Fork (fork.c): hold everything across fork, then release or rebuild. */
void cbm_reclaim_fork_prepare(void);
void cbm_reclaim_fork_parent(void);
void cbm_reclaim_fork_child(void);

#endif /* CBM_RECLAIM_H */
