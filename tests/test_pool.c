/* SPDX-License-Identifier: MIT */
/* Unit tests for the public pool API (include/cbm.h). */
#include "helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "check.h"
#include "plant.h"
#include "pool.h"

#ifdef CBM_ASAN
#include <sanitizer/asan_interface.h>
#endif

static void
create_and_destroy(void **state)
{
	cbm_pool *pool = make_pool(2048, 1024, 0);
	cbm_stats st;

	(void)state;
	assert_int_equal(cbm_capacity(pool), 1024);
	assert_int_equal(cbm_block_size(pool), 2048);
	assert_string_equal(cbm_pool_name(pool), "test");
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_int_equal(st.free, 1024);
	assert_int_equal(st.in_use + st.cached + st.retired, 0);
	assert_true(st.magazine_size >= 1 && st.magazine_size <= 256);
	assert_true(st.cpus >= 1);
	cbm_pool_destroy(pool);
	cbm_pool_destroy(NULL);
}

static void
unnamed_pools_say_so(void **state)
{
	cbm_pool_config cfg = {.block_size = 8, .capacity = 1};
	cbm_pool *pool;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_string_equal(cbm_pool_name(pool), "(unnamed)");
	cbm_pool_destroy(pool);
}

/* The sizing rule: usable size is block_size rounded up to align. */
static void
block_size_rounds_to_alignment(void **state)
{
	static const struct {
		size_t block, align, expect;
	} cases[] = {
		{1, 0, 64},	    {64, 0, 64}, {100, 0, 128},
		{2048, 0, 2048},    {1, 8, 8},	 {9, 8, 16},
		{1, 1, 1},	    {3, 1, 3},	 {100, 4096, 4096},
		{4097, 4096, 8192},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cbm_pool_config cfg = {.block_size = cases[i].block,
				       .capacity = 4,
				       .align = cases[i].align};
		cbm_pool *pool;

		assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
		assert_int_equal(cbm_block_size(pool), cases[i].expect);
		cbm_pool_destroy(pool);
	}
}

/* Every buffer aligned, all distinct, none overlapping. */
static void
buffers_are_aligned_and_disjoint(void **state)
{
	static const size_t aligns[] = {1, 8, 64, 4096, (size_t)2 << 20};

	(void)state;
	for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		cbm_pool_config cfg = {
			.block_size = 24, .capacity = 200, .align = aligns[a]};
		cbm_pool *pool;
		uintptr_t p[200];
		size_t bs;

		assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
		bs = cbm_block_size(pool);
		for (int i = 0; i < 200; i++) {
			p[i] = (uintptr_t)cbm_alloc(pool);
			assert_true(p[i] != 0);
			assert_int_equal(p[i] % aligns[a], 0);
			/* Every byte is writable. */
			memset((void *)p[i], i, bs);
		}
		for (int i = 0; i < 200; i++)
			for (int j = i + 1; j < 200; j++)
				assert_true(p[i] + bs <= p[j] ||
					    p[j] + bs <= p[i]);
		for (int i = 0; i < 200; i++)
			assert_int_equal(*(unsigned char *)p[i],
					 (unsigned char)i);
		for (int i = 0; i < 200; i++)
			cbm_free(pool, (void *)p[i]);
		assert_conserved(pool);
		cbm_pool_destroy(pool);
	}
}

static void
capacity_means_capacity(void **state)
{
	cbm_pool *pool = make_pool(64, 1000, 0);
	void **b = calloc(1000, sizeof(void *));
	cbm_stats st;

	(void)state;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 1000; i++)
			assert_non_null(b[i] = cbm_alloc(pool));
		errno = 0;
		assert_null(cbm_alloc(pool));
		assert_int_equal(errno, ENOMEM);
		/* Free half, so that some sit in caches and some spill. */
		for (int i = 0; i < 1000; i += 2)
			cbm_free(pool, b[i]);
		for (int i = 0; i < 1000; i += 2)
			assert_non_null(b[i] = cbm_alloc(pool));
		assert_null(cbm_alloc(pool));
		for (int i = 0; i < 1000; i++)
			cbm_free(pool, b[i]);
		assert_conserved(pool);
	}
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.alloc_failures, 6);
	assert_int_equal(st.allocs, 3 * 1500);
	assert_int_equal(st.frees, 3 * 1500);
	free(b);
	cbm_pool_destroy(pool);
}

