/* SPDX-License-Identifier: MIT */
/*
 * Per-CPU caches: holding one for a slow path, the moves a held cache
 * makes to and from the global tier, taking a cache from elsewhere, and
 * what the other layers read of them (invariants P1-P5 in percpu.h).
 */
#include "percpu.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>

#include "contract.h"
#include "global.h"
#include "plant.h"
#include "rseq.h"

void
cbm_cache_fold_held(struct cbm_cpu_cache *c, uint64_t *w)
{
	cbm_counter_add_owned(&c->pops_folded, cbm_word_pops(*w));
	*w &= 0xffffffffu;
}

/* ---- the fast table ----------------------------------------------------- */

/* Every fast table's sentinel (percpu.h): held by nobody, so no path ever
 * takes or changes it; its word says held to every sequence that reads it. */
static struct cbm_cpu_cache sentinel = {.word = CBM_CACHE_LOCKS};

/* Above every CPU number Linux can have (NR_CPUS is at most 8192 on
 * x86-64), for a system whose possible-CPU mask cannot be read. */
#define CPU_NUMBER_CEILING 8192

/* One more than the highest CPU in the kernel's possible mask ("0-3,8"),
 * which is nr_cpu_ids, above every cpu_id it writes; 0 if unreadable. */
static size_t
possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned long top = 0, v;
	int c = 0;

	if (f == NULL)
		return 0;
	while (c != EOF && c != '\n') {
		if (fscanf(f, "%lu", &v) != 1) {
			top = 0;
			break;
		}
		if (v + 1 > top)
			top = v + 1;
		c = fgetc(f); /* '-', ',' or the end */
	}
	fclose(f);
	return top < CPU_NUMBER_CEILING ? (size_t)top : 0;
}

size_t
cbm_fast_table_bound(unsigned ncpus)
{
	size_t n = possible_cpus();

	if (n == 0)
		n = CPU_NUMBER_CEILING;
	return n > ncpus ? n : ncpus;
}

void
cbm_fast_table_fill(struct cbm_cache_map *map, size_t cpu_bytes,
		    struct cbm_cpu_cache **table, size_t bound, bool armed)
{
	for (size_t i = 0; i < CBM_FAST_BEFORE + bound; i++)
		table[i] = &sentinel;
	table += CBM_FAST_BEFORE;
	for (unsigned cpu = 0; armed && cpu < map->ncpus; cpu++)
		table[cpu] = (struct cbm_cpu_cache *)(void *)(map->caches +
							      cpu * cpu_bytes);
	map->fast = table;
}

/* ---- holding the calling CPU's cache ----------------------------------- */

bool
cbm_caches_hold_current(struct cbm_caches *caches, struct cbm_held *h)
{
	struct cbm_cpu_cache *c;

	CBM_ASSERT_NO_CACHE_HELD(); /* P4 */
	h->moving = false;
#ifdef CBM_HAVE_RSEQ
	if (caches->mode == CBM_MODE_RSEQ) {
		enum cbm_rseq_result r;

		while ((r = cbm_rseq_lock(caches->map, caches->cpu_bytes, &c,
					  &h->w)) == CBM_RSEQ_ABORTED)
			cbm_fetch_add_relaxed_u64(&caches->rseq_aborts, 1);
		c = r == CBM_RSEQ_DONE ? c : NULL;
	} else
#endif
		c = cbm_cache_lock_current(caches->map, caches->cpu_bytes,
					   caches->cache_bytes, &h->w);
	h->c = c;
	if (cbm_unlikely(c == NULL)) {
		cbm_fetch_add_relaxed_u64(&caches->busy_fallbacks, 1);
		return false;
	}
	CBM_WITNESS_HOLD();
	return true;
}

/* The contract of every function that takes a held cache. (Where the
 * trim-no-lock fault is planted, drains break it on purpose, and the stress
 * suite must be the one to catch that: plant.h.) */
static inline bool
held_by_someone(const struct cbm_cpu_cache *c)
{
	return (cbm_load_relaxed_u64(&c->word) & CBM_CACHE_LOCKS) != 0 ||
	       CBM_PLANTED(CBM_PLANT_TRIM_NO_LOCK);
}

void
cbm_caches_unhold(struct cbm_caches *caches, struct cbm_held *h)
{
	CBM_ASSERT(held_by_someone(h->c));
	cbm_cache_release(h->c, h->w);
	CBM_WITNESS_DROP();
	/* T1: the move's buffers have landed only once the word is out. */
	if (h->moving)
		cbm_transit_end(&caches->global->transit, true);
}

/* Begin the held cache's move if it has not begun (transit.h, T1). */
static void
begin_moving(struct cbm_caches *caches, bool *moving)
{
	if (!*moving) {
		cbm_transit_begin(&caches->global->transit);
		*moving = true;
	}
}

