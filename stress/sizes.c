/* SPDX-License-Identifier: MIT */
/*
 * Scenario sizes: a size-class heap (cbm.h, cbm_heap) under mixed sizes
 * from every thread. Each worker asks for sizes drawn as a server's (60%
 * 16-512 B, 30% 512 B-16 KiB, 10% 16-256 KiB), frees its own buffers one
 * by one, in bulk through the class pool (cbm_heap_pool) or by retiring
 * them, and hands some to other threads through a queue, which free them
 * there. The heap has a ceiling (max_bytes) low enough that the free
 * buffers the CPU caches keep fill it: allocations keep needing the other
 * classes' free memory. The run is rounds of a fresh heap each (spacing 4,
 * 2, 1 in turn, every fourth a debug heap), so classes are made under
 * racing first allocations every round.
 *
 * Checks:
 *  [sized] each buffer is of the smallest class that holds its size, the
 *    heap's classes are the header's (the same model as test_heap.c),
 *    buffers are aligned as their class, sizes above max_size are refused
 *    with EINVAL;
 *  [exclusivity] a buffer is claimed in its class's owner table (CAS
 *    from 0), stamped with its holder at both ends and filled with a
 *    byte of its holder over the rest of its usable size; all of it is
 *    checked when it is given back or handed on;
 *  [released] a held buffer's fill reads as zeros: its page went back to
 *    the OS under it;
 *  [capacity] cbm_heap_bytes never above max_bytes, a NULL only with
 *    ENOMEM; with the workers parked, the coordinator gets in 64 KiB
 *    buffers all of the ceiling that the application does not pin (the
 *    pages of what it holds and their release groups: struct budget, in
 *    16-byte units), and at the end of a round all of it;
 *  [conservation] at the end of each round, each class's stats add up and
 *    its pool verifies, the classes' allocs, frees and retires are what
 *    the application counted, and cbm_heap_bytes is the classes' buffers
 *    less what they released;
 *  [isolation] every 100 ms the workers park and the coordinator writes
 *    over every free buffer of every class.
 *
 * Planted faults it catches: lose-buffer (conservation), class-too-small
 * (sized), unpaid-reuse (conservation: the two accounts of bytes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "pool.h"
#include "stress.h"

#define HOLD_MAX 16
#define QUEUE_MAX 64
#define QUEUE_HOLDER 0xfffffu /* the owner of a buffer in the queue */
#define ROUND_SECONDS 0.5
#define CLASSES_MAX 128
#define MAX_SIZE ((size_t)256 << 10)
#define CEILING ((size_t)4 << 20)
#define BIG ((size_t)64 << 10) /* the class the end check fills */
#define UNIT 16		       /* the budget's unit, bytes */
#define PAGE 4096

struct klass {
	atomic_int state; /* 0: unseen; 1: being set up; 2: tracked */
	struct tracker t;
};

struct handed {
	void *buf;
	unsigned k;
	unsigned char fill;
};

struct sizes {
	cbm_heap *heap;
	unsigned spacing, flags;
	size_t nclasses;
	size_t classes[CLASSES_MAX];
	struct klass k[CLASSES_MAX];
	struct budget budget;
	/* What the application did, against the classes' counters. */
	atomic_ulong allocs, frees, retires;
	pthread_mutex_t qlock;
	struct handed q[QUEUE_MAX];
	unsigned qn;
	pthread_barrier_t parked, resume;
	atomic_bool pause, done;
	size_t peak; /* the most cbm_heap_bytes the coordinator saw */
};

/* ---- the model (test_heap.c's) ------------------------------------------ */

static size_t
model_classes(size_t min, size_t max, unsigned spacing, size_t *out)
{
	size_t n = 0;

	for (size_t p = 16; p <= ((size_t)1 << 30); p <<= 1)
		for (unsigned j = 0; j < spacing; j++) {
			size_t c = p + j * (p / spacing);

			if (c % 16 == 0 && c >= min &&
			    (n == 0 || out[n - 1] < max) && n < CLASSES_MAX)
				out[n++] = c;
		}
	return n;
}

static size_t
model_align(size_t class_size)
{
	size_t a = class_size & -class_size;

	return a < 16 ? 16 : a > 4096 ? 4096 : a;
}

