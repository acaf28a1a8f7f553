/* SPDX-License-Identifier: MIT */
/*
 * Size-class heaps (heap.h, where the address map and H1-H3 are argued).
 *
 * The fast paths' caller contract: the heap came from cbm_heap_create and
 * is not being destroyed (cbm.h's rule for pools). cbm_heap_alloc costs a
 * compare for max_size, the class (sizeclass.h), a load of the class's
 * pool and cbm_alloc; cbm_heap_free a subtraction, a shift, a compare, a
 * load and cbm_free, which checks the pointer as for any pool.
 */
#include "heap.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>

#include "arena.h"
#include "check.h"
#include "fork.h"
#include "plant.h"
#include "pool.h"
#include "report.h"

#define DEFAULT_MIN_SIZE 64
#define DEFAULT_MAX_SIZE ((size_t)1 << 20)
#define DEFAULT_SPACING 4
/* Without max_bytes, each slot as large as the address space gives, from
 * this down (2^36: 64 GiB a class, about 3.6 TiB for 57 classes), and no
 * smaller than the floor (sanitizers leave a few TiB for the program). */
#define UNBOUNDED_SLOT_SHIFT 36
#define MIN_SLOT_SHIFT 24
/* Buffers per index: 32 bits, CBM_NIL reserved (cbm.h). */
#define CLASS_MAX_BUFFERS (UINT32_MAX - 1)
/* A class's magazine holds about this many bytes (at least 2 buffers, at
 * most 256): CPU caches of large buffers then strand megabytes, not the
 * gigabytes 256 buffers of 1 MiB a CPU would. Under a ceiling, at most
 * 1/MAGAZINE_SHARE of it, so that caches that refill from what a class at
 * the ceiling just had the others give back do not take it all. */
#define MAGAZINE_BYTES ((size_t)512 << 10)
#define MAGAZINE_SHARE 64
/* At the ceiling: how many times a dry class asks the others, and how
 * long the second time waits for their moves in flight (sched_yield
 * calls). */
#define CEILING_ATTEMPTS 2
#define CEILING_WAIT_YIELDS 10000

/* ---- making a class (H1) ------------------------------------------------ */

/* One lock for every heap's class creation, held across fork() so that a
 * child never finds a creation half done. Registered after the library's
 * own fork handlers, so it is taken before them (prepare handlers run in
 * the reverse order of registration): a creator holding it may still take
 * the registry lock a pool's creation needs. */
static pthread_mutex_t class_lock = PTHREAD_MUTEX_INITIALIZER;

static void
class_lock_take(void)
{
	pthread_mutex_lock(&class_lock);
}

static void
class_lock_give(void)
{
	pthread_mutex_unlock(&class_lock);
}

static void
install_fork_handlers(void)
{
	cbm_fork_handlers_install();
	pthread_atfork(class_lock_take, class_lock_give, class_lock_give);
}

static void
class_config(const struct cbm_heap *heap, unsigned c, cbm_pool_config *cfg,
	     char *name, size_t name_len)
{
	size_t size = heap->classes.size[c];
	size_t mag = heap->magazine_bytes / size;

	memset(cfg, 0, sizeof(*cfg));
	cfg->block_size = size;
	cfg->align = cbm_class_align(size);
	cfg->max_capacity = heap->max_capacity[c] ? heap->max_capacity[c] : 1;
	cfg->magazine_size = mag < 2 ? 2 : mag > 256 ? 256 : (unsigned)mag;
	cfg->flags = heap->flags;
	cfg->release_ms = heap->release_ms;
	cfg->idle_trim_ms = heap->idle_trim_ms;
	/* The heap's name cut to leave room for the size (CBM_NAME_MAX). */
	snprintf(name, name_len, "%.40s/%zu", heap->name, size);
	cfg->name = name;
}

static bool at_ceiling(void *arg, const cbm_pool *dry, unsigned attempt);

/* Class c's pool, made now if it was not yet; NULL (errno ENOMEM) when it
 * cannot be made. */