/* Bring a magazine's worth of buffers in from the global tier when the
 * cache is empty; false when the tier is empty too. Caller holds c. */
static bool
refill_held(struct cbm_caches *caches, struct cbm_cpu_cache *c, uint64_t *w,
	    bool *moving)
{
	uint32_t n = cbm_word_count(*w), got;
	bool began = !*moving;
	enum cbm_run_kind kind;

	/* Look before beginning a move (T3): on a dry pool, refills that
	 * cannot succeed disturb nobody's view, and fold nothing (a fold
	 * without a move would let the word repeat a value, dry.c). */
	if (cbm_global_looks_empty(caches->global))
		return false;
	begin_moving(caches, moving);
	got = cbm_global_take_run(caches->global, &c->slots[n],
				  caches->mag_size, &kind);
	if (got == 0) {
		if (began) {
			/* Lost the race for what we saw: nothing moved (T3). */
			cbm_transit_end(&caches->global->transit, false);
			*moving = false;
		}
		return false;
	}
	cbm_counter_add_owned(kind == CBM_RUN_MAGAZINE ? &c->depot_exchanges
						       : &c->global_pops,
			      1);
	cbm_cache_fold_held(c, w);
	*w += got;
	cbm_counter_add_owned(&c->moved_in, got);
	/* Stress builds: the buffers are in this cache's slots while its
	 * word, until released, still says what it said before. */
	CBM_YIELD_AT(CBM_SITE_REFILL_UNCOMMITTED);
	return true;
}

/* Move the top k buffers of the cache out to the global tier. The caller
 * holds c and has begun the move. */
static void
move_out(struct cbm_caches *caches, struct cbm_cpu_cache *c, uint64_t *w,
	 uint32_t k)
{
	uint32_t n = cbm_word_count(*w);
	enum cbm_run_kind kind;

	kind = cbm_global_put_run(caches->global, &c->slots[n - k], k);
	cbm_counter_add_owned(kind == CBM_RUN_MAGAZINE ? &c->depot_exchanges
						       : &c->global_pushes,
			      1);
	*w -= k;
	cbm_counter_add_owned(&c->moved_out, k);
}

/* Move every buffer to the global tier; returns how many (0: no move
 * begun). Caller holds c. */
static size_t
drain_held(struct cbm_caches *caches, struct cbm_cpu_cache *c, uint64_t *w,
	   bool *moving)
{
	size_t moved = cbm_word_count(*w);

	CBM_ASSERT(held_by_someone(c));
	if (moved == 0)
		return 0;
	begin_moving(caches, moving);
	cbm_cache_fold_held(c, w);
	/* Whole magazines to the depot while they last, the rest spilled. */
	while (cbm_word_count(*w) > 0) {
		uint32_t n = cbm_word_count(*w);

		move_out(caches, c, w,
			 n < caches->mag_size ? n : caches->mag_size);
	}
	return moved;
}

void *
cbm_held_pop(struct cbm_caches *caches, struct cbm_held *h)
{
	void *buf;

	CBM_ASSERT(held_by_someone(h->c));
	buf = cbm_cache_pop_held(h->c, &h->w);
	if (cbm_unlikely(buf == NULL) &&
	    refill_held(caches, h->c, &h->w, &h->moving))
		buf = cbm_cache_pop_held(h->c, &h->w);
	return buf;
}

size_t
cbm_held_take_run(struct cbm_caches *caches, struct cbm_held *h, void **bufs,
		  size_t n)
{
	size_t got = 0;

	CBM_ASSERT(held_by_someone(h->c));
	while (got < n) {
		uint32_t have = cbm_word_count(h->w);
		size_t k = n - got < have ? n - got : have;

		memcpy(&bufs[got], &h->c->slots[have - k], k * sizeof(void *));
		if (cbm_unlikely(cbm_word_pops(h->w) > UINT32_MAX - k))
			cbm_cache_fold_held(h->c, &h->w);
		h->w += k * CBM_CACHE_POP - k;
		got += k;
		if (got < n && !refill_held(caches, h->c, &h->w, &h->moving))
			break;
	}
	return got;
}

void
cbm_held_put_run(struct cbm_caches *caches, struct cbm_held *h,
		 void *const *bufs, size_t n)
{
	uint32_t slots = caches->map->slots;

	CBM_ASSERT(held_by_someone(h->c));
	for (size_t done = 0; done < n;) {
		uint32_t have = cbm_word_count(h->w);
		size_t k = n - done;

		if (have == slots) {
			/* Full: a magazine's worth out, as a free would. */
			begin_moving(caches, &h->moving);
			cbm_cache_fold_held(h->c, &h->w);
			move_out(caches, h->c, &h->w, caches->mag_size);
			have = cbm_word_count(h->w);
		}
		if (k > slots - have)
			k = slots - have;
		memcpy(&h->c->slots[have], &bufs[done], k * sizeof(void *));
		h->w += k;
		done += k;
	}
}

