/* SPDX-License-Identifier: MIT */
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
 * a single write of the word, which rseq mode needs.
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
 *      on the cache's CPU that read the word with no lock bit set (rseq.h).
 *      A drainer's REMOTE_LOCK holds the cache only once its fence has
 *      returned: a sequence that read the word before the bit was set may
 *      still commit until then, and the drainer reads the word again.
 *  P2. A lock is taken with an acquire CAS from a word with no lock bit
 *      (or, in portable mode, which has only LOCAL_LOCK, an acquire
 *      fetch-or of it that found it clear), and dropped by a release store
 *      of the new word: each holder sees what the previous one did.
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
#include "global.h"
#include "transit.h"

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

/*
 * The fast table: rseq mode's fast paths find the calling CPU's cache by
 * one load, fast[cpu_id], with no compare of the CPU number and no test of
 * the pool's mode. For that the table has an entry for every number the
 * rseq area's cpu_id can hold:
 *  - 0 .. bound - 1, where bound (cbm_fast_table_bound) is above every CPU
 *    number the kernel can write (nr_cpu_ids, from the possible-CPU mask):
 *    the CPU's cache, for CPUs below ncpus in a pool whose fast paths run
 *    without bookkeeping; the sentinel for every other CPU and pool;
 *  - fast[-1] and fast[-2]: the sentinel, for the values glibc leaves in
 *    the area of a thread without a registration (RSEQ_CPU_ID_UNINITIALIZED,
 *    RSEQ_CPU_ID_REGISTRATION_FAILED), which the fast paths sign-extend.
 * The sentinel is a cache whose word has both lock bits set and no slots:
 * a pop or push reads its word, sees it held, and bails out to the slow
 * path before touching anything else (rseq.h), which sorts out the mode,
 * the bookkeeping and the CPU. Read-only after create.
 */
#define CBM_FAST_BEFORE 2 /* entries before CPU 0's */

