/*
 * Per-CPU caches: the layout both modes share, the portable mode's lock,
 * and the slow paths that run with a cache held.
 *
 * A cache is one array of 2 x mag_size buffer slots and one 64-bit word.
 * The array is Bonwick's loaded and previous magazines laid end to end: an
 * allocation pops from the top, a free pushes on it, and only when the array
 * is empty (or full) does a magazine's worth move to or from the global tier,
 * so that at most one operation in mag_size goes below the cache whatever
 * the pattern, as with a loaded/previous pair. Keeping the two as one array
 * lets moving between them cost nothing, and lets a batch move commit with
 * a single store of the word, which rseq mode needs.
 *
 * The word:  bits  0-29  count: slots[0 .. count-1] hold buffers
 *            bit  30     LOCAL_LOCK: held by a thread (portable mode: any
 *                        holder; rseq mode: a slow path that took it from
 *                        the cache's own CPU)
 *            bit  31     REMOTE_LOCK: held by a drainer on another CPU
 *                        (rseq mode)
 *            bits 32-63  pops since the last fold (folded into
 *                        pops_folded by lock holders; a pop that would
 *                        wrap them takes the slow path, which folds)
 *
 * Invariants:
 *  P1. Only a thread that may commit the word reads or writes slots: the
 *      holder of a lock bit, or (rseq mode) a restartable sequence running
 *      on the cache's CPU while no lock bit is set (rseq.h).
 *  P2. A lock is taken with an acquire CAS from a word with no lock bit, and
 *      dropped by a release store of the new word: each holder sees what
 *      the previous one did.
 *  P3. Fast paths only ever *try* a cache. A thread that finds it held (its
 *      holder preempted, or migrated) tries the CPU's spare cache (portable
 *      mode), then goes to the global tier: alloc and free never wait for
 *      another thread. Only drains (trim, steal, idle trim, fork) wait, and
 *      no holder blocks while it holds a cache.
 *  P4. Nothing is called with a cache held that could wait for another
 *      cache, for the registry lock, or call the error handler. So a thread
 *      holds two caches only where it waits for neither (fork's prepare
 *      handler takes them all, in order, holding the registry lock first),
 *      and the lock order is: registry lock, then caches.
 *  P5. Accounting: count = moved_in - moved_out + pushes - pops, so the
 *      pushes (frees) need no counter of their own: they follow from the
 *      fast path's pops and the slow paths' transfers, all exact.
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
#include "transit.h"

struct cbm_pool;

/* How the caches exclude other threads (rseq.h); the values are the
 * public CBM_PERCPU_* ones. */
enum cbm_percpu_mode {
	CBM_MODE_PORTABLE = 0,
	CBM_MODE_RSEQ = 1,
};

#define CBM_CACHE_COUNT_MASK 0x3fffffffu
#define CBM_CACHE_LOCAL_LOCK (1u << 30)
#define CBM_CACHE_REMOTE_LOCK (1u << 31)
#define CBM_CACHE_LOCKS (CBM_CACHE_LOCAL_LOCK | CBM_CACHE_REMOTE_LOCK)
#define CBM_CACHE_POP ((uint64_t)1 << 32) /* one pop in the word */

/* Byte offset of the slots in a cache; the rseq assembly takes it as an
 * operand (rseq.h). */
#define CBM_CACHE_SLOTS_OFFSET 64

/*
 * Portable mode gives each CPU its own cache and a spare: with more runnable
 * threads than CPUs, a thread preempted inside its CPU's cache holds it for
 * a whole time slice, and the threads that run on the CPU meanwhile use the
 * spare instead of all going to the shared freelist (at 4 threads on 2 CPUs,
 * about a third of all operations found the one cache held). rseq mode
 * holds a cache only in slow paths and needs no spare.
 */
#define CBM_CACHES_PER_CPU_PORTABLE 2

/* Where the caches are: what a fast path needs to find its CPU's. */
struct cbm_cache_map {
	char *caches;	       /* CPU 0's first cache */
	size_t cpu_bytes;      /* from one CPU's first cache to the next's */
	ptrdiff_t rseq_offset; /* rseq mode: glibc's __rseq_offset, copied
	                          here to save the fast path a load */
	uint32_t ncpus;
	uint32_t slots; /* slots per cache: 2 x mag_size */
};

struct cbm_cpu_cache {
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 word;
	/* Counters with one writer at a time, the lock holder (atomics.h). */
	cbm_atomic_u64 pops_folded; /* pops moved out of the word */
	cbm_atomic_u64 moved_in;    /* buffers brought in by refills */
	cbm_atomic_u64 moved_out;   /* buffers taken out by spills, drains */
	cbm_atomic_u64 depot_exchanges;
	cbm_atomic_u64 global_pops;
	cbm_atomic_u64 global_pushes;
	/* rseq mode: one drainer at a time (cbm_cache_take). */
	cbm_atomic_u32 drainer;
	uint32_t unused;
	void *slots[]; /* 2 x mag_size, P1 */
};

_Static_assert(offsetof(struct cbm_cpu_cache, slots) == CBM_CACHE_SLOTS_OFFSET,
	       "the slots start on the second line, where rseq.h looks");

static inline uint32_t
cbm_word_count(uint64_t w)
{
	return (uint32_t)w & CBM_CACHE_COUNT_MASK;
}