static void
bulk_is_all_or_nothing(void **state)
{
	cbm_pool *pool = make_pool(64, 100, 0);
	void *a[100], *b[100];
	cbm_stats before, after;

	(void)state;
	assert_int_equal(cbm_alloc_bulk(pool, a, 0), 0);
	assert_int_equal(cbm_alloc_bulk(pool, a, 70), 0);
	cbm_pool_stats(pool, &before);
	assert_int_equal(before.in_use, 70);
	/* 30 left: asking for 31 takes nothing. */
	assert_int_equal(cbm_alloc_bulk(pool, b, 31), -ENOMEM);
	cbm_pool_stats(pool, &after);
	assert_int_equal(after.in_use, 70);
	assert_int_equal(after.alloc_failures, before.alloc_failures + 1);
	assert_conserved(pool);
	assert_int_equal(cbm_alloc_bulk(pool, b, 30), 0);
	for (int i = 0; i < 70; i++)
		for (int j = 0; j < 30; j++)
			assert_ptr_not_equal(a[i], b[j]);
	cbm_free_bulk(pool, a, 70);
	cbm_free_bulk(pool, b, 30);
	cbm_free_bulk(pool, b, 0);
	assert_conserved(pool);
	cbm_pool_stats(pool, &after);
	assert_int_equal(after.in_use, 0);
	cbm_pool_destroy(pool);
}

static void
bulk_larger_than_magazines(void **state)
{
	cbm_pool_config cfg = {
		.block_size = 32, .capacity = 5000, .magazine_size = 16};
	cbm_pool *pool;
	void **a = calloc(5000, sizeof(void *));

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_int_equal(cbm_alloc_bulk(pool, a, 4999), 0);
	assert_int_equal(cbm_alloc_bulk(pool, a + 4999, 2), -ENOMEM);
	assert_int_equal(cbm_alloc_bulk(pool, a + 4999, 1), 0);
	cbm_free_bulk(pool, a, 5000);
	assert_conserved(pool);
	assert_int_equal(cbm_alloc_bulk(pool, a, 5000), 0);
	cbm_free_bulk(pool, a, 5000);
	assert_conserved(pool);
	free(a);
	cbm_pool_destroy(pool);
}

static void
stats_add_up_while_buffers_are_out(void **state)
{
	cbm_pool *pool = make_pool(128, 512, 0);
	void *b[300];
	cbm_stats st;

	(void)state;
	for (int i = 0; i < 300; i++)
		b[i] = cbm_alloc(pool);
	for (int i = 0; i < 300; i += 3)
		cbm_free(pool, b[i]);
	assert_conserved(pool);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.in_use, 200);
	assert_int_equal(st.allocs, 300);
	assert_int_equal(st.frees, 100);
	for (int i = 0; i < 300; i++)
		if (i % 3)
			cbm_free(pool, b[i]);
	assert_true(cbm_pool_trim(pool) >= 0);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.free, 512);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

