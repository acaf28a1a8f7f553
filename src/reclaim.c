/* SPDX-License-Identifier: MIT */
/*
 * Retire, barrier, and the reclamation thread (reclaim.h).
 *
 * Invariants:
 *  R1. A retired buffer is on exactly one of: its pool's retired list, the
 *      batch of the pass in flight, the freelist (reclaimed). The batch of a
 *      pass is taken from the list with one exchange, after the pass began,
 *      and reaches the freelist with one CAS, after a grace period of the
 *      pool's flavor that began after the exchange. So every reader section
 *      that could have seen the buffer before cbm_retire ended before the
 *      buffer can be handed out again (Grace, docs/design.md, "Invariants").
 *  R2. One pass at a time, process-wide (pass_in_flight, under the registry
 *      lock): a pool's batch fields belong to the pass in flight, and a pool
 *      is never unregistered while in one (unregister waits, under the lock,
 *      for in_pass to clear, R5). So the thread never touches a destroyed
 *      pool.
 *  R3. Passes are counted as they begin (passes_started) and as they end
 *      (passes_done), under the lock. cbm_barrier waits until passes_done
 *      reaches the passes_started it read on arrival, plus one: that pass
 *      began after the call did, so it took every buffer retired before
 *      the call (R1) and put it back before it was counted. When no pass is
 *      in flight or held off (R5), the barrier runs that pass itself: it
 *      needs no help from the thread, so it also works in a fork child
 *      before the thread is restarted.
 *  R4. The thread sleeps with nothing to do only after announcing it (idle,
 *      a seq_cst store) and then looking once more at every retired list
 *      (seq_cst loads of the heads). A retire pushes (seq_cst CAS) and then
 *      reads idle (seq_cst load). In the single total order of these four,
 *      either the thread sees the push or the retirer sees idle and wakes
 *      it: no retired buffer waits for the periodic tick.
 *  R5. No waiter starves, however fast buffers are retired. After a large
 *      pass the thread goes straight into the next one without letting go
 *      of the lock, so "no pass in flight" is a state that another thread
 *      would wake to find already gone. The barrier waits for a count
 *      instead, which only grows: at most the pass in flight when it came
 *      and the one after end while it waits (R3). Unregister, the fork
 *      prepare handler and quiesce do need the lock with no pass (or none
 *      of their pool's) in flight: they count themselves in quiet_waiters
 *      before they wait, no pass begins while that count is not zero, and
 *      the last of them to get its turn broadcasts. So each waits for the
 *      pass in flight when it came, and no other.
 *
 * The registry lock is never held across a grace period, and nothing that
 * holds a cache lock ever takes it (percpu.h, P4), so the lock order is:
 * registry lock, then one cache lock (idle trim, fork).
 */
#include "reclaim.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include "check.h"
#include "contract.h"
#include "plant.h"
#include "pool.h"
#include "rcu.h"
#include "release.h"
#include "report.h"
#include "trim.h"

/* The thread's longest sleep; shorter when a pool's idle trim needs it. */
#define TICK_MAX_MS 100
/* After a small batch, wait this long so that the next grace period
 * serves more buffers. */
#define BATCH_WINDOW_MS 1
#define SMALL_BATCH 256

static struct {
	pthread_mutex_t lock;
	/* Broadcast when a pass ends, and when the last quiet waiter has had
	 * its turn (R5). */
	pthread_cond_t changed;
	sem_t wake;		/* posted by cbm_reclaim_kick */
	struct cbm_pool *pools; /* registry */
	unsigned tick_ms;
	bool pass_in_flight;	/* R2 */
	unsigned quiet_waiters; /* no pass begins while not zero: R5 */
	/* R3. Written under the lock; atomic only so that tests can read
	 * them without it (cbm_reclaim_pass_counts). */
	cbm_atomic_u64 passes_started, passes_done;
	bool running;
	unsigned generation; /* a thread exits when this moves on */
	pthread_t thread;
	cbm_atomic_u32 idle;	       /* R4 */
	cbm_atomic_u32 posted;	       /* a wake is pending: kicks coalesce */
	cbm_atomic_u32 thread_missing; /* fork child: no thread yet */
} R = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
	.tick_ms = TICK_MAX_MS,
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The lock order is the registry lock, then caches (P4): nobody takes it
 * with a cache held. */