static inline uint32_t
cbm_word_pops(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

/*
 * Try to take a cache (P2, P3). On success *w is the word as taken (no lock
 * bits); the caller changes it and gives it back with cbm_cache_release.
 */
static inline bool
cbm_cache_trylock(struct cbm_cpu_cache *c, uint64_t *w)
{
	uint64_t old = cbm_load_relaxed_u64(&c->word);

	if (cbm_unlikely(old & CBM_CACHE_LOCKS))
		return false;
	/* Acquire: pairs with the release store in cbm_cache_release. */
	if (!atomic_compare_exchange_strong_explicit(
		    &c->word, &old, old | CBM_CACHE_LOCAL_LOCK,
		    memory_order_acquire, memory_order_relaxed))
		return false;
	*w = old;
	return true;
}

/* Drop a cache, publishing the new word (no lock bits). Release: pairs
 * with the acquire that takes a cache (P2). */
static inline void
cbm_cache_release(struct cbm_cpu_cache *c, uint64_t w)
{
	cbm_store_release_u64(&c->word, w);
}

/*
 * Fold the pops counted in the word into the cache's 64-bit total (P5).
 * Lock holders fold in every slow path; a pop that would wrap the word's
 * 32 bits bails out to a slow path, which folds first. Caller MUST hold c.
 */
void cbm_cache_fold_held(struct cbm_cpu_cache *c, uint64_t *w);

/*
 * Pop one buffer with the cache held; NULL when it is empty. Caller MUST
 * hold c; *w is updated.
 */
static inline void *
cbm_cache_pop_held(struct cbm_cpu_cache *c, uint64_t *w)
{
	uint32_t n = cbm_word_count(*w);

	if (cbm_unlikely(n == 0))
		return NULL;
	if (cbm_unlikely(cbm_word_pops(*w) == UINT32_MAX))
		cbm_cache_fold_held(c, w);
	*w += CBM_CACHE_POP - 1;
	return c->slots[n - 1];
}

/* Push one buffer with the cache held; false when it is full. Caller MUST
 * hold c; *w is updated. */
static inline bool
cbm_cache_push_held(struct cbm_cpu_cache *c, uint64_t *w, uint32_t limit,
		    void *buf)
{
	uint32_t n = cbm_word_count(*w);

	if (cbm_unlikely(n == limit))
		return false;
	c->slots[n] = buf;
	*w += 1;
	return true;
}

/*
 * Slow-path moves between a held cache and the global tier. Each is a move
 * between places (transit.h, T1): the first of them begins one, and sets
 * *moving; the caller ends it after publishing the word, with
 * cbm_cache_release_moved (or cbm_cache_give_back). Caller MUST hold c.
 */

/* Bring a magazine's worth of buffers in from the global tier (a full
 * magazine from the depot, else a chain from the freelist) when the cache is
 * empty. false when the global tier is empty too (then it has neither begun a
 * move nor folded the pops). */
bool cbm_cache_refill_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
			   uint64_t *w, bool *moving);

/* Send a magazine's worth of buffers out to the global tier (a full
 * magazine to the depot, else a chain to the freelist) when the cache is
 * full. Always succeeds. */
void cbm_cache_make_room_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
			      uint64_t *w, bool *moving);

/* Move every buffer to the global tier; returns how many (0: no move
 * begun). */
size_t cbm_cache_drain_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
			    uint64_t *w, bool *moving);

/* Release a cache after slow-path moves: publish w, then end the move if
 * one began (T1: its buffers have landed only once the word is out). */
static inline void
cbm_cache_release_moved(struct cbm_cpu_cache *c, uint64_t w,
			struct cbm_transit *transit, bool moving)
{
	cbm_cache_release(c, w);
	if (moving)
		cbm_transit_end(transit, true);
}

/* One step of waiting for another thread (a cache's holder, a move in
 * flight): a pause at first, then sched_yield, then sleeps of up to a
 * millisecond. *spins starts at 0. */
void cbm_spin_wait(unsigned *spins);

/*
 * Take cache i for a drain, waiting for its holder if need be (P3, P4: the
 * caller holds no cache). In rseq mode it also fences the cache's CPU, so
 * that no restartable sequence begun before can still commit (rseq.h).
 * Returns the word as taken.
 */
uint64_t cbm_cache_take(struct cbm_pool *pool, unsigned i);

/* Drop a cache taken with cbm_cache_take, publishing w, and end the move
 * begun with it if moving. */
void cbm_cache_give_back(struct cbm_pool *pool, unsigned i, uint64_t w,
			 bool moving);

/* Take cache i and fold its pops (P5), for a cache whose fast path never
 * leaves it. Caller holds no cache. */
void cbm_cache_fold(struct cbm_pool *pool, unsigned i);

/* Take cache i, move all its buffers to the global tier, give it back;
 * returns how many moved, and adds that to *counter within the move.
 * Caller holds no cache. */
size_t cbm_cache_drain(struct cbm_pool *pool, unsigned i,
		       cbm_atomic_u64 *counter);

/* Buffers in the cache, read without taking it (approximate while busy). */
static inline size_t
cbm_cache_count(const struct cbm_cpu_cache *c)
{
	return cbm_word_count(cbm_load_relaxed_u64(&c->word));
}

/* Allocations and frees through the cache so far (P5). */
uint64_t cbm_cache_allocs(const struct cbm_cpu_cache *c);
uint64_t cbm_cache_frees(const struct cbm_cpu_cache *c);

/*
 * Drain caches into the global tier, each taken in turn (cbm_cache_drain).
 * With stop_early, stop after the first cache that gave something. Returns
 * the number of buffers moved, also added to *counter.
 */
size_t cbm_caches_drain(struct cbm_pool *pool, bool stop_early,
			cbm_atomic_u64 *counter);

#endif /* CBM_PERCPU_H */