/* verify() is a real check: plant damage by hand and it must say so. */
static void
verify_catches_planted_damage(void **state)
{
	/* No idle trim: the test plants damage into a live cache. */
	cbm_pool_config cfg = {.block_size = 64,
			       .capacity = 64,
			       .idle_trim_ms = CBM_IDLE_TRIM_OFF};
	cbm_pool *pool;
	void *buf;
	uint32_t idx;

	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	buf = cbm_alloc(pool);
	idx = cbm_block_index_trusted(pool, buf);
	(void)state;
	assert_int_equal(cbm_pool_verify(pool), 0);
	/* A held buffer pushed on the freelist behind the counters' back:
	 * it is "nowhere" no longer, and the counters disagree. */
	cbm_istack_push(&pool->global.freelist, pool->links, idx);
	assert_int_equal(cbm_pool_verify(pool), -EUCLEAN);
	assert_int_equal(cbm_istack_pop(&pool->global.freelist, pool->links),
			 idx);
	assert_int_equal(cbm_pool_verify(pool), 0);
	cbm_free(pool, buf);
	assert_int_equal(cbm_pool_verify(pool), 0);
	/* A free buffer in a cache and on the freelist at once. */
	{
		struct cbm_cpu_cache *c = cbm_cache_at(&pool->caches, 0);
		uint64_t w = atomic_load(&c->word);
		uint32_t top = cbm_istack_top_quiescent(&pool->global.freelist);

		c->slots[cbm_word_count(w)] = cbm_block_ptr(pool, top);
		atomic_store(&c->word, w + 1);
		assert_int_equal(cbm_pool_verify(pool), -EUCLEAN);
		atomic_store(&c->word, w);
		assert_int_equal(cbm_pool_verify(pool), 0);
	}
	cbm_pool_destroy(pool);
}

static void
debug_pools_guard_the_end(void **state)
{
	cbm_pool *pool = make_pool(100, 16, CBM_POOL_DEBUG);
	unsigned char *b;

	(void)state;
	assert_int_equal(cbm_block_size(pool), 128);
	assert_true(pool->blocks.stride > 128);
	b = cbm_alloc(pool);
	memset(b, 0xff, 128); /* every usable byte, and not one more */
	cbm_free(pool, b);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
huge_pages_are_optional(void **state)
{
	cbm_pool *pool = make_pool(2048, 4096, CBM_POOL_HUGEPAGES);
	cbm_stats st;
	void *b;

	(void)state;
	cbm_pool_stats(pool, &st);
	assert_true(st.hugepages <= 2);
	b = cbm_alloc(pool);
	memset(b, 1, 2048);
	cbm_free(pool, b);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

/*
 * Threads (more than CPUs) allocate, free and bulk-move buffers at random.
 * Each buffer a thread holds is claimed in an owner table and stamped with
 * its holder; both are checked before it goes back. A buffer handed to two
 * holders at once fails the claim or the stamp.
 */
#define MT_THREADS 12
#define MT_CAPACITY 40

struct mt {
	cbm_pool *pool;
	atomic_uint *owner;
	unsigned id;
	unsigned seed;
	unsigned long ops, empty, violations;
};

static uint32_t
index_of(const cbm_pool *pool, const void *p)
{
	return (uint32_t)(((const char *)p - pool->base) / pool->blocks.stride);
}

static void
claim(struct mt *m, void *p)
{
	unsigned expect = 0;

	if (!atomic_compare_exchange_strong(&m->owner[index_of(m->pool, p)],
					    &expect, m->id))
		m->violations++;
	memcpy(p, &m->id, sizeof(m->id));
}

static void
release(struct mt *m, void *p)
{
	unsigned stamp;

	memcpy(&stamp, p, sizeof(stamp));
	if (stamp != m->id ||
	    atomic_exchange(&m->owner[index_of(m->pool, p)], 0) != m->id)
		m->violations++;
}

static void *
mt_worker(void *arg)
{
	struct mt *m = arg;
	void *held[48];
	unsigned n = 0;

	for (int i = 0; i < 40000; i++) {
		unsigned r = rand_r(&m->seed) % 8;

		m->ops++;
		if (r < 3 && n < 48) {
			void *p = cbm_alloc(m->pool);

			if (p == NULL) {
				m->empty++;
				continue;
			}
			claim(m, p);
			held[n++] = p;
		} else if (r < 4 && n + 8 <= 48) {
			if (cbm_alloc_bulk(m->pool, &held[n], 8) != 0) {
				m->empty++;
				continue;
			}
			for (int k = 0; k < 8; k++)
				claim(m, held[n + k]);
			n += 8;
		} else if (r < 5 && n >= 8) {
			n -= 8;
			for (int k = 0; k < 8; k++)
				release(m, held[n + k]);
			cbm_free_bulk(m->pool, &held[n], 8);
		} else if (r >= 6 && n > 0) {
			unsigned k = rand_r(&m->seed) % n;
			void *p = held[k];

			held[k] = held[--n];
			release(m, p);
			cbm_free(m->pool, p);
		}
		if (r == 7 && m->seed % 512 == 0)
			cbm_pool_trim(m->pool);
	}
	while (n > 0) {
		release(m, held[--n]);
		cbm_free(m->pool, held[n]);
	}
	return NULL;
}

static void
threads_never_share_a_buffer(void **state)
{
	cbm_pool_config cfg = {.block_size = 64,
			       .capacity = MT_CAPACITY,
			       .magazine_size = 8,
			       .name = "mt"};
	atomic_uint *owner = calloc(MT_CAPACITY, sizeof(*owner));
	struct mt m[MT_THREADS];
	unsigned long empty = 0;
	cbm_pool *pool;
	cbm_stats st;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	for (unsigned i = 0; i < MT_THREADS; i++)
		m[i] = (struct mt){.pool = pool,
				   .owner = owner,
				   .id = i + 1,
				   .seed = 1234 + i};
	run_threads(MT_THREADS, mt_worker, m, sizeof(m[0]));
	for (unsigned i = 0; i < MT_THREADS; i++) {
		assert_int_equal(m[i].violations, 0);
		empty += m[i].empty;
	}
	/* Each thread alone wants up to 48 of 40: the pool ran dry. */
	assert_true(empty > 0);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.allocs, st.frees);
	assert_conserved(pool);
	assert_int_equal(cbm_pool_trim(pool) >= 0, 1);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.free, MT_CAPACITY);
	free(owner);
	cbm_pool_destroy(pool);
}