static CBM_COLD cbm_pool *
make_class(struct cbm_heap *heap, unsigned c)
{
	struct cbm_pool_place place;
	cbm_pool_config cfg;
	char name[CBM_NAME_MAX];
	cbm_pool *pool;
	int rc = 0;

	pthread_mutex_lock(&class_lock);
	/* Acquire: pairs with the release store below, another maker's. */
	pool = atomic_load_explicit(&heap->pools[c], memory_order_acquire);
	if (pool == NULL) {
		class_config(heap, c, &cfg, name, sizeof(name));
		place.at = (void *)(heap->base +
				    ((uintptr_t)c << heap->slot_shift));
		place.bytes = (size_t)1 << heap->slot_shift;
		place.budget = &heap->budget;
		place.at_ceiling = at_ceiling;
		place.ceiling_arg = heap;
		rc = cbm_pool_create_placed(&cfg, &place, &pool);
		if (rc == 0)
			CBM_YIELD_AT(CBM_SITE_CLASS_MAKING);
		/* Release: pairs with the acquire loads that find it (H1). */
		if (rc == 0)
			atomic_store_explicit(&heap->pools[c], pool,
					      memory_order_release);
	}
	pthread_mutex_unlock(&class_lock);
	if (rc != 0) {
		errno = ENOMEM;
		return NULL;
	}
	return pool;
}

static inline cbm_pool *
class_pool(struct cbm_heap *heap, unsigned c)
{
	/* Acquire: H1's pair. */
	cbm_pool *pool =
		atomic_load_explicit(&heap->pools[c], memory_order_acquire);

	return cbm_likely(pool != NULL) ? pool : make_class(heap, c);
}

/* The class of a pointer into the reservation; nclasses or more when it
 * is in none (heap.h). */
static inline uintptr_t
address_class(const struct cbm_heap *heap, const void *buf)
{
	return ((uintptr_t)buf - heap->base) >> heap->slot_shift;
}

/* ---- creation ---------------------------------------------------------- */

/*
 * Each class's stride, as its pool will have it (cbm_pool_config_stride:
 * a debug heap's guard zones, CBM_DEBUG in the environment): what slots,
 * ceilings and charges are sized by. Checking the classes' configs there
 * also refuses what a pool would (flags, release_ms, idle_trim_ms).
 */