/* ---- waiting ------------------------------------------------------------ */

/* cbm_spin_wait: pauses, then yields, then sleeps. */
#define SPINS_PAUSE 64
#define SPINS_YIELD 128

void
cbm_spin_wait(unsigned *spins)
{
	unsigned n = ++*spins;

	/* The thread waited for may be preempted on the very CPU we spin on:
	 * spin briefly (ck_pr_stall is the pause instruction, it touches no
	 * memory), then give the CPU away so that it can finish; and if it
	 * still has not, sleep, doubling up to a millisecond: sched_yield
	 * never hands the CPU to a thread of a lower scheduling class, which
	 * a real-time waiter would otherwise starve. */
	if (n < SPINS_PAUSE) {
		ck_pr_stall();
	} else if (n < SPINS_YIELD) {
		sched_yield();
	} else {
		unsigned k = n - SPINS_YIELD;
		struct timespec ts = {
			.tv_nsec = 1000L << (k < 10 ? k : 10),
		};

		nanosleep(&ts, NULL);
	}
}

/* ---- taking a cache from anywhere --------------------------------------- */

/* Take cache i (cbm_cache_take), for a caller allowed to hold others. */
static uint64_t
take_cache(struct cbm_caches *caches, unsigned i)
{
	struct cbm_cpu_cache *c = cbm_cache_at(caches, i);
	unsigned spins = 0;
	uint64_t w;

	if (caches->mode == CBM_MODE_PORTABLE) {
		while (!cbm_cache_trylock(c, &w))
			cbm_spin_wait(&spins);
		return w;
	}
	/* rseq mode. Drainers take turns first: the REMOTE_LOCK bit does not
	 * say whose it is, so two drainers could otherwise each see "their"
	 * bit after their fence, one of them set by the other. */
	while (cbm_load_relaxed_u32(&c->drainer) != 0 ||
	       cbm_xchg_acquire_u32(&c->drainer, 1) != 0)
		cbm_spin_wait(&spins);
	for (;;) {
		/* Set REMOTE_LOCK, fence the CPU, and check the bit survived
		 * (rseq.h). */
		w = cbm_load_relaxed_u64(&c->word);
		if ((w & CBM_CACHE_LOCKS) != 0 ||
		    !atomic_compare_exchange_strong_explicit(
			    &c->word, &w, w | CBM_CACHE_REMOTE_LOCK,
			    memory_order_acquire, memory_order_relaxed)) {
			cbm_spin_wait(&spins);
			continue;
		}
		CBM_YIELD_AT(CBM_SITE_DRAIN_FENCING);
		cbm_rseq_fence(i / caches->caches_per_cpu);
		/* The fence was a full barrier on that CPU: this load sees the
		 * last commit made there, which may have kept the bit (a
		 * push's add, rseq.h) and changed the count. */
		if (CBM_PLANTED(CBM_PLANT_DRAIN_TRUSTS_CAS))
			return w; /* the word the CAS replaced */
		w = cbm_load_acquire_u64(&c->word);
		if (w & CBM_CACHE_REMOTE_LOCK)
			return w & ~(uint64_t)CBM_CACHE_REMOTE_LOCK;
	}
}

uint64_t
cbm_cache_take(struct cbm_caches *caches, unsigned i)
{
	uint64_t w;

	CBM_ASSERT(i < caches->ncaches);
	/* P4: whoever waits for a cache holds none (fork's take_all aside). */
	CBM_ASSERT_NO_CACHE_HELD();
	w = take_cache(caches, i);
	CBM_WITNESS_HOLD();
	return w;
}

void
cbm_cache_give_back(struct cbm_caches *caches, unsigned i, uint64_t w,
		    bool moving)
{
	struct cbm_cpu_cache *c = cbm_cache_at(caches, i);

	CBM_ASSERT(held_by_someone(c));
	cbm_cache_release(c, w);
	CBM_WITNESS_DROP();
	if (caches->mode == CBM_MODE_RSEQ)
		/* Release: pairs with the next drainer's acquire. */
		cbm_store_release_u32(&c->drainer, 0);
	if (moving)
		cbm_transit_end(&caches->global->transit, true); /* T1 */
}

void
cbm_cache_fold(struct cbm_caches *caches, unsigned i)
{
	uint64_t w = cbm_cache_take(caches, i);

	/* A fold lowers the word's pop field: a move (dry.c, D2). */
	cbm_transit_begin(&caches->global->transit);
	cbm_cache_fold_held(cbm_cache_at(caches, i), &w);
	cbm_cache_give_back(caches, i, w, true);
}