/* The index of the smallest class that holds size. */
static unsigned
class_of(const struct sizes *x, size_t size)
{
	unsigned lo = 0, hi = (unsigned)x->nclasses - 1;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (x->classes[mid] >= size)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * What a held buffer of the class may keep from going back to the OS, in
 * budget units: the pages it touches, and below a page its whole release
 * group (arena.h: the least common multiple of its size and the page, the
 * page times the size's odd part).
 */
static size_t
charge(size_t class_size)
{
	size_t odd = class_size, pages;

	if (class_size < PAGE) {
		while (odd % 2 == 0)
			odd /= 2;
		return PAGE * odd / UNIT;
	}
	pages = class_size % PAGE == 0 ? class_size / PAGE
				       : class_size / PAGE + 2;
	return pages * PAGE / UNIT;
}

static size_t
draw_size(struct rng *r)
{
	unsigned band = rng_below(r, 10);

	if (rng_below(r, 256) == 0)
		return rng_below(r, 17); /* 0 and the smallest class */
	if (band < 6)
		return 16 + rng_below(r, 512 - 16 + 1);
	if (band < 9)
		return 512 + rng_below(r, 16 * 1024 - 512 + 1);
	return 16 * 1024 + rng_below(r, (unsigned)(MAX_SIZE - 16 * 1024 + 1));
}

/* ---- tracking ----------------------------------------------------------- */

/* Class k's owner table, set up by the first thread that sees one of its
 * buffers (its pool exists: a buffer came from it). */
static struct tracker *
tracked(struct sizes *x, unsigned k)
{
	struct klass *c = &x->k[k];
	int expect = 0;

	if (atomic_load(&c->state) == 2)
		return &c->t;
	if (atomic_compare_exchange_strong(&c->state, &expect, 1)) {
		/* (max_size is a class here: every class size is asked.) */
		tracker_init(&c->t, cbm_heap_pool(x->heap, x->classes[k]));
		atomic_store(&c->state, 2);
	}
	while (atomic_load(&c->state) != 2)
		sched_yield();
	return &c->t;
}

static unsigned char
fill_of(uint32_t holder, uint64_t serial)
{
	return (unsigned char)((holder * 131 + serial * 7) | 1);
}

/* The stamps (stress.h) take the first 16 bytes and the last 8; the fill
 * covers what lies between. */
static void
fill_write(void *buf, size_t len, unsigned char v)
{
	if (len > 24)
		memset((char *)buf + 16, v, len - 24);
}

static void
fill_check(struct run *run, struct sizes *x, unsigned k, const void *buf,
	   unsigned char v)
{
	const unsigned char *b = buf;
	size_t len = x->classes[k];

	if (len <= 24)
		return;
	/* All the same byte (b[i] == b[i + 1] throughout), and that byte v. */
	if (b[16] == v && memcmp(b + 16, b + 17, len - 25) == 0) {
		check(run, INV_EXCLUSIVITY, true, "fill intact");
		return;
	}
	for (size_t i = 16; i < len - 8; i++)
		if (b[i] != v) {
			if (b[i] == 0)
				check(run, INV_RELEASED, false,
				      "held %zu-byte buffer %u reads zero at "
				      "byte %zu (its page was released)",
				      len, tracker_index(&x->k[k].t, buf), i);
			else
				check(run, INV_EXCLUSIVITY, false,
				      "held %zu-byte buffer %u was written at "
				      "byte %zu (%u, its holder wrote %u)",
				      len, tracker_index(&x->k[k].t, buf), i,
				      b[i], v);
			return;
		}
}

/* ---- one worker's buffers ----------------------------------------------- */

struct held {
	void *buf;
	unsigned k;
	unsigned char fill;
};

struct worker {
	struct run *run;
	struct sizes *x;
	uint32_t holder;
	uint64_t serial;
	struct rng r;
	struct held h[HOLD_MAX];
	unsigned n;
};

/* A buffer the heap handed out for size (or a bulk call for class k):
 * its class, its alignment, then claim and fill it. */
static bool
adopt(struct worker *w, void *b, size_t size, unsigned k)
{
	struct sizes *x = w->x;
	size_t use = cbm_heap_usable_size(x->heap, b);
	struct tracker *t;
	unsigned char v;

	check(w->run, INV_SIZED, use == x->classes[k],
	      "a request of %zu bytes got a buffer of %zu; its class is %zu",
	      size, use, x->classes[k]);
	check(w->run, INV_SIZED, (uintptr_t)b % model_align(x->classes[k]) == 0,
	      "a %zu-byte buffer at %p, not %zu-aligned", x->classes[k], b,
	      model_align(x->classes[k]));
	if (use != x->classes[k])
		return false; /* not ours to write; the run stops */
	t = tracked(x, k);
	tracker_claim(w->run, t, b, w->holder, ++w->serial);
	v = fill_of(w->holder, w->serial);
	fill_write(b, use, v);
	w->h[w->n++] = (struct held){b, k, v};
	atomic_fetch_add(&x->allocs, 1);
	check(w->run, INV_CAPACITY, cbm_heap_bytes(x->heap) <= CEILING,
	      "the heap holds %zu bytes, above its ceiling of %zu",
	      cbm_heap_bytes(x->heap), CEILING);
	return true;
}

static void
take_one(struct worker *w)
{
	struct sizes *x = w->x;
	size_t size = draw_size(&w->r);
	unsigned k = class_of(x, size);
	size_t own = charge(x->classes[k]);
	void *b;

	budget_take(&x->budget, own);
	errno = 0;
	b = cbm_heap_alloc(x->heap, size);
	if (b == NULL) {
		/* Not judged here: under traffic the other classes' threads
		 * take back the memory the heap asks them for, and the
		 * header's promise is the quiescent one (pause_capacity). */
		check(w->run, INV_CAPACITY, errno == ENOMEM,
		      "cbm_heap_alloc(%zu) failed with errno %d, not ENOMEM",
		      size, errno);
		budget_give(&x->budget, own);
		atomic_fetch_add(&w->run->empty, 1);
		return;
	}
	if (!adopt(w, b, size, k))
		budget_give(&x->budget, own);
}

/* A few buffers of one class, through its pool's bulk call (whose failure
 * is not judged: a class pool's own calls do not ask the other classes
 * for memory, cbm.h). */
static void
take_bulk(struct worker *w)
{
	struct sizes *x = w->x;
	size_t size = draw_size(&w->r);
	unsigned k = class_of(x, size), want = 1 + rng_below(&w->r, 4);
	cbm_pool *pool = cbm_heap_pool(x->heap, size);
	void *b[4];

	if (want > HOLD_MAX - w->n)
		want = HOLD_MAX - w->n;
	check(w->run, INV_SIZED, pool != NULL, "cbm_heap_pool(%zu) failed",
	      size);
	if (pool == NULL || want == 0)
		return;
	budget_take(&x->budget, want * charge(x->classes[k]));
	if (cbm_alloc_bulk(pool, b, want) != 0) {
		budget_give(&x->budget, want * charge(x->classes[k]));
		atomic_fetch_add(&w->run->empty, 1);
		return;
	}
	for (unsigned i = 0; i < want; i++)
		if (!adopt(w, b[i], size, k))
			budget_give(&x->budget, charge(x->classes[k]));
}

/* Check and disown held buffer i, and take it off the list. */
static struct held
let_go(struct worker *w, unsigned i)
{
	struct held h = w->h[i];

	fill_check(w->run, w->x, h.k, h.buf, h.fill);
	tracker_release(w->run, &w->x->k[h.k].t, h.buf, w->holder);
	w->h[i] = w->h[--w->n];
	return h;
}

static void
give_one(struct worker *w, unsigned i)
{
	struct sizes *x = w->x;
	struct held h = let_go(w, i);

	if (rng_below(&w->r, 64) == 0) {
		/* The application's until the barrier brings it back. */
		cbm_heap_retire(x->heap, h.buf);
		atomic_fetch_add(&x->retires, 1);
		cbm_heap_barrier(x->heap);
	} else {
		cbm_heap_free(x->heap, h.buf);
		atomic_fetch_add(&x->frees, 1);
	}
	budget_give(&x->budget, charge(x->classes[h.k]));
}

/* Every held buffer of one class, back through its pool in bulk. */
static void
give_class(struct worker *w)
{
	struct sizes *x = w->x;
	unsigned k = w->h[rng_below(&w->r, w->n)].k, m = 0;
	void *b[HOLD_MAX];

	for (unsigned i = 0; i < w->n;)
		if (w->h[i].k == k)
			b[m++] = let_go(w, i).buf;
		else
			i++;
	cbm_free_bulk(cbm_heap_pool(x->heap, x->classes[k]), b, m);
	atomic_fetch_add(&x->frees, m);
	budget_give(&x->budget, m * charge(x->classes[k]));
}

/* Hand held buffer i to whoever pops it (its budget goes with it). */
static void
hand_on(struct worker *w, unsigned i)
{
	struct sizes *x = w->x;
	struct held h = w->h[i];

	pthread_mutex_lock(&x->qlock);
	if (x->qn == QUEUE_MAX) {
		pthread_mutex_unlock(&x->qlock);
		give_one(w, i);
		return;
	}
	fill_check(w->run, x, h.k, h.buf, h.fill);
	tracker_pass(w->run, &x->k[h.k].t, h.buf, w->holder, QUEUE_HOLDER);
	x->q[x->qn++] = (struct handed){h.buf, h.k, h.fill};
	pthread_mutex_unlock(&x->qlock);
	w->h[i] = w->h[--w->n];
}

/* Take one handed-on buffer, if any, check it and free it here. */
static void
free_handed(struct run *run, struct sizes *x, uint32_t holder)
{
	struct handed h;

	pthread_mutex_lock(&x->qlock);
	if (x->qn == 0) {
		pthread_mutex_unlock(&x->qlock);
		return;
	}
	h = x->q[--x->qn];
	tracker_pass(run, &x->k[h.k].t, h.buf, QUEUE_HOLDER, holder);
	pthread_mutex_unlock(&x->qlock);
	fill_check(run, x, h.k, h.buf, h.fill);
	tracker_release(run, &x->k[h.k].t, h.buf, holder);
	cbm_heap_free(x->heap, h.buf);
	atomic_fetch_add(&x->frees, 1);
	budget_give(&x->budget, charge(x->classes[h.k]));
}

static void
work(struct worker *w)
{
	struct sizes *x = w->x;
	unsigned op = rng_below(&w->r, 100);

	atomic_fetch_add_explicit(&w->run->ops, 1, memory_order_relaxed);
	if (op < 2) {
		/* Above max_size: refused, whatever the size. */
		size_t size = MAX_SIZE + 1 + rng_next(&w->r) % (1u << 30);

		errno = 0;
		check(w->run, INV_SIZED,
		      cbm_heap_alloc(x->heap, size) == NULL && errno == EINVAL,
		      "cbm_heap_alloc(%zu) above max_size did not fail with "
		      "EINVAL",
		      size);
	} else if (op < 45 && w->n < HOLD_MAX) {
		take_one(w);
	} else if (op < 50 && w->n < HOLD_MAX) {
		take_bulk(w);
	} else if (op < 55 && w->n > 0) {
		give_class(w);
	} else if (op < 70 && w->n > 0) {
		hand_on(w, rng_below(&w->r, w->n));
	} else if (op < 85) {
		free_handed(w->run, x, w->holder);
	} else if (w->n > 0) {
		give_one(w, rng_below(&w->r, w->n));
	}
}

/* ---- the coordinator ---------------------------------------------------- */

/*
 * With every worker parked, write over every buffer nobody holds, in
 * every class: a heap that kept anything inside free buffers (links, a
 * header, a class tag) breaks, and the run shows it.
 */
static void
scribble_free_buffers(struct run *run, struct sizes *x)
{
	for (size_t k = 0; k < x->nclasses; k++) {
		struct tracker *t = &x->k[k].t;
		cbm_stats st;
		size_t cap;

		if (atomic_load(&x->k[k].state) != 2)
			continue;
		cbm_pool_stats(t->pool, &st);
		cap = st.capacity < t->capacity ? st.capacity : t->capacity;
		for (uint32_t i = 0; i < cap; i++) {
			char *b = t->base + (size_t)i * t->stride;

			if (atomic_load(&t->owner[i]) != 0)
				continue;
			/* ASan poisons free buffers: lift it for the write
			 * and put it back by the pool's rule (debug.h). */
			cbm_san_leave_pool(&t->pool->blocks, b);
			memset(b, 0xa5, t->block);
			cbm_san_enter_pool(&t->pool->blocks, b);
		}
	}
	check(run, INV_ISOLATION, true, "scribble");
}

/*
 * With every worker parked outside the library, what the ceiling holds
 * beyond what they pin (the budget: their buffers' pages and release
 * groups, the queue's too) is the coordinator's: that many 64 KiB buffers
 * in a row, the other classes' free memory given back for them. (Not in a
 * debug heap, whose guard zones the charges leave out.)
 */
static void
pause_capacity(struct run *run, struct sizes *x)
{
	static void *b[CEILING / BIG + 1];
	cbm_pool *pool = cbm_heap_pool(x->heap, BIG);
	size_t pinned = (uint32_t)atomic_load(&x->budget.word) * (size_t)UNIT;
	size_t want, got = 0;

	if ((x->flags & CBM_POOL_DEBUG) || pool == NULL || pinned >= CEILING)
		return;
	want = (CEILING - pinned) / pool->blocks.stride;
	while (got < want && (b[got] = cbm_heap_alloc(x->heap, BIG)) != NULL)
		got++;
	check(run, INV_CAPACITY, got == want,
	      "with the workers parked, pinning at most %zu bytes, one thread "
	      "got %zu buffers of %zu bytes in a row, not %zu (the heap held "
	      "%zu of %zu)",
	      pinned, got, BIG, want, cbm_heap_bytes(x->heap), CEILING);
	for (size_t i = 0; i < got; i++)
		cbm_heap_free(x->heap, b[i]);
}

static void
coordinate(struct run *run, struct sizes *x, struct rng *r)
{
	unsigned since = 0;

	while (!atomic_load(&run->stop)) {
		unsigned ms = 5 + rng_below(r, 20);

		sleep_us(ms * 1000);
		since += ms;
		switch (rng_below(r, 4)) {
		case 0:
			cbm_heap_trim(x->heap);
			break;
		case 1:
			cbm_heap_release(x->heap);
			break;
		default:
			break;
		}
		{
			size_t now = cbm_heap_bytes(x->heap);

			check(run, INV_CAPACITY, now <= CEILING,
			      "the heap holds %zu bytes, above its ceiling of "
			      "%zu",
			      now, CEILING);
			if (now > x->peak)
				x->peak = now;
		}
		if (since >= 100 && !atomic_load(&run->stop)) {
			since = 0;
			atomic_store(&x->pause, true);
			pthread_barrier_wait(&x->parked);
			atomic_store(&x->pause, false);
			pause_capacity(run, x);
			scribble_free_buffers(run, x);
			pthread_barrier_wait(&x->resume);
		}
	}
	atomic_store(&x->done, true);
}

static void
sizes_thread(struct run *run, unsigned index, void *arg)
{
	struct sizes *x = arg;
	struct worker w = {.run = run, .x = x, .holder = index + 1};

	rng_seed(&w.r, run->opt.seed, index);
	if (index == 0) {
		coordinate(run, x, &w.r);
		return;
	}
	while (!atomic_load(&x->done)) {
		if (atomic_load(&x->pause)) {
			pthread_barrier_wait(&x->parked);
			pthread_barrier_wait(&x->resume);
			continue;
		}
		if (atomic_load(&run->stop)) {
			sleep_us(100);
			continue;
		}
		work(&w);
	}
	while (w.n > 0)
		give_one(&w, w.n - 1);
}

/* ---- a round ------------------------------------------------------------ */

/* The classes are the header's. */
static void
check_classes(struct run *run, struct sizes *x)
{
	static cbm_stats st[CLASSES_MAX];
	size_t want[CLASSES_MAX], n;
	int got = cbm_heap_stats(x->heap, st, CLASSES_MAX);

	n = model_classes(16, MAX_SIZE, x->spacing, want);
	check(run, INV_SIZED, got == (int)n,
	      "spacing %u: %d classes, the header's rule gives %zu", x->spacing,
	      got, n);
	x->nclasses = got > 0 && got <= CLASSES_MAX ? (size_t)got : 0;
	for (size_t k = 0; k < x->nclasses; k++) {
		check(run, INV_SIZED, k >= n || st[k].block_size == want[k],
		      "spacing %u: class %zu is %zu bytes, the header's rule "
		      "gives %zu",
		      x->spacing, k, st[k].block_size, k < n ? want[k] : 0);
		x->classes[k] = st[k].block_size;
	}
}

/* The bytes between class k's buffers (its block size, longer in a debug
 * heap by the guard zone). */
static size_t
stride_of(struct sizes *x, size_t k)
{
	cbm_pool *pool = cbm_heap_pool(x->heap, x->classes[k]);

	return pool ? pool->blocks.stride : x->classes[k];
}

/*
 * The two accounts of the heap's memory agree: cbm_heap_bytes is the
 * classes' buffers less what they released. The reclamation thread may
 * release meanwhile (release_ms), which only lowers both: a reading
 * between two equal cbm_heap_bytes saw no release, and must agree.
 */
static void
check_bytes(struct run *run, struct sizes *x)
{
	static cbm_stats st[CLASSES_MAX];
	size_t before, after, bytes = 0;

	for (int tries = 0; tries < 1000; tries++) {
		before = cbm_heap_bytes(x->heap);
		cbm_heap_stats(x->heap, st, CLASSES_MAX);
		bytes = 0;
		for (size_t k = 0; k < x->nclasses; k++)
			if (st[k].capacity > 0)
				bytes += st[k].capacity * stride_of(x, k) -
					 st[k].released_bytes;
		after = cbm_heap_bytes(x->heap);
		if (before == after)
			break;
		sleep_us(1000);
	}
	check(run, INV_CONSERVATION, before == after && after == bytes,
	      "cbm_heap_bytes says %zu (then %zu), the classes hold %zu",
	      before, after, bytes);
}

/* At the end of a round, quiescent, nothing held: every class adds up. */
static void
check_round(struct run *run, struct sizes *x)
{
	static cbm_stats st[CLASSES_MAX];
	uint64_t allocs = 0, frees = 0, retires = 0;
	size_t bytes = 0;

	cbm_heap_barrier(x->heap);
	cbm_heap_stats(x->heap, st, CLASSES_MAX);
	for (size_t k = 0; k < x->nclasses; k++) {
		const cbm_stats *s = &st[k];

		check(run, INV_CONSERVATION,
		      s->free + s->cached + s->retired + s->in_use ==
			      s->capacity,
		      "class %zu: free %zu + cached %zu + retired %zu + in use "
		      "%zu != %zu",
		      s->block_size, s->free, s->cached, s->retired, s->in_use,
		      s->capacity);
		check(run, INV_CONSERVATION, s->in_use == 0,
		      "class %zu: %zu in use, but the threads hold none",
		      s->block_size, s->in_use);
		check(run, INV_CONSERVATION,
		      s->allocs == s->frees + s->retires + s->in_use,
		      "class %zu: allocs %lu != frees %lu + retires %lu + in "
		      "use %zu",
		      s->block_size, (unsigned long)s->allocs,
		      (unsigned long)s->frees, (unsigned long)s->retires,
		      s->in_use);
		if (atomic_load(&x->k[k].state) == 2)
			check(run, INV_CONSERVATION,
			      cbm_pool_verify(x->k[k].t.pool) == 0,
			      "class %zu: cbm_pool_verify failed (above)",
			      s->block_size);
		allocs += s->allocs;
		frees += s->frees;
		retires += s->retires;
		bytes += s->capacity * stride_of(x, k) - s->released_bytes;
	}
	/* A failed bulk call counts what it took and put back in both
	 * allocs and frees (cbm.h): the same surplus in each. */
	check(run, INV_CONSERVATION,
	      allocs >= atomic_load(&x->allocs) &&
		      allocs - atomic_load(&x->allocs) ==
			      frees - atomic_load(&x->frees) &&
		      retires == atomic_load(&x->retires),
	      "the classes count %lu allocs, %lu frees, %lu retires; the "
	      "application made %lu, %lu, %lu (and failed bulk calls as "
	      "many allocs as frees)",
	      (unsigned long)allocs, (unsigned long)frees,
	      (unsigned long)retires, atomic_load(&x->allocs),
	      atomic_load(&x->frees), atomic_load(&x->retires));
	check(run, INV_CAPACITY, bytes <= CEILING,
	      "the classes hold %zu bytes, above the ceiling of %zu", bytes,
	      CEILING);
	check_bytes(run, x);
}

/* One thread gets the whole ceiling in one class, the others' free memory
 * given back to it. */
static void
check_heap_capacity(struct run *run, struct sizes *x)
{
	static void *b[CEILING / BIG + 1];
	cbm_pool *pool = cbm_heap_pool(x->heap, BIG);
	size_t got = 0, want = CEILING / pool->blocks.stride;

	while (got <= want && (b[got] = cbm_heap_alloc(x->heap, BIG)) != NULL)
		got++;
	check(run, INV_CAPACITY, got == want,
	      "one thread got %zu buffers of %zu bytes in a row; the ceiling "
	      "holds %zu",
	      got, BIG, want);
	if (got != want) {
		/* Who kept the rest. */
		static cbm_stats st[CLASSES_MAX];

		cbm_heap_stats(x->heap, st, CLASSES_MAX);
		for (size_t k = 0; k < x->nclasses; k++)
			if (st[k].capacity * st[k].block_size >
			    st[k].released_bytes +
				    (k == class_of(x, BIG) ? got * BIG : 0))
				fprintf(stderr,
					"  class %zu: %zu buffers, %zu bytes "
					"released, %zu in use\n",
					st[k].block_size, st[k].capacity,
					st[k].released_bytes, st[k].in_use);
	}
	for (size_t i = 0; i < got; i++)
		cbm_heap_free(x->heap, b[i]);
}

static void
one_round(struct run *run, struct sizes *x, unsigned round)
{
	static const unsigned spacings[] = {4, 2, 1};
	cbm_heap_config cfg = {
		.min_size = 16,
		.max_size = MAX_SIZE,
		.max_bytes = CEILING,
		.name = "sizes",
		.release_ms = 10,
		.idle_trim_ms = 10,
	};

	x->spacing = spacings[round % 3];
	x->flags = round % 4 == 3 ? CBM_POOL_DEBUG : 0;
	cfg.spacing = x->spacing;
	cfg.flags = x->flags | run->opt.flags; /* --flags: every class */
	if (cbm_heap_create(&cfg, &x->heap) != 0)
		abort();
	check_classes(run, x);
	x->budget = (struct budget){0};
	atomic_store(&x->allocs, 0);
	atomic_store(&x->frees, 0);
	atomic_store(&x->retires, 0);
	atomic_store(&x->done, false);
	atomic_store(&x->pause, false);
	x->qn = 0;
	for (size_t k = 0; k < CLASSES_MAX; k++)
		atomic_store(&x->k[k].state, 0);
	pthread_barrier_init(&x->parked, NULL, run->opt.threads);
	pthread_barrier_init(&x->resume, NULL, run->opt.threads);
	run_threads(run, run->opt.threads, sizes_thread, x);
	/* What the queue still holds, freed here. */
	while (x->qn > 0)
		free_handed(run, x, 1);
	check_round(run, x);
	check_heap_capacity(run, x);
	pthread_barrier_destroy(&x->parked);
	pthread_barrier_destroy(&x->resume);
	for (size_t k = 0; k < x->nclasses; k++)
		if (atomic_load(&x->k[k].state) == 2)
			tracker_fini(&x->k[k].t);
	cbm_heap_destroy(x->heap);
}

void
scenario_sizes(struct run *run)
{
	static struct sizes x = {.qlock = PTHREAD_MUTEX_INITIALIZER};
	double seconds = run->opt.seconds;
	unsigned rounds = 0;
	unsigned long bad;

	run->opt.seconds = ROUND_SECONDS;
	do {
		atomic_store(&run->stop, false);
		one_round(run, &x, rounds);
		rounds++;
		bad = 0;
		for (int i = 0; i < INV_COUNT; i++)
			bad += atomic_load(&run->violations[i]);
	} while (bad == 0 && rounds * ROUND_SECONDS < seconds);
	run->opt.seconds = seconds;
	printf("sizes: %u rounds, %lu allocations that found the ceiling, "
	       "at most %zu KiB held from the OS of %zu\n",
	       rounds, atomic_load(&run->empty), x.peak >> 10, CEILING >> 10);
	/* Worth its name only if it reached the ceiling (unless it stopped
	 * early, at a violation). */
	check(run, INV_CAPACITY, bad > 0 || atomic_load(&run->empty) > 0,
	      "no allocation ever found the ceiling: it checked nothing");
}