static int
class_strides(struct cbm_heap *heap)
{
	for (unsigned c = 0; c < heap->nclasses; c++) {
		cbm_pool_config cfg;
		char name[CBM_NAME_MAX];
		int rc;

		class_config(heap, c, &cfg, name, sizeof(name));
		rc = cbm_pool_config_stride(&cfg, &heap->stride[c]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Each class's ceiling in buffers (H3) for slots of 2^shift bytes;
 * -EOVERFLOW when a slot would not hold one buffer of some class. */
static int
size_classes(struct cbm_heap *heap, unsigned shift)
{
	for (unsigned c = 0; c < heap->nclasses; c++) {
		size_t max = ((size_t)1 << shift) / heap->stride[c];

		if (max == 0)
			return -EOVERFLOW;
		heap->max_capacity[c] =
			max < CLASS_MAX_BUFFERS ? max : CLASS_MAX_BUFFERS;
	}
	return 0;
}

/* The smallest power-of-two slot that holds max_bytes of the class whose
 * stride, against its size, is the largest (debug guards): H3 with room
 * for the whole budget in any one class. */
static unsigned
bounded_slot_shift(const struct cbm_heap *heap, size_t max_bytes)
{
	size_t need = max_bytes;
	unsigned shift = 12;

	for (unsigned c = 0; c < heap->nclasses; c++) {
		size_t stride = heap->stride[c];
		size_t bytes =
			max_bytes / heap->classes.size[c] * stride + stride;

		if (bytes > need)
			need = bytes;
	}
	while (shift < 62 && ((size_t)1 << shift) < need)
		shift++;
	return shift;
}

/* Reserve the classes' slots: from a slot that holds the whole ceiling in
 * any one class (or, without one, UNBOUNDED_SLOT_SHIFT; never above it)
 * down to the largest the address space gives, no smaller than
 * MIN_SLOT_SHIFT or one buffer of the largest class. A slot below the
 * ceiling leaves a class its own ceiling (cbm_heap_alloc's ENOMEM). */
static int
reserve(struct cbm_heap *heap, size_t max_bytes)
{
	unsigned shift = UNBOUNDED_SLOT_SHIFT, floor = MIN_SLOT_SHIFT;

	if (max_bytes != 0 && bounded_slot_shift(heap, max_bytes) < shift)
		shift = bounded_slot_shift(heap, max_bytes);
	if (shift < floor)
		floor = shift;
	for (; shift >= floor; shift--) {
		void *p;

		if (heap->nclasses > (SIZE_MAX >> shift) / 2) /* no overflow */
			continue;
		if (size_classes(heap, shift) != 0)
			break; /* the largest class fits no smaller slot */
		p = cbm_reserve_range((size_t)heap->nclasses << shift);
		if (p != NULL) {
			heap->base = (uintptr_t)p;
			heap->slot_shift = shift;
			heap->reserved_bytes = (size_t)heap->nclasses << shift;
			return 0;
		}
	}
	return -ENOMEM;
}

int
cbm_heap_create(const cbm_heap_config *cfg, cbm_heap **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct cbm_heap *heap;
	size_t min, max;
	int rc;

	cbm_plant_init();
	if (cfg == NULL || out == NULL)
		return -EINVAL;
	min = cfg->min_size ? cfg->min_size : DEFAULT_MIN_SIZE;
	max = cfg->max_size ? cfg->max_size : DEFAULT_MAX_SIZE;
	heap = aligned_alloc(CBM_CACHELINE, sizeof(*heap));
	if (heap == NULL)
		return -ENOMEM;
	memset(heap, 0, sizeof(*heap));
	rc = cbm_sizeclasses_init(&heap->classes, min, max,
				  cfg->spacing ? cfg->spacing
					       : DEFAULT_SPACING);
	if (rc != 0) {
		free(heap);
		return rc;
	}
	heap->nclasses = heap->classes.n;
	heap->limit = max;
	heap->flags = cfg->flags;
	heap->release_ms = cfg->release_ms;
	heap->idle_trim_ms = cfg->idle_trim_ms;
	snprintf(heap->name, sizeof(heap->name), "%s",
		 cfg->name ? cfg->name : "(unnamed)");
	heap->magazine_bytes = MAGAZINE_BYTES;
	if (cfg->max_bytes != 0 &&
	    cfg->max_bytes / MAGAZINE_SHARE < heap->magazine_bytes)
		heap->magazine_bytes = cfg->max_bytes / MAGAZINE_SHARE;
	rc = class_strides(heap);
	/* The largest class could never be served. */
	if (rc == 0 && cfg->max_bytes != 0 &&
	    cfg->max_bytes < heap->stride[heap->nclasses - 1])
		rc = -EINVAL;
	if (rc != 0) {
		free(heap);
		return rc;
	}
	cbm_budget_init(&heap->budget,
			cfg->max_bytes ? cfg->max_bytes : UINT64_MAX);
	rc = reserve(heap, cfg->max_bytes);
	if (rc != 0) {
		free(heap);
		return rc;
	}
	pthread_once(&once, install_fork_handlers);
	*out = heap;
	return 0;
}

void
cbm_heap_destroy(cbm_heap *heap)
{
	if (heap == NULL)
		return;
	for (unsigned c = 0; c < heap->nclasses; c++) {
		cbm_pool *pool = atomic_load_explicit(&heap->pools[c],
						      memory_order_acquire);

		if (pool != NULL)
			cbm_pool_destroy(pool);
	}
	munmap((void *)heap->base, heap->reserved_bytes);
	free(heap);
}

/* ---- buffers ------------------------------------------------------------ */

static CBM_COLD void *
bad_heap(const char *op)
{
	cbm_report(NULL, CBM_ERR_BAD_ARG, NULL, "%s", op);
	errno = EINVAL;
	return NULL;
}

/* Wait, yielding, for the moves in flight in pool to end (a release pass
 * of the reclamation thread holds what it gives back in one, and gives
 * the budget back only when it ends). Moves end in bounded time unless
 * their thread is preempted; the caller holds none (no one waits for it),
 * and gives up after a while. */
static void
wait_for_moves(const cbm_pool *pool)
{
	for (unsigned i = 0; i < CEILING_WAIT_YIELDS; i++) {
		uint64_t t = cbm_transit_read_begin(&pool->global.transit);

		if (cbm_transit_in_flight(t) == 0)
			return;
		sched_yield();
	}
}

/*
 * A class pool found dry (its ceiling hook, pool.h): with a bounded
 * budget, ask every other class for the memory of its free buffers, their
 * CPU caches drained first, so that the dry class can grow; true when that
 * was tried (the pool then looks again). A second attempt first waits for
 * the others' moves in flight (a background release pass that had their
 * free buffers in hand the first time), then asks again; then it gives up.
 * Runs with no cache held and no move in flight.
 */
static CBM_COLD bool
at_ceiling(void *arg, const cbm_pool *dry, unsigned attempt)
{
	struct cbm_heap *heap = arg;

	if (heap->budget.limit == UINT64_MAX || attempt >= CEILING_ATTEMPTS)
		return false; /* the class's own ceiling: address space */
	if (CBM_PLANTED(CBM_PLANT_NO_GIVEBACK)) /* the bug: plant.h */
		return false;
	for (unsigned d = 0; d < heap->nclasses; d++) {
		cbm_pool *other = atomic_load_explicit(&heap->pools[d],
						       memory_order_acquire);

		if (other == NULL || other == dry)
			continue;
		if (attempt > 0)
			wait_for_moves(other);
		(void)cbm_pool_trim(other);
		(void)cbm_pool_release(other);
	}
	return true;
}

static CBM_COLD void *
alloc_slow(struct cbm_heap *heap, size_t size)
{
	cbm_pool *pool;

	if (heap == NULL)
		return bad_heap("cbm_heap_alloc: NULL heap");
	if (size > heap->limit) {
		errno = EINVAL;
		return NULL;
	}
	pool = class_pool(heap, cbm_size_class(&heap->classes, size));
	return pool != NULL ? cbm_alloc_local(pool) : NULL;
}

void *
cbm_heap_alloc(cbm_heap *heap, size_t size)
{
	cbm_pool *pool;

	if (cbm_unlikely(heap == NULL || size > heap->limit))
		return alloc_slow(heap, size);
	/* Acquire: H1's pair (a plain load on x86-64). */
	pool = atomic_load_explicit(
		&heap->pools[cbm_size_class(&heap->classes, size)],
		memory_order_acquire);
	if (cbm_unlikely(pool == NULL))
		return alloc_slow(heap, size);
	/* A tail call: the pool's NULL (errno ENOMEM) is the heap's, after
	 * its ceiling hook asked the other classes (at_ceiling). */
	return cbm_alloc_local(pool);
}

/* A pointer in no class: reported as cbm_free reports a foreign one. */
static CBM_COLD void
reject_foreign(const struct cbm_heap *heap, const void *buf, const char *op)
{
	cbm_report(NULL, CBM_ERR_FOREIGN, buf,
		   "%s: pointer is not a buffer of heap %s", op, heap->name);
}

/* The pool of the class buf lies in, or NULL (reported) when it lies in
 * none or its class was never made (so it was never handed out). */
static inline cbm_pool *
pool_of(const struct cbm_heap *heap, const void *buf, const char *op)
{
	uintptr_t c = address_class(heap, buf);
	cbm_pool *pool;

	if (cbm_unlikely(c >= heap->nclasses)) {
		reject_foreign(heap, buf, op);
		return NULL;
	}
	/* Relaxed: the buffer's allocation read it first (heap.h). */
	pool = atomic_load_explicit(&heap->pools[c], memory_order_relaxed);
	if (cbm_unlikely(pool == NULL))
		reject_foreign(heap, buf, op);
	return pool;
}

void
cbm_heap_free(cbm_heap *heap, void *buf)
{
	cbm_pool *pool;

	if (cbm_unlikely(heap == NULL)) {
		(void)bad_heap("cbm_heap_free: NULL heap");
		return;
	}
	/* NULL is in no class (below base: the subtraction wraps), so the
	 * no-op costs nothing on the way of every other pointer. */
	if (cbm_unlikely(address_class(heap, buf) >= heap->nclasses) &&
	    buf == NULL)
		return;
	pool = pool_of(heap, buf, "cbm_heap_free");
	if (cbm_likely(pool != NULL))
		cbm_free_local(pool, buf);
}

void
cbm_heap_retire(cbm_heap *heap, void *buf)
{
	cbm_pool *pool;

	if (cbm_unlikely(heap == NULL)) {
		(void)bad_heap("cbm_heap_retire: NULL heap");
		return;
	}
	if (buf == NULL)
		return;
	pool = pool_of(heap, buf, "cbm_heap_retire");
	if (pool != NULL)
		cbm_retire(pool, buf);
}

size_t
cbm_heap_usable_size(const cbm_heap *heap, const void *buf)
{
	cbm_pool *pool;

	if (cbm_unlikely(heap == NULL)) {
		(void)bad_heap("cbm_heap_usable_size: NULL heap");
		return 0;
	}
	if (buf == NULL)
		return 0; /* as malloc_usable_size(NULL) */
	pool = pool_of(heap, buf, "cbm_heap_usable_size");
	if (pool == NULL ||
	    cbm_block_index_checked(pool, buf, "cbm_heap_usable_size") ==
		    CBM_NIL)
		return 0;
	return pool->block_size;
}

cbm_pool *
cbm_heap_pool(cbm_heap *heap, size_t size)
{
	if (heap == NULL)
		return bad_heap("cbm_heap_pool: NULL heap");
	if (size > heap->limit) {
		errno = EINVAL;
		return NULL;
	}
	return class_pool(heap, cbm_size_class(&heap->classes, size));
}

/* ---- every class -------------------------------------------------------- */

static cbm_pool *
made(const struct cbm_heap *heap, unsigned c)
{
	return atomic_load_explicit(&((struct cbm_heap *)heap)->pools[c],
				    memory_order_acquire);
}

int
cbm_heap_stats(const cbm_heap *heap, cbm_stats *per_class, size_t n)
{
	if (heap == NULL || (per_class == NULL && n > 0)) {
		cbm_report(NULL, CBM_ERR_BAD_ARG, NULL,
			   heap == NULL ? "cbm_heap_stats: NULL heap"
					: "cbm_heap_stats: NULL array");
		return -EINVAL;
	}
	for (unsigned c = 0; c < heap->nclasses && c < n; c++) {
		cbm_pool *pool = made(heap, c);

		if (pool != NULL) {
			(void)cbm_pool_stats(pool, &per_class[c]);
			continue;
		}
		memset(&per_class[c], 0, sizeof(per_class[c]));
		per_class[c].block_size = heap->classes.size[c];
		per_class[c].max_capacity = heap->max_capacity[c];
	}
	return (int)heap->nclasses;
}

size_t
cbm_heap_bytes(const cbm_heap *heap)
{
	return heap ? (size_t)cbm_budget_used(&heap->budget) : 0;
}

void
cbm_heap_barrier(cbm_heap *heap)
{
	if (heap == NULL) {
		(void)bad_heap("cbm_heap_barrier: NULL heap");
		return;
	}
	for (unsigned c = 0; c < heap->nclasses; c++)
		if (made(heap, c) != NULL)
			cbm_barrier(made(heap, c));
}

int
cbm_heap_trim(cbm_heap *heap)
{
	long moved = 0;

	if (heap == NULL) {
		(void)bad_heap("cbm_heap_trim: NULL heap");
		return -EINVAL;
	}
	for (unsigned c = 0; c < heap->nclasses; c++)
		if (made(heap, c) != NULL)
			moved += cbm_pool_trim(made(heap, c));
	return moved > INT_MAX ? INT_MAX : (int)moved;
}

long
cbm_heap_release(cbm_heap *heap)
{
	long bytes = 0;

	if (heap == NULL) {
		(void)bad_heap("cbm_heap_release: NULL heap");
		return -EINVAL;
	}
	for (unsigned c = 0; c < heap->nclasses; c++) {
		long got;

		if (made(heap, c) == NULL)
			continue;
		got = cbm_pool_release(made(heap, c));
		bytes = got > LONG_MAX - bytes ? LONG_MAX : bytes + got;
	}
	return bytes;
}