size_t
cbm_cache_drain(struct cbm_caches *caches, unsigned i, cbm_atomic_u64 *counter)
{
	struct cbm_cpu_cache *c = cbm_cache_at(caches, i);
	bool moving = false;
	size_t moved;
	uint64_t w;

	if (CBM_PLANTED(CBM_PLANT_TRIM_NO_LOCK)) {
		w = cbm_load_relaxed_u64(&c->word);
		moved = drain_held(caches, c, &w, &moving);
		cbm_fetch_add_relaxed_u64(counter, moved);
		cbm_store_relaxed_u64(&c->word, w);
		if (moving)
			cbm_transit_end(&caches->global->transit, true);
		return moved;
	}
	w = cbm_cache_take(caches, i);
	moved = drain_held(caches, c, &w, &moving);
	/* Within the move, so that stats see the drain and its count
	 * together (transit.h). */
	cbm_fetch_add_relaxed_u64(counter, moved);
	CBM_YIELD_AT(CBM_SITE_DRAIN_UNRELEASED);
	cbm_cache_give_back(caches, i, w, moving);
	return moved;
}

size_t
cbm_caches_drain(struct cbm_caches *caches, bool stop_early,
		 cbm_atomic_u64 *counter)
{
	size_t moved = 0;

	for (unsigned i = 0; i < caches->ncaches; i++) {
		/* Skip a cache that is visibly empty without taking it: a
		 * buffer on its way in is in transit, and the dry path waits
		 * for it (dry.c). */
		if (cbm_cache_count(cbm_cache_at(caches, i)) == 0)
			continue;
		CBM_YIELD_AT(CBM_SITE_DRAIN_BEFORE_TAKE);
		moved += cbm_cache_drain(caches, i, counter);
		if (stop_early && moved > 0)
			break;
	}
	return moved;
}

void
cbm_caches_take_all(struct cbm_caches *caches)
{
	/* The one place a thread holds two caches: in order, and it waits
	 * for each holder with none of them waiting for it (P4). */
	for (unsigned i = 0; i < caches->ncaches; i++) {
		take_cache(caches, i);
		CBM_WITNESS_HOLD();
	}
}

void
cbm_caches_give_all_back(struct cbm_caches *caches)
{
	for (unsigned i = 0; i < caches->ncaches; i++) {
		struct cbm_cpu_cache *c = cbm_cache_at(caches, i);
		uint64_t w = cbm_load_relaxed_u64(&c->word);

		cbm_cache_give_back(caches, i, w & ~(uint64_t)CBM_CACHE_LOCKS,
				    false);
	}
}

/* ---- what the other layers read ---------------------------------------- */

uint64_t
cbm_cache_allocs(const struct cbm_cpu_cache *c)
{
	/* The word first, with acquire (pairs with the release that ends a
	 * fold): if the fold's cleared word is seen, so is its new total, and
	 * a race can only overcount, transiently. */
	uint64_t w = cbm_load_acquire_u64(&c->word);

	return cbm_load_relaxed_u64(&c->pops_folded) + cbm_word_pops(w);
}

uint64_t
cbm_cache_frees(const struct cbm_cpu_cache *c)
{
	/* P5: pushes = count - moved_in + moved_out + pops. The terms are
	 * read at different moments; while busy they may cross. */
	int64_t n = (int64_t)cbm_cache_count(c) +
		    (int64_t)cbm_load_relaxed_u64(&c->moved_out) +
		    (int64_t)cbm_cache_allocs(c) -
		    (int64_t)cbm_load_relaxed_u64(&c->moved_in);

	return n > 0 ? (uint64_t)n : 0;
}

void
cbm_caches_totals(const struct cbm_caches *caches, struct cbm_cache_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < caches->ncaches; i++) {
		const struct cbm_cpu_cache *c = cbm_cache_at(caches, i);

		t->allocs += cbm_cache_allocs(c);
		t->frees += cbm_cache_frees(c);
		t->depot_exchanges += cbm_load_relaxed_u64(&c->depot_exchanges);
		t->global_pops += cbm_load_relaxed_u64(&c->global_pops);
		t->global_pushes += cbm_load_relaxed_u64(&c->global_pushes);
		t->cached += cbm_cache_count(c);
	}
}

bool
cbm_caches_look_empty(const struct cbm_caches *caches, uint64_t *pops)
{
	*pops = 0;
	for (unsigned i = 0; i < caches->ncaches; i++) {
		/* Acquire: dry.c, D1. */
		uint64_t w =
			cbm_load_acquire_u64(&cbm_cache_at(caches, i)->word);

		if (cbm_word_count(w) != 0)
			return false;
		*pops += cbm_word_pops(w);
	}
	return true;
}