/* Where the caches are: what a fast path needs to find its CPU's. */
struct cbm_cache_map {
	char *caches;			   /* CPU 0's first cache */
	struct cbm_cpu_cache *const *fast; /* the fast table, at CPU 0 */
	ptrdiff_t rseq_offset; /* glibc's __rseq_offset (in every mode), copied
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

/*
 * The caches of one pool, as this layer owns them: where they are (the map
 * on the pool's hot line, which the fast paths read), how many, and the
 * global tier below them. Read-only after create, but for the counters.
 */
struct cbm_caches {
	const struct cbm_cache_map *map;
	struct cbm_global *global;
	unsigned ncaches;	 /* caches_per_cpu x map->ncpus */
	unsigned caches_per_cpu; /* portable mode has a spare per CPU */
	unsigned mode;		 /* enum cbm_percpu_mode */
	size_t cache_bytes;	 /* from one cache to the next */
	size_t cpu_bytes;	 /* from one CPU's first cache to the next's */
	uint32_t mag_size;
	/* Counters of the rare paths, shared by every thread. */
	cbm_atomic_u64
		busy_fallbacks; /* the CPU's cache(s) held: went global */
	cbm_atomic_u64 rseq_aborts;
};

static inline struct cbm_cpu_cache *
cbm_cache_at(const struct cbm_caches *caches, unsigned i)
{
	return (struct cbm_cpu_cache *)(void *)(caches->map->caches +
						(size_t)i *
							caches->cache_bytes);
}

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

/*
 * Portable mode's try-lock, for the fast paths: one atomic bit-test-and-
 * set of LOCAL_LOCK, the only lock bit portable mode uses (a set bit
 * stays set: the holder's release is the next change). On success *w is
 * the word as taken (no lock bits), read again once held: no one else
 * writes it then (P1).
 */
static inline bool
cbm_cache_trylock_local(struct cbm_cpu_cache *c, uint64_t *w)
{
	/* Acquire: pairs with the release store in cbm_cache_release. */
	if (cbm_unlikely(atomic_fetch_or_explicit(&c->word,
						  CBM_CACHE_LOCAL_LOCK,
						  memory_order_acquire) &
			 CBM_CACHE_LOCAL_LOCK))
		return false;
	*w = cbm_load_relaxed_u64(&c->word) & ~(uint64_t)CBM_CACHE_LOCAL_LOCK;
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
	uint64_t next;

	if (cbm_unlikely(n == 0))
		return NULL;
	/* count - 1, pops + 1; a carry out of the top: the pops would
	 * wrap, fold them first. */
	if (cbm_unlikely(
		    __builtin_add_overflow(*w, CBM_CACHE_POP - 1, &next))) {
		cbm_cache_fold_held(c, w);
		next = *w + CBM_CACHE_POP - 1;
	}
	*w = next;
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
 * Portable mode's fastest path: the calling thread's CPU's own cache,
 * where the rseq area names a CPU below ncpus and the cache is free: true
 * with *c and *w (the word as taken) set; false otherwise (the caller then
 * tries cbm_cache_lock_current, which also knows sched_getcpu and the
 * spare).
 */
static inline bool
cbm_cache_lock_own(const struct cbm_cache_map *map, size_t cpu_bytes,
		   struct cbm_cpu_cache **c, uint64_t *w)
{
	uint32_t cpu = (uint32_t)cbm_rseq_cpu_id(map->rseq_offset);

	if (cbm_unlikely(cpu >= map->ncpus)) /* negative: no area */
		return false;
	*c = (struct cbm_cpu_cache *)(void *)(map->caches + cpu * cpu_bytes);
	return cbm_cache_trylock_local(*c, w);
}

/*
 * Portable mode's fast path: take a cache of the calling thread's CPU (a
 * hint, cpu.h): the CPU's own, or when a thread preempted inside holds that
 * one, the CPU's spare (P3). NULL when both are held: the caller goes
 * global. *w is the word as taken.
 */
static inline struct cbm_cpu_cache *
cbm_cache_lock_current(const struct cbm_cache_map *map, size_t cpu_bytes,
		       size_t cache_bytes, uint64_t *w)
{
	unsigned cpu = cbm_current_cpu_at(map->rseq_offset);
	struct cbm_cpu_cache *c;

	if (cbm_unlikely(cpu >= map->ncpus))
		cpu %= map->ncpus;
	c = (struct cbm_cpu_cache *)(void *)(map->caches + cpu * cpu_bytes);
	if (cbm_likely(cbm_cache_trylock_local(c, w)))
		return c;
	c = (struct cbm_cpu_cache *)(void *)((char *)c + cache_bytes);
	if (cbm_cache_trylock_local(c, w))
		return c;
	return NULL;
}

/* Entries the fast table needs from CPU 0's on (see above); at least
 * ncpus. */
size_t cbm_fast_table_bound(unsigned ncpus);

/*
 * Fill the fast table of a map whose caches and ncpus are set (CPUs
 * cpu_bytes apart): table has CBM_FAST_BEFORE + bound entries, and
 * map->fast becomes its CPU 0 entry. armed: the pool's fast paths may use
 * the caches (rseq mode, no bookkeeping); otherwise every entry is the
 * sentinel.
 */
void cbm_fast_table_fill(struct cbm_cache_map *map, size_t cpu_bytes,
			 struct cbm_cpu_cache **table, size_t bound,
			 bool armed);

/*
 * A cache held by the calling thread for a slow path, and whether a move
 * to or from the global tier has begun with it (transit.h, T1): the first
 * refill or spill begins one, and cbm_caches_unhold ends it after it
 * publishes the word, when the move's buffers have landed.
 */
struct cbm_held {
	struct cbm_cpu_cache *c;
	uint64_t w; /* the word as it will be published */
	bool moving;
};

/*
 * Hold a cache of the calling CPU: portable mode by its lock (or its
 * spare's), rseq mode by a sequence that sets LOCAL_LOCK (rseq.h). false
 * when it is held by another thread (or, in rseq mode, the thread has no
 * rseq registration): the caller goes to the global tier (P3), counted in
 * busy_fallbacks. Caller holds no cache.
 */
bool cbm_caches_hold_current(struct cbm_caches *caches, struct cbm_held *h);

/* Publish the held cache's word and end its move, if one began. */
void cbm_caches_unhold(struct cbm_caches *caches, struct cbm_held *h);

/* Buffers in the held cache. */
static inline uint32_t
cbm_held_count(const struct cbm_held *h)
{
	return cbm_word_count(h->w);
}

/* Pop one buffer from the held cache, refilling it from the global tier
 * once if it is empty; NULL when both are empty. */
void *cbm_held_pop(struct cbm_caches *caches, struct cbm_held *h);

/* Take up to n buffers into bufs in runs off the top of the held cache,
 * refilling it as the single-buffer path would; returns how many (fewer
 * than n only when the global tier ran dry). */
size_t cbm_held_take_run(struct cbm_caches *caches, struct cbm_held *h,
			 void **bufs, size_t n);

/* Put n buffers the caller owns and has checked onto the held cache in
 * runs, sending magazines out to the global tier as the cache fills. */
void cbm_held_put_run(struct cbm_caches *caches, struct cbm_held *h,
		      void *const *bufs, size_t n);

/* One step of waiting for another thread (a cache's holder, a move in
 * flight): a pause at first, then sched_yield, then sleeps of up to a
 * millisecond. *spins starts at 0. */
void cbm_spin_wait(unsigned *spins);

/*
 * Take cache i from anywhere (a drain, a fold, fork), waiting for its
 * holder if need be (P3, P4: the caller holds no cache). In rseq mode it
 * also fences the cache's CPU, so that no restartable sequence begun
 * before can still commit (rseq.h). Returns the word as taken.
 */
uint64_t cbm_cache_take(struct cbm_caches *caches, unsigned i);

/* Drop a cache taken with cbm_cache_take, publishing w, and end the move
 * begun with it if moving. */
void cbm_cache_give_back(struct cbm_caches *caches, unsigned i, uint64_t w,
			 bool moving);

/* Take cache i and fold its pops (P5), for a cache whose fast path never
 * leaves it. Caller holds no cache. */
void cbm_cache_fold(struct cbm_caches *caches, unsigned i);

/* Take cache i, move all its buffers to the global tier, give it back;
 * returns how many moved, and adds that to *counter within the move.
 * Caller holds no cache. */
size_t cbm_cache_drain(struct cbm_caches *caches, unsigned i,
		       cbm_atomic_u64 *counter);

/*
 * Drain caches into the global tier, each taken in turn (cbm_cache_drain).
 * With stop_early, stop after the first cache that gave something. Returns
 * the number of buffers moved, also added to *counter.
 */
size_t cbm_caches_drain(struct cbm_caches *caches, bool stop_early,
			cbm_atomic_u64 *counter);

/* Fork: take every cache (in order, P4), and give them all back. */
void cbm_caches_take_all(struct cbm_caches *caches);
void cbm_caches_give_all_back(struct cbm_caches *caches);

/* Buffers in the cache, read without taking it (approximate while busy). */
static inline size_t
cbm_cache_count(const struct cbm_cpu_cache *c)
{
	return cbm_word_count(cbm_load_relaxed_u64(&c->word));
}

/* Whether a thread holds the cache (audits of a quiescent pool). */
static inline bool
cbm_cache_is_held(const struct cbm_cpu_cache *c)
{
	return (cbm_load_relaxed_u64(&c->word) & CBM_CACHE_LOCKS) != 0;
}

/* Pops counted in the word and not yet folded (trim.c folds them in time). */
static inline uint32_t
cbm_cache_unfolded_pops(const struct cbm_cpu_cache *c)
{
	return cbm_word_pops(cbm_load_relaxed_u64(&c->word));
}

/* Allocations and frees through the cache so far (P5). */
uint64_t cbm_cache_allocs(const struct cbm_cpu_cache *c);
uint64_t cbm_cache_frees(const struct cbm_cpu_cache *c);

/* What every cache of a pool counted, and holds now (stats.c). */
struct cbm_cache_totals {
	uint64_t allocs, frees, depot_exchanges, global_pops, global_pushes;
	uint64_t cached;
};

void cbm_caches_totals(const struct cbm_caches *caches,
		       struct cbm_cache_totals *t);

/*
 * One look at every cache for the dry path (dry.c): false as soon as one
 * holds a buffer; otherwise true, with *pops the sum of their words' pop
 * fields. Acquire loads (dry.c, D1).
 */
bool cbm_caches_look_empty(const struct cbm_caches *caches, uint64_t *pops);

/* The slots of a cache nobody is using (audits): *n buffers from the
 * return. */
static inline void *const *
cbm_cache_slots_quiescent(const struct cbm_cpu_cache *c, uint32_t *n)
{
	*n = cbm_word_count(cbm_load_relaxed_u64(&c->word));
	return c->slots;
}

#endif /* CBM_PERCPU_H */