static void
lock_registry(void)
{
	CBM_ASSERT_NO_CACHE_HELD();
	pthread_mutex_lock(&R.lock);
}

static void
init_process_state(void)
{
	sem_init(&R.wake, 0, 0);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the pass: retired lists -> grace period -> freelists ---------------- */

/* Put a batch whose grace period is over back on the freelist, with one
 * CAS. In a debug pool each buffer must still be RETIRED; one that is not
 * is reported and left out. */
static void
splice_batch(struct cbm_pool *pool)
{
	struct cbm_pool_reclaim *rc = &pool->reclaim;
	uint32_t idx = rc->batch_first, first = CBM_NIL, last = CBM_NIL;
	uint32_t n = 0;

	for (uint32_t i = 0; i < rc->batch_n; i++) {
		uint32_t next = cbm_load_relaxed_u32(&pool->links[idx]);

		if (cbm_pool_is_debug(pool) &&
		    !cbm_debug_on_reclaim(&pool->debug, idx)) {
			idx = next;
			continue;
		}
		cbm_san_enter_pool(&pool->blocks, cbm_block_ptr(pool, idx));
		if (last == CBM_NIL)
			first = idx;
		else
			cbm_store_relaxed_u32(&pool->links[last], idx);
		last = idx;
		n++;
		idx = next;
	}
	/* From the batch in flight to the freelist: a move (transit.h), so
	 * that stats never see the buffers in both or the counters behind. */
	cbm_transit_begin(&pool->global.transit);
	if (n > 0)
		cbm_global_free_chain(&pool->global, first, last, n);
	CBM_YIELD_AT(CBM_SITE_RECLAIM_SPLICED);
	cbm_counter_add_owned(&rc->reclaimed, n);
	cbm_counter_add_owned(&rc->grace_periods, 1);
	cbm_store_relaxed_u64(&rc->in_flight, 0);
	cbm_transit_end(&pool->global.transit, true);
}

/* One grace period per flavor among the batches; R1. */
static void
wait_grace_periods(struct cbm_pool *batches)
{
	for (struct cbm_pool *p = batches; p; p = p->reclaim.batch_next) {
		bool done = false;

		for (struct cbm_pool *q = batches; q != p && !done;
		     q = q->reclaim.batch_next)
			done = q->reclaim.flavor == p->reclaim.flavor;
		if (done)
			continue;
		if (CBM_PLANTED(CBM_PLANT_NO_GRACE))
			continue;
		cbm_rcu_synchronize(p->reclaim.flavor);
	}
}

/*
 * Run one pass over every pool. Called and returns with the registry lock
 * held; drops it for the grace periods. Returns the buffers reclaimed.
 */
static uint64_t
run_pass_locked(void)
{
	struct cbm_pool *batches = NULL;
	uint64_t total = 0;

	while (R.pass_in_flight || R.quiet_waiters > 0) /* R2, R5 */
		pthread_cond_wait(&R.changed, &R.lock);
	R.pass_in_flight = true;
	cbm_store_relaxed_u64(&R.passes_started,
			      cbm_load_relaxed_u64(&R.passes_started) + 1);
	for (struct cbm_pool *p = R.pools; p; p = p->reclaim.next) {
		struct cbm_pool_reclaim *rc = &p->reclaim;

		if (cbm_ilist_count(&rc->retired) == 0)
			continue;
		/* From the retired list to the batch in flight: a move
		 * (transit.h), so that stats count the batch once. */
		cbm_transit_begin(&p->global.transit);
		rc->batch_first =
			cbm_ilist_take_all(&rc->retired, &rc->batch_n);
		cbm_store_relaxed_u64(&rc->in_flight, rc->batch_n);
		cbm_transit_end(&p->global.transit, rc->batch_n > 0);
		if (rc->batch_n == 0)
			continue;
		rc->in_pass = true;
		rc->batch_next = batches;
		batches = p;
		total += rc->batch_n;
	}
	if (batches != NULL) {
		pthread_mutex_unlock(&R.lock);
		wait_grace_periods(batches);
		for (struct cbm_pool *p = batches; p; p = p->reclaim.batch_next)
			splice_batch(p);
		lock_registry();
		for (struct cbm_pool *p = batches; p; p = p->reclaim.batch_next)
			p->reclaim.in_pass = false;
	}
	R.pass_in_flight = false;
	cbm_store_relaxed_u64(&R.passes_done,
			      cbm_load_relaxed_u64(&R.passes_done) + 1);
	pthread_cond_broadcast(&R.changed);
	return total;
}

/*
 * Wait, with the registry lock held, until *busy is false, where *busy is
 * pass_in_flight or a pool's in_pass: true only while a pass is in flight.
 * No pass begins meanwhile, so the pass in flight now is the last one
 * waited for (R5).
 */
static void
wait_out_pass_locked(const bool *busy)
{
	if (!*busy)
		return;
	R.quiet_waiters++;
	while (*busy)
		pthread_cond_wait(&R.changed, &R.lock);
	if (--R.quiet_waiters == 0)
		pthread_cond_broadcast(&R.changed);
}

/* seq_cst loads: R4. */
static bool
anything_retired_locked(void)
{
	for (struct cbm_pool *p = R.pools; p; p = p->reclaim.next)
		if (cbm_ilist_count_seq_cst(&p->reclaim.retired) != 0)
			return true;
	return false;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts;

	/* Monotonic: a step of the wall clock must not stretch the nap (idle
	 * trim and the pops fold run between naps). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (sem_clockwait(&R.wake, CLOCK_MONOTONIC, &ts) != 0 &&
	       errno == EINTR)
		;
}

static void *
reclaim_main(void *arg)
{
	unsigned generation = (unsigned)(uintptr_t)arg;

	/* Its moves are the ones stats may wait for (transit.h, T4). */
	cbm_mover = CBM_MOVER_RECLAIMER;
	lock_registry();
	while (R.generation == generation) {
		uint64_t got = 0;
		unsigned nap;

		if (anything_retired_locked())
			got = run_pass_locked();
		if (R.generation != generation)
			break;
		for (struct cbm_pool *p = R.pools; p; p = p->reclaim.next) {
			uint64_t now = now_ms();

			cbm_trim_idle_caches(&p->trim, &p->caches, now);
			cbm_release_tick(&p->release, &p->global, now);
		}
		if (got == 0) {
			cbm_store_seq_cst_u32(&R.idle, 1); /* R4 */
			if (anything_retired_locked()) {
				cbm_store_seq_cst_u32(&R.idle, 0);
				continue;
			}
			nap = R.tick_ms;
		} else {
			nap = got < SMALL_BATCH ? BATCH_WINDOW_MS : 0;
		}
		if (nap > 0) {
			pthread_mutex_unlock(&R.lock);
			sleep_ms(nap);
			lock_registry();
		}
		cbm_store_seq_cst_u32(&R.idle, 0);
		/* Later kicks post again; until now they were one. */
		cbm_store_relaxed_u32(&R.posted, 0);
	}
	pthread_mutex_unlock(&R.lock);
	return NULL;
}

static int
start_thread_locked(void)
{
	int rc;

	R.generation++;
	if (CBM_PLANTED(CBM_PLANT_NO_THREAD) ||
	    CBM_FAIL_HERE("the reclamation thread"))
		rc = EAGAIN;
	else
		rc = pthread_create(&R.thread, NULL, reclaim_main,
				    (void *)(uintptr_t)R.generation);
	if (rc != 0)
		return -EAGAIN;
	R.running = true;
	cbm_store_relaxed_u32(&R.thread_missing, 0);
	return 0;
}

/* ---- registry ---------------------------------------------------------- */

static void
update_tick_locked(void)
{
	R.tick_ms = TICK_MAX_MS;
	for (struct cbm_pool *p = R.pools; p; p = p->reclaim.next) {
		unsigned t = p->trim.idle_ms / 4;
		unsigned r = p->release.ms / 8;

		if (p->trim.idle_ms != CBM_IDLE_TRIM_OFF && t < R.tick_ms)
			R.tick_ms = t > 0 ? t : 1;
		/* Half a quarter window (release.h, L4). */
		if (p->release.ms != CBM_RELEASE_OFF && r < R.tick_ms)
			R.tick_ms = r > 0 ? r : 1;
	}
}

int
cbm_reclaim_register(struct cbm_pool *pool)
{
	int rc = 0;

	pthread_once(&init_once, init_process_state);
	cbm_ilist_init(&pool->reclaim.retired);
	rc = cbm_trim_init(&pool->trim, &pool->caches, pool->trim.idle_ms,
			   now_ms());
	if (rc != 0)
		return rc;
	lock_registry();
	if (!R.running)
		rc = start_thread_locked();
	if (rc == 0) {
		pool->reclaim.next = R.pools;
		R.pools = pool;
		update_tick_locked();
	}
	pthread_mutex_unlock(&R.lock);
	if (rc != 0)
		cbm_trim_fini(&pool->trim);
	return rc;
}

void
cbm_reclaim_unregister(struct cbm_pool *pool)
{
	pthread_t stopped;
	bool join = false;

	lock_registry();
	wait_out_pass_locked(&pool->reclaim.in_pass); /* R2 */
	for (struct cbm_pool **pp = &R.pools; *pp; pp = &(*pp)->reclaim.next) {
		if (*pp == pool) {
			*pp = pool->reclaim.next;
			break;
		}
	}
	update_tick_locked();
	if (R.pools == NULL && R.running) {
		/* The last pool: the thread exits at its next look. */
		R.generation++;
		R.running = false;
		stopped = R.thread;
		join = true;
		sem_post(&R.wake);
	}
	pthread_mutex_unlock(&R.lock);
	if (join)
		pthread_join(stopped, NULL);
	cbm_trim_fini(&pool->trim);
}

void
cbm_reclaim_kick(bool urgent)
{
	if (cbm_xchg_seq_cst_u32(&R.idle, 0) == 0 && !urgent)
		return;
	if (cbm_reclaim_thread_missing()) {
		/* A fork child's first retire restarts the thread. */
		cbm_reclaim_restart();
		return;
	}
	/* A thousand dry allocations wake the thread once, not a thousand
	 * times (a semaphore would count them all). */
	if (cbm_xchg_seq_cst_u32(&R.posted, 1) == 0)
		sem_post(&R.wake);
}

bool
cbm_reclaim_thread_missing(void)
{
	return cbm_unlikely(cbm_load_relaxed_u32(&R.thread_missing) != 0);
}

void
cbm_reclaim_restart(void)
{
	lock_registry();
	if (!R.running && R.pools != NULL)
		start_thread_locked();
	pthread_mutex_unlock(&R.lock);
}

uint64_t
cbm_reclaim_pending(const struct cbm_pool *pool)
{
	return cbm_ilist_count(&pool->reclaim.retired) +
	       cbm_load_relaxed_u64(&pool->reclaim.in_flight);
}

void
cbm_reclaim_quiesce(void (*f)(void *arg), void *arg)
{
	lock_registry();
	wait_out_pass_locked(&R.pass_in_flight);
	f(arg);
	pthread_mutex_unlock(&R.lock);
}

void
cbm_reclaim_pass_counts(uint64_t *started, uint64_t *done)
{
	*done = cbm_load_relaxed_u64(&R.passes_done);
	*started = cbm_load_relaxed_u64(&R.passes_started);
}

/* ---- fork -------------------------------------------------------------- */

/*
 * Across fork, hold the registry lock with no pass in flight and every cache
 * lock of every pool: the child then copies pools in which no buffer is
 * between two places (only buffers held by the parent's other threads are
 * missing, and to the child they are simply held), and no lock is owned by
 * a thread that does not exist there.
 */
void
cbm_reclaim_fork_prepare(void)
{
	pthread_once(&init_once, init_process_state);
	lock_registry();
	wait_out_pass_locked(&R.pass_in_flight);
	for (struct cbm_pool *p = R.pools; p; p = p->reclaim.next) {
		cbm_caches_take_all(&p->caches);
		/* After the caches (frontier.h): no growth half done. */
		cbm_frontier_fork_prepare(&p->global.frontier);
	}
}

static void
unlock_all_caches(void)
{
	for (struct cbm_pool *p = R.pools; p; p = p->reclaim.next) {
		cbm_frontier_fork_after(&p->global.frontier);
		cbm_caches_give_all_back(&p->caches);
	}
}

void
cbm_reclaim_fork_parent(void)
{
	unlock_all_caches();
	pthread_mutex_unlock(&R.lock);
}

void
cbm_reclaim_fork_child(void)
{
	unlock_all_caches();
	for (struct cbm_pool *p = R.pools; p; p = p->reclaim.next) {
		cbm_transit_fork_child(&p->global.transit);
		cbm_watch_fork_child(&p->blocks, cbm_pool_capacity(p));
	}
	/* The thread was not copied: the first retire (through the kick) or
	 * barrier starts a new one; until then nothing waits on it (R3). */
	R.running = false;
	/* Those who waited for a pass in the parent are not here. */
	R.quiet_waiters = 0;
	cbm_store_relaxed_u32(&R.posted, 0);
	cbm_store_relaxed_u32(&R.thread_missing, R.pools != NULL);
	cbm_store_seq_cst_u32(&R.idle, 1);
	sem_destroy(&R.wake);
	sem_init(&R.wake, 0, 0);
	pthread_cond_init(&R.changed, NULL);
	pthread_mutex_init(&R.lock, NULL);
}

/* ---- the public calls -------------------------------------------------- */

void
cbm_retire(cbm_pool *pool, void *buf)
{
	uint32_t idx;

	if (cbm_unlikely(buf == NULL))
		return;
	if (cbm_unlikely(pool == NULL)) {
		cbm_report(NULL, CBM_ERR_BAD_ARG, buf, "cbm_retire: NULL pool");
		return;
	}
	idx = cbm_block_index_checked(pool, buf, "cbm_retire");
	if (cbm_unlikely(idx == CBM_NIL))
		return;
	if (cbm_unlikely(cbm_pool_is_debug(pool)) &&
	    !cbm_debug_on_release(&pool->debug, idx, CBM_BLOCK_RETIRED,
				  "cbm_retire"))
		return;
	CBM_YIELD_POINT();
	cbm_ilist_push(&pool->reclaim.retired, pool->links, idx);
	if (cbm_unlikely(cbm_load_seq_cst_u32(&R.idle))) /* R4 */
		cbm_reclaim_kick(false);
}

void
cbm_barrier(cbm_pool *pool)
{
	uint64_t target;

	if (pool == NULL) {
		cbm_report(NULL, CBM_ERR_BAD_ARG, NULL,
			   "cbm_barrier: NULL pool");
		return;
	}
	lock_registry();
	target = cbm_load_relaxed_u64(&R.passes_started) + 1; /* R3 */
	while (cbm_load_relaxed_u64(&R.passes_done) < target) {
		if (!R.pass_in_flight && R.quiet_waiters == 0)
			run_pass_locked();
		else
			pthread_cond_wait(&R.changed, &R.lock); /* R5 */
	}
	if (cbm_load_relaxed_u32(&R.thread_missing) && !R.running)
		start_thread_locked();
	pthread_mutex_unlock(&R.lock);
}