/*
 * ASan builds: a pooled buffer is poisoned in every granule it owns whole,
 * and a held one is addressable from its first byte to its last whatever
 * its neighbours' states (a granule shared with a neighbour is never
 * poisoned: check.h). 64 is the plain case, 15 and 21 share granules.
 */
static void
pooled_buffers_are_poisoned_and_held_ones_are_not(void **state)
{
#ifdef CBM_ASAN
	static const size_t blocks[] = {64, 15, 21};

	(void)state;
	for (size_t k = 0; k < sizeof(blocks) / sizeof(blocks[0]); k++) {
		cbm_pool_config cfg = {.block_size = blocks[k],
				       .capacity = 8,
				       .align = 1,
				       .idle_trim_ms = CBM_IDLE_TRIM_OFF};
		size_t block = blocks[k];
		cbm_pool *pool;
		char *b[8];

		assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
		for (int i = 0; i < 8; i++) {
			assert_non_null(b[i] = cbm_alloc(pool));
			assert_null(__asan_region_is_poisoned(b[i], block));
		}
		/* Every other one back: each held one now has pooled
		 * neighbours, or the arena's ends. */
		for (int pass = 0; pass < 2; pass++) {
			for (int i = pass; i < 8; i += 2)
				cbm_free(pool, b[i]);
			for (int i = 0; i < 8; i++) {
				char *own = (char *)(((uintptr_t)b[i] + 7) &
						     ~(uintptr_t)7);
				bool pooled = i % 2 == 0 || pass == 1;

				if (!pooled)
					assert_null(__asan_region_is_poisoned(
						b[i], block));
				else
					assert_true(__asan_address_is_poisoned(
						own));
			}
		}
		for (int i = 0; i < 8; i++) {
			assert_non_null(b[i] = cbm_alloc(pool));
			memset(b[i], 0x5a, block);
		}
		for (int i = 0; i < 8; i++)
			cbm_free(pool, b[i]);
		assert_conserved(pool);
		cbm_pool_destroy(pool);
	}
#else
	(void)state;
	skip();
#endif
}

