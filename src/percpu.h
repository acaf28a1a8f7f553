/*
 * Per-CPU caches, portable mode: each CPU owns a loaded and a previous
 * magazine, guarded by a per-CPU lock.
 *
 * Invariants:
 *  P1. mags[cur] is the loaded magazine, mags[cur ^ 1] the previous one; the
 *      two are distinct magazines owned by this cache, and nothing else owns
 *      them. Changing cur swaps them with one store.
 *  P2. Only the holder of lock reads or writes cur, mags and the magazines'
 *      slots and counts (statistics read counts and mags relaxed, and accept
 *      an approximate answer). The lock is taken with an acquire exchange and
 *      dropped with a release store: each holder sees everything the previous
 *      holder did.
 *  P3. Fast paths only ever *try* the lock. A thread that finds it held
 *      (another thread, preempted on this CPU or migrated here, is inside)
 *      tries the CPU's spare cache, and if that is held too, goes straight
 *      to the global tier instead of waiting: alloc and free never wait for
 *      another thread. Only draining a cache (trim, steal, fork) waits for
 *      the lock, and holders never block inside it.
 *  P4. Nothing is called while the lock is held that could take another
 *      cache's lock, or call the error handler. So no thread ever holds two
 *      cache locks, and there is no lock order to get wrong.
 *
 * The CPU number is a hint (cpu.h): a stale one only means two threads use
 * the same cache one after the other, which P2 makes safe.
 */
#ifndef CBM_PERCPU_H
#define CBM_PERCPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "compiler.h"
#include "cpu.h"
#include "magazine.h"

struct cbm_pool;

/*
 * Caches per CPU: the CPU's own, and a spare. With more runnable threads
 * than CPUs, a thread preempted inside its CPU's cache holds that lock for
 * a whole time slice; the threads that run on the CPU meanwhile use the
 * spare instead of all going to the shared freelist (measured in the
 * closing note of the portable mode: at 4 threads on 2 CPUs, about a third
 * of all operations found the one cache held).
 */
#define CBM_CACHES_PER_CPU 2

struct cbm_cpu_cache {
	/* Hot: every alloc and free on this CPU. */
	_Alignas(CBM_CACHELINE) cbm_atomic_u32 lock;
	uint32_t cur;			 /* P1 */
	struct cbm_mag *_Atomic mags[2]; /* P1, P2 */
	/* Counters with one writer, the lock holder (atomics.h). */
	cbm_atomic_u64 allocs;
	cbm_atomic_u64 frees;
	cbm_atomic_u64 depot_exchanges;
	cbm_atomic_u64 global_pops;
	cbm_atomic_u64 global_pushes;
};

/* One line per CPU: no two CPUs ever write the same line. */
_Static_assert(sizeof(struct cbm_cpu_cache) == CBM_CACHELINE,
	       "a CPU cache is exactly one cache line");

/* Acquire: pairs with the release store in cbm_cache_unlock (P2). */
static inline bool
cbm_cache_trylock(struct cbm_cpu_cache *c)
{
	return cbm_xchg_acquire_u32(&c->lock, 1) == 0;
}

/* Release: pairs with the acquire exchange in cbm_cache_trylock (P2). */
static inline void
cbm_cache_unlock(struct cbm_cpu_cache *c)
{
	cbm_store_release_u32(&c->lock, 0);
}

/* Wait for the lock (drains only, P3). */
void cbm_cache_lock_wait(struct cbm_cpu_cache *c);

static inline struct cbm_mag *
cbm_cache_loaded(struct cbm_cpu_cache *c)
{
	return atomic_load_explicit(&c->mags[c->cur], memory_order_relaxed);
}

/*
 * Pop one buffer from the loaded magazine, or NULL when it is empty.
 * Caller MUST hold c->lock.
 */
static inline void *
cbm_cache_pop_locked(struct cbm_cpu_cache *c)
{
	struct cbm_mag *m = cbm_cache_loaded(c);
	uint32_t n = cbm_mag_count(m);

	if (cbm_unlikely(n == 0))
		return NULL;
	cbm_mag_set_count(m, n - 1);
	return m->slots[n - 1];
}

/*
 * Push one buffer on the loaded magazine; false when it is full.
 * Caller MUST hold c->lock.
 */
static inline bool
cbm_cache_push_locked(struct cbm_cpu_cache *c, uint32_t mag_size, void *buf)
{
	struct cbm_mag *m = cbm_cache_loaded(c);
	uint32_t n = cbm_mag_count(m);

	if (cbm_unlikely(n == mag_size))
		return false;
	m->slots[n] = buf;
	cbm_mag_set_count(m, n + 1);
	return true;
}

/*
 * Make the loaded magazine non-empty: swap with the previous one if it holds
 * buffers, else trade the empty previous one for a full one from the depot,
 * else fill the loaded one from the freelist. false when the global tier is
 * empty too. Caller MUST hold c->lock.
 */
bool cbm_cache_refill_locked(struct cbm_pool *pool, struct cbm_cpu_cache *c);

/*
 * Make room in the loaded magazine: swap with the previous one if it is not
 * full, else trade the full previous one for an empty one from the depot,
 * else spill the previous one to the freelist. Always succeeds. Caller MUST
 * hold c->lock.
 */
void cbm_cache_make_room_locked(struct cbm_pool *pool, struct cbm_cpu_cache *c);

/*
 * Move every buffer of the cache to the global tier; returns how many.
 * Caller MUST hold c->lock.
 */
size_t cbm_cache_drain_locked(struct cbm_pool *pool, struct cbm_cpu_cache *c);

/* Buffers in the cache, read without the lock (approximate while busy). */
size_t cbm_cache_count(const struct cbm_cpu_cache *c);

/*
 * Drain caches of every CPU into the global tier, waiting for each lock in
 * turn (P3, P4: the caller holds no cache lock). With stop_early, stop after
 * the first cache that gave something. Returns the number of buffers moved.
 */
size_t cbm_caches_drain(struct cbm_pool *pool, bool stop_early);

#endif /* CBM_PERCPU_H */