/*
 * Buffers whose stride is not a multiple of 8 share AddressSanitizer's
 * 8-byte shadow granules with their neighbours. Threads (more than CPUs)
 * allocate them, fill every byte, check and free them, so that neighbours
 * change hands at the same moments. Under ASan a shadow update lost between
 * two neighbours leaves a held buffer poisoned and the fill is reported as
 * use-after-poison; in every build, a buffer handed to two holders shows
 * as a fill changed under its holder, and a pool that cannot hand out 8 of
 * its 12 buffers fails the count.
 */
#define ODD_THREADS 4
#define ODD_CAPACITY 12
#define ODD_HELD 2
#define ODD_ROUNDS 100000

struct odd {
	cbm_pool *pool;
	size_t block;
	unsigned char fill;
	unsigned long damaged, empty;
};

static void *
odd_worker(void *arg)
{
	struct odd *o = arg;
	unsigned char *held[ODD_HELD];

	for (int round = 0; round < ODD_ROUNDS; round++) {
		unsigned n;

		for (n = 0; n < ODD_HELD; n++) {
			held[n] = cbm_alloc(o->pool);
			if (held[n] == NULL) {
				o->empty++;
				break;
			}
			memset(held[n], o->fill, o->block);
		}
		for (unsigned k = 0; k < n; k++) {
			for (size_t j = 0; j < o->block; j++) {
				if (held[k][j] != o->fill) {
					o->damaged++;
					break;
				}
			}
			cbm_free(o->pool, held[k]);
		}
	}
	return NULL;
}

static void
held_buffers_stay_writable_when_neighbours_share_a_granule(void **state)
{
	static const size_t blocks[] = {15, 21};

	(void)state;
	for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
		cbm_pool_config cfg = {.block_size = blocks[b],
				       .capacity = ODD_CAPACITY,
				       .align = 1,
				       .name = "odd"};
		struct odd o[ODD_THREADS];
		cbm_pool *pool;

		assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
		assert_int_equal(pool->blocks.stride, blocks[b]);
		for (unsigned i = 0; i < ODD_THREADS; i++)
			o[i] = (struct odd){
				.pool = pool,
				.block = blocks[b],
				.fill = (unsigned char)(0x11 * (i + 1))};
		run_threads(ODD_THREADS, odd_worker, o, sizeof(o[0]));
		for (unsigned i = 0; i < ODD_THREADS; i++) {
			assert_int_equal(o[i].damaged, 0);
			assert_int_equal(o[i].empty, 0);
		}
		assert_conserved(pool);
		cbm_pool_destroy(pool);
	}
}

/*
 * A create that fails after it has mapped and poisoned the arena (here the
 * reclamation thread cannot start) unmaps it with its shadow cleared, so
 * that a mapping made there next is usable, and leaves nothing registered,
 * so that the next create works. Fault-injection builds (the no-thread
 * plant), with no pool alive, so that create must start the thread.
 */
static void
failed_create_leaves_no_poison_behind(void **state)
{
#ifdef CBM_FAULT_INJECTION
	cbm_pool_config cfg = {
		.block_size = 64, .capacity = 256, .name = "no thread"};
	size_t bytes = 64 * 256;
	cbm_pool *pool = NULL;
	char *probe, *next;
	void *b;
	int rc;

	(void)state;
	/* Where the kernel puts a mapping of the arena's size: create's
	 * arena goes there, and after it is gone, so would the next. */
	probe = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(probe != MAP_FAILED);
	munmap(probe, bytes);
	cbm_planted |= CBM_PLANT_NO_THREAD;
	rc = cbm_pool_create(&cfg, &pool);
	cbm_planted &= ~CBM_PLANT_NO_THREAD;
	assert_int_equal(rc, -EAGAIN);
	assert_null(pool);
	next = mmap(probe, bytes, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (next != probe) {
		if (next != MAP_FAILED)
			munmap(next, bytes);
		skip(); /* the address was taken: nothing to check there */
	}
#ifdef CBM_ASAN
	assert_null(__asan_region_is_poisoned(next, bytes));
#endif
	memset(next, 1, bytes);
	munmap(next, bytes);
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_non_null(b = cbm_alloc(pool));
	cbm_free(pool, b);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
#else
	(void)state;
	skip();
#endif
}

/* Strides that put consecutive buffers' first lines in few cache sets get
 * a line more (src/colour.h), unless the pool asks for the exact stride;
 * the pointer check stays exact over the padding. */
static void
power_of_two_strides_are_coloured(void **state)
{
	static const struct {
		size_t block, align;
		unsigned flags;
		size_t usable, stride;
	} cases[] = {
		{2048, 0, 0, 2048, 2048 + 64},
		{65536, 0, 0, 65536, 65536 + 64},
		{1024, 256, 0, 1024, 1024 + 256},
		{2048, 0, CBM_POOL_EXACT_STRIDE, 2048, 2048},
		{4096, 4096, 0, 4096, 4096}, /* page-aligned: nothing to gain */
		{8192, 0, 0, 8192, 8192},    /* 2 pages: release wins */
		{100, 0, 0, 128, 128},	     /* already spread */
	};
	struct recorded_errors rec;

	(void)state;
	recorder_install(&rec);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cbm_pool_config cfg = {.block_size = cases[i].block,
				       .capacity = 8,
				       .align = cases[i].align,
				       .flags = cases[i].flags};
		cbm_pool *pool;
		char *b;
		int reports;

		assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
		assert_int_equal(pool->blocks.stride, cases[i].stride);
		assert_int_equal(cbm_block_size(pool), cases[i].usable);
		b = cbm_alloc(pool);
		reports = atomic_load(&rec.count);
		if (cases[i].stride > cases[i].usable) {
			/* the padding is no buffer */
			cbm_free(pool, b + cases[i].usable);
			assert_int_equal(atomic_load(&rec.count), reports + 1);
			assert_int_equal(rec.last_err, CBM_ERR_MISALIGNED);
		}
		cbm_free(pool, b);
		assert_int_equal(atomic_load(&rec.count),
				 reports + (cases[i].stride > cases[i].usable));
		assert_conserved(pool);
		cbm_pool_destroy(pool);
	}
	/* Pools that give memory back keep short release runs: exact. */
	{
		cbm_pool_config elastic = {
			.block_size = 2048, .capacity = 8, .max_capacity = 64};
		cbm_pool_config releasing = {
			.block_size = 2048, .capacity = 8, .release_ms = 100};
		cbm_pool *pool;

		assert_int_equal(cbm_pool_create(&elastic, &pool), 0);
		assert_int_equal(pool->blocks.stride, 2048);
		cbm_pool_destroy(pool);
		assert_int_equal(cbm_pool_create(&releasing, &pool), 0);
		assert_int_equal(pool->blocks.stride, 2048);
		cbm_pool_destroy(pool);
	}
	recorder_remove(&rec);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_and_destroy),
		cmocka_unit_test(unnamed_pools_say_so),
		cmocka_unit_test(block_size_rounds_to_alignment),
		cmocka_unit_test(power_of_two_strides_are_coloured),
		cmocka_unit_test(buffers_are_aligned_and_disjoint),
		cmocka_unit_test(capacity_means_capacity),
		cmocka_unit_test(bulk_is_all_or_nothing),
		cmocka_unit_test(bulk_larger_than_magazines),
		cmocka_unit_test(stats_add_up_while_buffers_are_out),
		cmocka_unit_test(verify_catches_planted_damage),
		cmocka_unit_test(debug_pools_guard_the_end),
		cmocka_unit_test(huge_pages_are_optional),
		cmocka_unit_test(threads_never_share_a_buffer),
		cmocka_unit_test(
			pooled_buffers_are_poisoned_and_held_ones_are_not),
		cmocka_unit_test(
			held_buffers_stay_writable_when_neighbours_share_a_granule),
		cmocka_unit_test(failed_create_leaves_no_poison_behind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
