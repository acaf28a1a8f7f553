/* SPDX-License-Identifier: MIT */
/*
 * Size-class heaps (cbm.h, cbm_heap): every rule of the header and of
 * issue 15, each checked against a model of its own. The model of the
 * classes (class_grid) is the header's sentence written out: spacing steps
 * per doubling, a quarter, half or the whole of it, every class a multiple
 * of 16; from it follow each size's class, the waste bound and each
 * class's alignment. The other tests check what a pool promises, per class
 * and under the heap's ceiling: misuse reported and dropped, bulk calls on
 * a class pool, trim, release, barrier, retire, debug, fork, leaks.
 * One test reads the heap's address map (heap.h) to aim at slots.
 */
/* This file misuses the API on purpose (foreign and interior frees). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wmismatched-dealloc"
#endif

#include "helpers.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)
#define GRID_MAX 128 /* classes from 16 B to 1 GiB, spacing 4: 100 */

/* The process's resident set, in bytes (/proc/self/statm, field 2). */
static size_t
rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
	fclose(f);
	return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- the model ---------------------------------------------------------- */

/*
 * Every class the header's rule allows, 16 B to 1 GiB, smallest first:
 * in each doubling [2^k, 2^(k+1)) the steps 2^k + j x 2^k / spacing, of
 * which only the multiples of 16 are classes.
 */
static size_t
class_grid(unsigned spacing, size_t *out)
{
	size_t n = 0;

	for (size_t p = 16; p <= GiB; p <<= 1)
		for (unsigned j = 0; j < spacing && (p < GiB || j == 0); j++) {
			size_t c = p + j * (p / spacing);

			if (c % 16 == 0)
				out[n++] = c;
		}
	return n;
}

/* The classes of a heap: the grid from the class min_size rounds up to,
 * to the class max_size rounds up to. */
static size_t
model_classes(size_t min, size_t max, unsigned spacing, size_t *out)
{
	size_t grid[GRID_MAX], n, k = 0;

	n = class_grid(spacing ? spacing : 4, grid);
	min = min ? min : 64;
	max = max ? max : MiB;
	for (size_t i = 0; i < n; i++)
		if (grid[i] >= min && (k == 0 || out[k - 1] < max))
			out[k++] = grid[i];
	return k;
}

/* The class that serves size: the smallest that holds it. */
static size_t
model_class_of(const size_t *classes, size_t n, size_t size)
{
	for (size_t i = 0; i < n; i++)
		if (classes[i] >= size)
			return classes[i];
	return 0;
}

/* A class's buffers' alignment: the largest power of two dividing the
 * class size, 16 at least, 4096 at most. */
static size_t
model_align(size_t class_size)
{
	size_t a = class_size & -class_size;

	return a < 16 ? 16 : a > 4096 ? 4096 : a;
}

/* ---- helpers ------------------------------------------------------------ */

/* No background passes: the tests count what moves. */
static cbm_heap_config
quiet_config(size_t min, size_t max, unsigned spacing, size_t max_bytes,
	     unsigned flags)
{
	return (cbm_heap_config){
		.min_size = min,
		.max_size = max,
		.spacing = spacing,
		.max_bytes = max_bytes,
		.flags = flags,
		.name = "heap",
		.release_ms = CBM_RELEASE_OFF,
		.idle_trim_ms = CBM_IDLE_TRIM_OFF,
	};
}

static cbm_heap *
make_heap(size_t min, size_t max, unsigned spacing, size_t max_bytes,
	  unsigned flags)
{
	cbm_heap_config cfg = quiet_config(min, max, spacing, max_bytes, flags);
	cbm_heap *heap = NULL;

	assert_int_equal(cbm_heap_create(&cfg, &heap), 0);
	assert_non_null(heap);
	return heap;
}

/*
 * A heap with no ceiling reserves its slots from the address space, each
 * as large as the largest class at least: valgrind keeps its guest to some
 * tens of GiB, where a heap of 1 GiB classes may not fit. There (only)
 * -ENOMEM, the header's answer, is taken as "no room" and the caller
 * skips; any other answer fails.
 */
static cbm_heap *
make_heap_if_room(size_t min, size_t max, unsigned spacing)
{
	cbm_heap_config cfg = quiet_config(min, max, spacing, 0, 0);
	cbm_heap *heap = NULL;
	int rc = cbm_heap_create(&cfg, &heap);

	if (rc == -ENOMEM && under_valgrind()) {
		print_message("no room for classes up to %zu under valgrind\n",
			      max);
		return NULL;
	}
	assert_int_equal(rc, 0);
	return heap;
}

/* Class i's pool, asked by its own size, or where that is above
 * max_size (the largest class may be) by the smallest size it serves. */
static cbm_pool *
class_pool(cbm_heap *heap, int i)
{
	cbm_stats st[GRID_MAX];
	cbm_pool *pool;
	int n = cbm_heap_stats(heap, st, GRID_MAX);

	assert_true(i >= 0 && i < n);
	pool = cbm_heap_pool(heap, st[i].block_size);
	if (pool == NULL)
		pool = cbm_heap_pool(heap, i ? st[i - 1].block_size + 1 : 0);
	assert_non_null(pool);
	return pool;
}

struct sums {
	int classes;
	size_t made; /* classes whose pool exists */
	size_t capacity, free, cached, retired, in_use;
	size_t bytes; /* sum of capacity x block_size - released_bytes */
	uint64_t allocs, frees, retires, reclaimed;
};

static cbm_stats per_class[GRID_MAX];

static struct sums
sum_classes(const cbm_heap *heap)
{
	struct sums s = {0};

	s.classes = cbm_heap_stats(heap, per_class, GRID_MAX);
	assert_true(s.classes > 0 && s.classes <= GRID_MAX);
	for (int i = 0; i < s.classes; i++) {
		const cbm_stats *st = &per_class[i];

		s.made += st->capacity > 0 || st->allocs > 0;
		s.capacity += st->capacity;
		s.free += st->free;
		s.cached += st->cached;
		s.retired += st->retired;
		s.in_use += st->in_use;
		s.bytes += st->capacity * st->block_size - st->released_bytes;
		s.allocs += st->allocs;
		s.frees += st->frees;
		s.retires += st->retires;
		s.reclaimed += st->reclaimed;
	}
	return s;
}

/*
 * A quiescent heap adds up: each class's buffers are each in one place,
 * the held ones number in_use, every class pool verifies, and the bytes
 * the heap says it holds are its classes' buffers less what they gave
 * back (not in a debug heap, whose guard zones the header leaves open).
 */
static void
assert_heap_whole(cbm_heap *heap, size_t in_use, bool exact_bytes)
{
	struct sums s = sum_classes(heap);

	for (int i = 0; i < s.classes; i++) {
		const cbm_stats *st = &per_class[i];

		assert_int_equal(st->free + st->cached + st->retired +
					 st->in_use,
				 st->capacity);
		assert_int_equal(st->allocs,
				 st->frees + st->retires + st->in_use);
		if (st->capacity > 0)
			assert_int_equal(cbm_pool_verify(class_pool(heap, i)),
					 0);
	}
	assert_int_equal(s.in_use, in_use);
	if (exact_bytes)
		assert_int_equal(cbm_heap_bytes(heap), s.bytes);
}

/* The index of the class whose block size is block, or -1. */
static int
class_index(const cbm_heap *heap, size_t block)
{
	int n = cbm_heap_stats(heap, per_class, GRID_MAX);

	for (int i = 0; i < n; i++)
		if (per_class[i].block_size == block)
			return i;
	return -1;
}

/* ---- configuration ------------------------------------------------------ */

static void
expect_refused(const cbm_heap_config *cfg, int err)
{
	cbm_heap *sentinel = (cbm_heap *)0x1, *heap = sentinel;

	assert_int_equal(cbm_heap_create(cfg, &heap), err);
	assert_ptr_equal(heap, sentinel); /* *out untouched on failure */
}

static void
bad_configs_are_refused(void **state)
{
	cbm_heap_config ok = {.name = "bad"}, c;
	struct recorded_errors rec;
	cbm_heap *heap = NULL;

	(void)state;
	recorder_install(&rec);
	assert_int_equal(cbm_heap_create(NULL, &heap), -EINVAL);
	assert_int_equal(cbm_heap_create(&ok, NULL), -EINVAL);
	assert_null(heap);
	for (unsigned s = 3; s <= 9; s++) {
		if (s == 4)
			continue;
		c = ok, c.spacing = s;
		expect_refused(&c, -EINVAL);
	}
	c = ok, c.spacing = UINT_MAX;
	expect_refused(&c, -EINVAL);
	for (size_t m = 1; m < 16; m++) {
		c = ok, c.min_size = m;
		expect_refused(&c, -EINVAL);
	}
	c = ok, c.min_size = 4096, c.max_size = 2048; /* min above max */
	expect_refused(&c, -EINVAL);
	c = ok, c.min_size = 2 * MiB; /* above the default max_size */
	expect_refused(&c, -EINVAL);
	c = ok, c.max_size = GiB + 1;
	expect_refused(&c, -EINVAL);
	c = ok, c.max_size = SIZE_MAX;
	expect_refused(&c, -EINVAL);
	/* max_bytes below the largest class: the default 1 MiB, and 1024,
	 * the class a max_size of 1000 rounds up to. */
	c = ok, c.max_bytes = MiB - 1;
	expect_refused(&c, -EINVAL);
	c = ok, c.max_bytes = 1;
	expect_refused(&c, -EINVAL);
	c = ok, c.max_size = 1000, c.max_bytes = 1000;
	expect_refused(&c, -EINVAL);
	c = ok, c.flags = 1u << 7;
	expect_refused(&c, -EINVAL);
	c = ok, c.flags = 1u << 31;
	expect_refused(&c, -EINVAL);
	c = ok, c.release_ms = 9;
	expect_refused(&c, -EINVAL);
	c = ok, c.idle_trim_ms = 5;
	expect_refused(&c, -EINVAL);
	/* Bad configs are errors, not misuse. */
	assert_int_equal(atomic_load(&rec.count), 0);
	recorder_remove(&rec);

	/* The edges of each rule are accepted. */
	c = ok, c.max_size = 1000, c.max_bytes = 1024;
	assert_int_equal(cbm_heap_create(&c, &heap), 0);
	cbm_heap_destroy(heap);
	c = ok, c.min_size = 16, c.max_size = 16;
	assert_int_equal(cbm_heap_create(&c, &heap), 0);
	assert_int_equal(cbm_heap_stats(heap, NULL, 0), 1);
	cbm_heap_destroy(heap);
	c = ok, c.max_bytes = MiB, c.release_ms = 10, c.idle_trim_ms = 10;
	assert_int_equal(cbm_heap_create(&c, &heap), 0);
	cbm_heap_destroy(heap);
	c = ok, c.flags = CBM_POOL_DEBUG | CBM_POOL_EXACT_STRIDE;
	assert_int_equal(cbm_heap_create(&c, &heap), 0);
	cbm_heap_destroy(heap);
	cbm_heap_destroy(NULL); /* a no-op */
}

/* A zero config: classes 64 B to 1 MiB, four per doubling (57 of them). */
static void
a_zero_config_gets_the_defaults(void **state)
{
	cbm_heap_config cfg = {0};
	cbm_heap *heap = NULL;
	void *b;
	int n;

	(void)state;
	assert_int_equal(cbm_heap_create(&cfg, &heap), 0);
	n = cbm_heap_stats(heap, per_class, GRID_MAX);
	assert_int_equal(n, 57);
	assert_int_equal(per_class[0].block_size, 64);
	assert_int_equal(per_class[1].block_size, 80);
	assert_int_equal(per_class[n - 1].block_size, MiB);
	b = cbm_heap_alloc(heap, 0);
	assert_non_null(b);
	assert_int_equal(cbm_heap_usable_size(heap, b), 64);
	cbm_heap_free(heap, b);
	b = cbm_heap_alloc(heap, MiB);
	assert_non_null(b);
	assert_int_equal(cbm_heap_usable_size(heap, b), MiB);
	cbm_heap_free(heap, b);
	assert_null(cbm_heap_alloc(heap, MiB + 1));
	assert_int_equal(errno, EINVAL);
	cbm_heap_destroy(heap);
}

/* Each class is named "NAME/SIZE"; the name is copied. */
static void
classes_are_named_after_the_heap(void **state)
{
	char name[16] = "web";
	cbm_heap_config cfg = quiet_config(0, 0, 4, 0, 0);
	cbm_heap *heap = NULL;

	(void)state;
	cfg.name = name;
	assert_int_equal(cbm_heap_create(&cfg, &heap), 0);
	strcpy(name, "gone");
	assert_string_equal(cbm_pool_name(cbm_heap_pool(heap, 100)), "web/112");
	assert_string_equal(cbm_pool_name(cbm_heap_pool(heap, 4096)),
			    "web/4096");
	assert_string_equal(cbm_pool_name(cbm_heap_pool(heap, 0)), "web/64");
	cbm_heap_destroy(heap);
}

/* ---- classes ------------------------------------------------------------ */

static const struct {
	size_t min, max;
	unsigned spacing;
} shapes[] = {
	{16, 64 * KiB, 1}, {16, 64 * KiB, 2}, {16, 64 * KiB, 4},
	{0, 0, 0},	   {100, 5000, 4},    {17, 1000, 2},
	{65, 65, 4},	   {16, 16 * KiB, 4}, {4096, MiB, 1},
	{48, 48 * KiB, 4}, {16, GiB, 4},
};

#define SHAPES (sizeof(shapes) / sizeof(shapes[0]))

/*
 * The heap's classes are exactly the model's, smallest first, as
 * cbm_heap_stats lists them (made or not): spacing steps per doubling,
 * multiples of 16, from min_size's class to max_size's.
 */
static void
the_classes_are_the_headers(void **state)
{
	(void)state;
	for (size_t i = 0; i < SHAPES; i++) {
		size_t want[GRID_MAX], n;
		cbm_heap *heap;
		int got;

		heap = make_heap_if_room(shapes[i].min, shapes[i].max,
					 shapes[i].spacing);
		if (heap == NULL)
			continue;
		n = model_classes(shapes[i].min, shapes[i].max,
				  shapes[i].spacing, want);
		got = cbm_heap_stats(heap, per_class, GRID_MAX);
		print_message("min %zu max %zu spacing %u: %d classes, "
			      "%zu to %zu\n",
			      shapes[i].min, shapes[i].max, shapes[i].spacing,
			      got, want[0], want[n - 1]);
		assert_int_equal(got, n);
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(per_class[k].block_size, want[k]);
			assert_int_equal(per_class[k].block_size % 16, 0);
			/* Not made: block_size and max_capacity, the rest 0. */
			assert_int_equal(per_class[k].capacity, 0);
			assert_int_equal(per_class[k].allocs, 0);
			assert_int_equal(per_class[k].resident_bytes, 0);
			assert_true(per_class[k].max_capacity > 0);
		}
		cbm_heap_destroy(heap);
	}
}

/* The spacings' first classes, as the header spells them out. */
static void
the_first_classes_leave_out_steps_below_16_per_step(void **state)
{
	static const size_t s1[] = {16, 32, 64, 128, 256};
	static const size_t s2[] = {16, 32, 48, 64, 96, 128, 192};
	static const size_t s4[] = {16,	  32,	48,   64,   80,	 96,
				    112,  128,	160,  192,  224, 256,
				    1024, 1280, 1536, 1792, 2048};
	const struct {
		unsigned spacing;
		const size_t *c;
		size_t n;
	} cases[] = {{1, s1, 5}, {2, s2, 7}, {4, s4, 12}};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		cbm_heap *heap =
			make_heap(16, 64 * KiB, cases[i].spacing, 0, 0);

		assert_true(cbm_heap_stats(heap, per_class, GRID_MAX) >=
			    (int)cases[i].n);
		for (size_t k = 0; k < cases[i].n; k++)
			assert_int_equal(per_class[k].block_size,
					 cases[i].c[k]);
		cbm_heap_destroy(heap);
	}
	/* Spacing 4 between 1 KiB and 2 KiB: the header's example. */
	{
		cbm_heap *heap = make_heap(1024, 2048, 4, 0, 0);

		assert_int_equal(cbm_heap_stats(heap, per_class, GRID_MAX), 5);
		for (size_t k = 0; k < 5; k++)
			assert_int_equal(per_class[k].block_size, s4[12 + k]);
		cbm_heap_destroy(heap);
	}
}

/*
 * Waste: above 16 x spacing bytes, a buffer wastes at most 1/(spacing+1)
 * of itself, for every size (checked on the model, then that the heap's
 * classes are the model's and serve each size with its class).
 */
static void
waste_is_bounded_by_the_spacing(void **state)
{
	(void)state;
	for (unsigned spacing = 1; spacing <= 4; spacing *= 2) {
		cbm_heap *heap = make_heap(16, 256 * KiB, spacing, 0, 0);
		size_t c[GRID_MAX],
			n = model_classes(16, 256 * KiB, spacing, c);
		size_t worst_size = 0, worst_class = 0;

		assert_int_equal(cbm_heap_stats(heap, per_class, GRID_MAX), n);
		for (size_t size = 16 * spacing + 1; size <= 256 * KiB;
		     size++) {
			size_t cls = model_class_of(c, n, size);

			assert_true((cls - size) * (spacing + 1) < cls);
			if (worst_class == 0 ||
			    (cls - size) * worst_class >
				    (worst_class - worst_size) * cls)
				worst_size = size, worst_class = cls;
		}
		/* The sizes where waste is worst, through the heap. */
		for (size_t k = 1; k < n; k++) {
			size_t size = c[k - 1] + 1;
			void *b;

			if (size <= 16 * spacing)
				continue;
			b = cbm_heap_alloc(heap, size);
			assert_non_null(b);
			assert_true((cbm_heap_usable_size(heap, b) - size) *
					    (spacing + 1) <
				    cbm_heap_usable_size(heap, b));
			cbm_heap_free(heap, b);
		}
		print_message("spacing %u: worst waste %zu of %zu (%zu B "
			      "asked)\n",
			      spacing, worst_class - worst_size, worst_class,
			      worst_size);
		cbm_heap_destroy(heap);
	}
}

/*
 * Every size from 0 to max_size gets the smallest class that holds it:
 * through cbm_heap_pool for every size; through cbm_heap_alloc for every
 * size up to 16 KiB, and above it for every class's edges (c - 1, c,
 * c + 1) and one size in 61. The buffer's usable size is its class's, and
 * that is the class pool's cbm_block_size and its stats' block_size.
 */
static void
each_size_gets_the_smallest_class_that_holds_it(void **state)
{
	(void)state;
	for (size_t i = 0; i < SHAPES; i++) {
		size_t c[GRID_MAX], n, max;
		cbm_heap *heap;

		if (shapes[i].max == GiB)
			continue;
		heap = make_heap(shapes[i].min, shapes[i].max,
				 shapes[i].spacing, 0, 0);
		n = model_classes(shapes[i].min, shapes[i].max,
				  shapes[i].spacing, c);
		max = shapes[i].max ? shapes[i].max : MiB;
		for (size_t size = 0; size <= max; size++) {
			size_t want = model_class_of(c, n, size);
			cbm_pool *pool = cbm_heap_pool(heap, size);
			bool edge = false;
			void *b;

			assert_non_null(pool);
			if (cbm_block_size(pool) != want)
				fail_msg("size %zu: class pool of %zu bytes, "
					 "the smallest class that holds it is "
					 "%zu",
					 size, cbm_block_size(pool), want);
			if (size > 16 * KiB && size % 61 != 0) {
				for (size_t k = 0; k < n && !edge; k++)
					edge = size + 1 >= c[k] &&
					       size <= c[k] + 1;
				if (!edge)
					continue;
			}
			b = cbm_heap_alloc(heap, size);
			assert_non_null(b);
			if (cbm_heap_usable_size(heap, b) != want)
				fail_msg("size %zu: a buffer of %zu bytes, the "
					 "smallest class that holds it is %zu",
					 size, cbm_heap_usable_size(heap, b),
					 want);
			memset(b, 0x3c, size);
			cbm_heap_free(heap, b);
		}
		/* Each class pool's stats say the same block size. */
		assert_int_equal(cbm_heap_stats(heap, per_class, GRID_MAX), n);
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(per_class[k].block_size, c[k]);
			/* (The largest class may lie above max_size, which
			 * the heap refuses: ask for max_size there.) */
			assert_int_equal(
				cbm_block_size(cbm_heap_pool(
					heap, c[k] < max ? c[k] : max)),
				c[k]);
			assert_true(per_class[k].allocs > 0);
		}
		assert_heap_whole(heap, 0, true);
		cbm_heap_destroy(heap);
	}
}

/* A size above max_size has no class: NULL with EINVAL, from the heap and
 * from cbm_heap_pool, however large (no rounding wraps it to a small
 * class), and nothing is allocated. */
static void
sizes_above_max_size_are_refused(void **state)
{
	const size_t too_big[] = {
		64 * KiB + 1,  64 * KiB + 16,	 128 * KiB,
		GiB,	       GiB + 1,		 (size_t)1 << 40,
		SIZE_MAX / 2,  SIZE_MAX / 2 + 2, SIZE_MAX - 4095,
		SIZE_MAX - 15, SIZE_MAX - 1,	 SIZE_MAX,
	};
	cbm_heap *heap = make_heap(16, 64 * KiB, 4, 0, 0);
	struct sums s;

	(void)state;
	for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
		errno = 0;
		assert_null(cbm_heap_alloc(heap, too_big[i]));
		assert_int_equal(errno, EINVAL);
		errno = 0;
		assert_null(cbm_heap_pool(heap, too_big[i]));
		assert_int_equal(errno, EINVAL);
	}
	s = sum_classes(heap);
	assert_int_equal(s.made, 0);
	assert_int_equal(s.allocs, 0);
	assert_int_equal(cbm_heap_bytes(heap), 0);
	/* Above max_size though below the class it rounds up to: refused
	 * too (max_size 5000, largest class 5120). */
	{
		cbm_heap *odd = make_heap(100, 5000, 4, 0, 0);

		assert_non_null(cbm_heap_pool(odd, 5000));
		assert_int_equal(cbm_block_size(cbm_heap_pool(odd, 5000)),
				 5120);
		errno = 0;
		assert_null(cbm_heap_alloc(odd, 5001));
		assert_int_equal(errno, EINVAL);
		cbm_heap_destroy(odd);
	}
	/* max_size itself is served. */
	{
		void *b = cbm_heap_alloc(heap, 64 * KiB);

		assert_non_null(b);
		assert_int_equal(cbm_heap_usable_size(heap, b), 64 * KiB);
		cbm_heap_free(heap, b);
	}
	cbm_heap_destroy(heap);
}

/*
 * Alignment: every buffer 16-byte aligned, and to its class size's largest
 * power-of-two divisor up to 4096 (a 4 KiB class page-aligned); in a debug
 * heap too, whose guard zones must not shift buffers off it. Several
 * buffers per class, so that a stride that breaks it shows.
 */
static void
buffers_are_aligned_to_their_class(void **state)
{
	enum { PER = 5 };
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);

	(void)state;
	for (unsigned debug = 0; debug < 2; debug++)
		for (unsigned spacing = 1; spacing <= 4; spacing *= 2) {
			cbm_heap *heap = make_heap(16, MiB, spacing, 0,
						   debug ? CBM_POOL_DEBUG : 0);
			size_t c[GRID_MAX],
				n = model_classes(16, MiB, spacing, c);

			for (size_t k = 0; k < n; k++) {
				void *b[PER];

				for (int j = 0; j < PER; j++) {
					uintptr_t p;

					b[j] = cbm_heap_alloc(heap, c[k]);
					assert_non_null(b[j]);
					p = (uintptr_t)b[j];
					if (p % model_align(c[k]) != 0)
						fail_msg("class %zu%s: buffer "
							 "%p not %zu-aligned",
							 c[k],
							 debug ? " (debug)"
							       : "",
							 b[j],
							 model_align(c[k]));
					assert_int_equal(p % 16, 0);
					if (c[k] % 4096 == 0)
						assert_int_equal(p % page, 0);
				}
				for (int j = 0; j < PER; j++)
					cbm_heap_free(heap, b[j]);
			}
			assert_heap_whole(heap, 0, !debug);
			cbm_heap_destroy(heap);
		}
}

/* ---- threads ------------------------------------------------------------ */

struct handoff {
	cbm_heap *heap;
	void **bufs;
	size_t n;
	unsigned cpu;
};

static void *
free_them_there(void *arg)
{
	struct handoff *h = arg;

	if (h->cpu != CPU_SETSIZE)
		pin_to(h->cpu);
	for (size_t i = 0; i < h->n; i++) {
		/* Each buffer kept what its allocator wrote, whole. */
		size_t len = cbm_heap_usable_size(h->heap, h->bufs[i]);
		unsigned char *b = h->bufs[i];

		assert_true(len > 0);
		assert_int_equal(b[0], (unsigned char)i);
		assert_int_equal(b[len - 1], (unsigned char)i);
		cbm_heap_free(h->heap, h->bufs[i]);
	}
	return NULL;
}

/*
 * Buffers of every class, allocated on one thread (and CPU) and freed on
 * another: every class gets each of its buffers back, the counts add up,
 * and they are handed out again.
 */
static void
buffers_freed_on_another_thread_go_home(void **state)
{
	enum { N = 3000 };
	static void *bufs[N];
	cbm_heap *heap = make_heap(16, 256 * KiB, 4, 0, 0);
	struct handoff h = {heap, bufs, N, allowed_cpu(1)};
	struct sums s;
	pthread_t t;

	(void)state;
	if (allowed_cpu(0) != CPU_SETSIZE)
		pin_to(allowed_cpu(0));
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < N; i++) {
			size_t size = (i * 7919) % (256 * KiB) + 1, len;

			if (i % 4 != 0)
				size %= 2048; /* mostly small */
			bufs[i] = cbm_heap_alloc(heap, size);
			assert_non_null(bufs[i]);
			len = cbm_heap_usable_size(heap, bufs[i]);
			assert_true(len >= size);
			memset(bufs[i], (int)(i & 0xff), len);
		}
		assert_int_equal(pthread_create(&t, NULL, free_them_there, &h),
				 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_heap_whole(heap, 0, true);
	}
	s = sum_classes(heap);
	assert_int_equal(s.allocs, 3 * N);
	assert_int_equal(s.frees, 3 * N);
	restore_affinity(NULL);
	cbm_heap_destroy(heap);
}

/* ---- misuse ------------------------------------------------------------- */

/*
 * A pointer from no class (malloc's, the stack's, another heap's) and a
 * pointer inside a buffer are reported as cbm_free reports them, to free,
 * retire and usable_size alike, and dropped: the buffer stays held, and
 * its real owner gives it back afterwards.
 */
static void
foreign_and_interior_pointers_are_reported_and_dropped(void **state)
{
	cbm_heap *heap = make_heap(16, 64 * KiB, 4, 0, 0);
	cbm_heap *other = make_heap(16, 64 * KiB, 4, 0, 0);
	struct recorded_errors rec;
	char on_stack[64];
	char *mine = cbm_heap_alloc(heap, 100); /* a 112-byte class */
	char *big = cbm_heap_alloc(heap, 8192);
	void *theirs = cbm_heap_alloc(other, 100);
	void *from_malloc = malloc(112);
	int count = 0;

	(void)state;
	assert_non_null(mine);
	assert_non_null(big);
	assert_non_null(theirs);
	recorder_install(&rec);
	const struct {
		void *p;
		int err;
	} bad[] = {
		{from_malloc, CBM_ERR_FOREIGN},
		{on_stack, CBM_ERR_FOREIGN},
		{theirs, CBM_ERR_FOREIGN},
		{mine + 16, CBM_ERR_MISALIGNED},
		{mine + 1, CBM_ERR_MISALIGNED},
		{mine + 111, CBM_ERR_MISALIGNED},
		{big + 4096, CBM_ERR_MISALIGNED},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cbm_heap_free(heap, bad[i].p);
		assert_int_equal(atomic_load(&rec.count), ++count);
		assert_int_equal(rec.last_err, bad[i].err);
		assert_ptr_equal(rec.last_ptr, bad[i].p);
		assert_int_equal(cbm_heap_usable_size(heap, bad[i].p), 0);
		assert_int_equal(atomic_load(&rec.count), ++count);
		assert_int_equal(rec.last_err, bad[i].err);
		cbm_heap_retire(heap, bad[i].p);
		assert_int_equal(atomic_load(&rec.count), ++count);
		assert_int_equal(rec.last_err, bad[i].err);
	}
	cbm_heap_barrier(heap);
	/* Nothing bad went in: the heap still holds its two, and both heaps
	 * add up. */
	assert_heap_whole(heap, 2, true);
	assert_heap_whole(other, 1, true);
	/* NULL is a no-op for free and retire. */
	cbm_heap_free(heap, NULL);
	cbm_heap_retire(heap, NULL);
	assert_int_equal(atomic_load(&rec.count), count);
	recorder_remove(&rec);
	cbm_heap_free(heap, mine);
	cbm_heap_free(heap, big);
	cbm_heap_free(other, theirs);
	assert_heap_whole(heap, 0, true);
	assert_heap_whole(other, 0, true);
	free(from_malloc);
	cbm_heap_destroy(other);
	cbm_heap_destroy(heap);
}

/*
 * A pointer into a class's slot past the buffers that exist is no buffer:
 * reported and dropped, as an elastic pool does one past its frontier. Every buffer
 * of a fresh 4 KiB class is taken, so the lowest is the class's first and
 * the one after the last does not exist.
 */
static void
a_pointer_past_a_class_frontier_is_foreign(void **state)
{
	cbm_heap *heap = make_heap(16, 64 * KiB, 4, 0, 0);
	struct recorded_errors rec;
	static void *b[4096];
	char *lowest, *past;
	size_t cap, n = 0;
	int k;

	(void)state;
	b[n++] = cbm_heap_alloc(heap, 4096);
	assert_non_null(b[0]);
	k = class_index(heap, 4096);
	assert_true(k >= 0);
	cap = per_class[k].capacity;
	assert_true(cap > 0 && cap < 4096);
	while (n < cap)
		assert_non_null(b[n++] = cbm_heap_alloc(heap, 4096));
	assert_int_equal(class_index(heap, 4096), k);
	assert_int_equal(per_class[k].capacity, cap); /* no growth yet */
	lowest = b[0];
	for (size_t i = 0; i < n; i++)
		if ((char *)b[i] < lowest)
			lowest = b[i];
	past = lowest + cap * 4096;
	recorder_install(&rec);
	cbm_heap_free(heap, past);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_ptr_equal(rec.last_ptr, past);
	/* In the class's arena, at no buffer that exists: not a buffer of
	 * the pool (not "inside buffer cap"). */
	assert_int_equal(rec.last_err, CBM_ERR_FOREIGN);
	assert_int_equal(cbm_heap_usable_size(heap, past), 0);
	assert_int_equal(atomic_load(&rec.count), 2);
	cbm_heap_retire(heap, past);
	assert_int_equal(atomic_load(&rec.count), 3);
	cbm_heap_barrier(heap);
	assert_heap_whole(heap, n, true);
	recorder_remove(&rec);
	for (size_t i = 0; i < n; i++)
		cbm_heap_free(heap, b[i]);
	assert_heap_whole(heap, 0, true);
	cbm_heap_destroy(heap);
}

/*
 * Pointers in the reservation but in no buffer: in the slot of a class
 * never made (no pool to ask), just below the reservation and just past
 * its end. White-box (heap.h): the test computes the slots.
 */
static void
pointers_in_unmade_slots_and_beside_the_reservation_are_foreign(void **state)
{
	cbm_heap *heap = make_heap(16, 64 * KiB, 4, 0, 0);
	struct recorded_errors rec;
	void *mine = cbm_heap_alloc(heap, 64);
	char *base = (char *)heap->base;
	size_t slot = (size_t)1 << heap->slot_shift;
	char *bad[] = {
		base + 5 * slot,		      /* class 5, never made */
		base + 7 * slot + 4096,		      /* class 7 */
		base - 16,			      /* below */
		base + (size_t)heap->nclasses * slot, /* past the end */
		base + (size_t)heap->nclasses * slot - 16,
	};

	(void)state;
	assert_non_null(mine);
	assert_int_equal(cbm_heap_usable_size(heap, mine), 64);
	recorder_install(&rec);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int before = atomic_load(&rec.count);

		cbm_heap_free(heap, bad[i]);
		assert_int_equal(atomic_load(&rec.count), before + 1);
		assert_int_equal(rec.last_err, CBM_ERR_FOREIGN);
		assert_ptr_equal(rec.last_ptr, bad[i]);
		assert_int_equal(cbm_heap_usable_size(heap, bad[i]), 0);
		cbm_heap_retire(heap, bad[i]);
		assert_int_equal(atomic_load(&rec.count), before + 3);
		assert_int_equal(rec.last_err, CBM_ERR_FOREIGN);
	}
	recorder_remove(&rec);
	/* Asking made no class. */
	assert_int_equal(sum_classes(heap).made, 1);
	cbm_heap_free(heap, mine);
	assert_heap_whole(heap, 0, true);
	cbm_heap_destroy(heap);
}

/* A NULL heap is reported where the header says, and answers its error. */
static void
a_null_heap_is_reported(void **state)
{
	struct recorded_errors rec;
	cbm_heap *heap = make_heap(0, 0, 0, 0, 0);
	cbm_stats st[2];

	(void)state;
	recorder_install(&rec);
	errno = 0;
	assert_null(cbm_heap_alloc(NULL, 64));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	assert_int_equal(cbm_heap_stats(NULL, st, 2), -EINVAL);
	assert_int_equal(atomic_load(&rec.count), 2);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	assert_int_equal(cbm_heap_stats(heap, NULL, 1), -EINVAL);
	assert_int_equal(atomic_load(&rec.count), 3);
	assert_int_equal(cbm_heap_trim(NULL), -EINVAL);
	assert_int_equal(cbm_heap_release(NULL), -EINVAL);
	assert_int_equal(cbm_heap_bytes(NULL), 0);
	/* Sizing the array is no misuse. */
	assert_int_equal(cbm_heap_stats(heap, NULL, 0), 57);
	assert_true(atomic_load(&rec.count) >= 3);
	recorder_remove(&rec);
	/* A short array gets the first classes only. */
	memset(st, 0xee, sizeof(st));
	assert_int_equal(cbm_heap_stats(heap, st, 1), 57);
	assert_int_equal(st[0].block_size, 64);
	assert_int_equal(st[1].block_size, (size_t)0xeeeeeeeeeeeeeeeeull);
	cbm_heap_destroy(heap);
}

/* ---- class pools -------------------------------------------------------- */

/*
 * cbm_heap_pool gives each size its class's pool, the same for every size
 * of the class, made on demand; its bulk calls take and give back the
 * buffers cbm_heap_alloc and cbm_heap_free do, and the counts follow.
 */
static void
class_pools_bulk_calls_interoperate(void **state)
{
	enum { N = 64 };
	cbm_heap *heap = make_heap(16, 64 * KiB, 4, 0, 0);
	struct recorded_errors rec;
	cbm_pool *pool;
	void *b[N];
	int k;

	(void)state;
	assert_int_equal(sum_classes(heap).made, 0);
	pool = cbm_heap_pool(heap, 1000);
	assert_non_null(pool);
	assert_int_equal(cbm_block_size(pool), 1024);
	for (size_t size = 897; size <= 1024; size++)
		assert_ptr_equal(cbm_heap_pool(heap, size), pool);
	assert_true(cbm_heap_pool(heap, 896) != pool);
	assert_true(cbm_heap_pool(heap, 1025) != pool);
	recorder_install(&rec);
	/* Bulk out, one by one back. */
	assert_int_equal(cbm_alloc_bulk(pool, b, N), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(cbm_heap_usable_size(heap, b[i]), 1024);
		memset(b[i], i, 1024);
	}
	k = class_index(heap, 1024);
	assert_int_equal(per_class[k].in_use, N);
	for (int i = 0; i < N; i++)
		cbm_heap_free(heap, b[i]);
	assert_heap_whole(heap, 0, true);
	/* One by one out, bulk back. */
	for (int i = 0; i < N; i++) {
		b[i] = cbm_heap_alloc(heap, 900 + (size_t)i);
		assert_non_null(b[i]);
	}
	assert_int_equal(cbm_pool_stats(pool, &per_class[0]), 0);
	assert_int_equal(per_class[0].in_use, N);
	cbm_free_bulk(pool, b, N);
	assert_int_equal(atomic_load(&rec.count), 0);
	recorder_remove(&rec);
	assert_heap_whole(heap, 0, true);
	k = class_index(heap, 1024);
	assert_int_equal(per_class[k].allocs, 2 * N);
	assert_int_equal(per_class[k].frees, 2 * N);
	cbm_heap_destroy(heap);
}

/* ---- memory ------------------------------------------------------------- */

/*
 * Classes never used cost no memory: a heap of 100 classes up to 1 GiB
 * adds well under a MiB to RSS at create, no class is made, and the heap
 * holds no bytes; using one class makes that class only.
 */
static void
unused_classes_cost_no_resident_memory(void **state)
{
	size_t before, after;
	cbm_heap *heap;
	struct sums s;
	void *b;
	int k;

	(void)state;
	before = rss_bytes();
	heap = make_heap_if_room(16, GiB, 4);
	after = rss_bytes();
	if (heap == NULL)
		return;
	print_message("a heap of %d classes: %zu KiB more resident\n",
		      cbm_heap_stats(heap, NULL, 0), (after - before) / KiB);
	if (!SANITIZED && !under_valgrind())
		assert_true(after < before + MiB);
	s = sum_classes(heap);
	assert_int_equal(s.classes, 100);
	assert_int_equal(s.made, 0);
	assert_int_equal(cbm_heap_bytes(heap), 0);
	for (int i = 0; i < s.classes; i++) {
		assert_int_equal(per_class[i].resident_bytes, 0);
		assert_int_equal(per_class[i].capacity, 0);
	}
	b = cbm_heap_alloc(heap, 5000);
	assert_non_null(b);
	memset(b, 1, 5000);
	s = sum_classes(heap);
	assert_int_equal(s.made, 1);
	k = class_index(heap, 5120);
	assert_true(per_class[k].capacity > 0);
	assert_int_equal(cbm_heap_bytes(heap), per_class[k].capacity * 5120);
	for (int i = 0; i < s.classes; i++)
		if (i != k)
			assert_int_equal(per_class[i].resident_bytes, 0);
	cbm_heap_free(heap, b);
	cbm_heap_destroy(heap);
}

/*
 * The ceiling: one class gets every buffer max_bytes holds, and no more
 * (NULL with ENOMEM); heap_bytes never passes max_bytes. When those
 * buffers are freed (into this CPU's cache, and some into another CPU's),
 * another class gets the memory: the heap drains and releases the first
 * class for it, so it too gets all max_bytes holds.
 */
static void
the_ceiling_holds_and_free_memory_moves_between_classes(void **state)
{
	enum { CEIL = 1 << 20 };
	cbm_heap *heap = make_heap(64, 64 * KiB, 4, CEIL, 0);
	static void *b[CEIL / 64 + 1];
	struct handoff h = {heap, NULL, 0, allowed_cpu(1)};
	const size_t sizes[] = {64 * KiB, 32 * KiB, 4096, 64, 20 * KiB};
	size_t n;

	(void)state;
	if (allowed_cpu(0) != CPU_SETSIZE)
		pin_to(allowed_cpu(0));
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t size = sizes[s], want = CEIL / size;

		n = 0;
		while (n <= want &&
		       (b[n] = cbm_heap_alloc(heap, size)) != NULL) {
			memset(b[n], (int)(n & 0xff), 64);
			((unsigned char *)b[n])[size - 1] = (unsigned char)n;
			n++;
			assert_true(cbm_heap_bytes(heap) <= CEIL);
		}
		assert_int_equal(errno, ENOMEM);
		print_message("%zu-byte class: %zu buffers under %d bytes\n",
			      size, n, CEIL);
		if (n != want)
			fail_msg("a %zu-byte class got %zu buffers under a "
				 "ceiling of %d bytes, which holds %zu (the "
				 "other classes' free memory not given back?)",
				 size, n, CEIL, want);
		assert_null(cbm_heap_alloc(heap, size));
		assert_int_equal(errno, ENOMEM);
		if (n * size == CEIL) {
			/* Not one byte left, for any class. */
			assert_null(cbm_heap_alloc(heap, 64));
			assert_int_equal(errno, ENOMEM);
		}
		assert_true(cbm_heap_bytes(heap) <= CEIL);
		assert_heap_whole(heap, n, true);
		/* A quarter freed on another thread (and CPU), the rest
		 * here: both caches hold what the next class needs. */
		for (size_t i = 0; i < n; i++)
			((unsigned char *)b[i])[0] = (unsigned char)i;
		h.bufs = b;
		h.n = n / 4;
		{
			pthread_t t;

			for (size_t i = 0; i < h.n; i++)
				((unsigned char *)b[i])[size - 1] =
					(unsigned char)i;
			assert_int_equal(
				pthread_create(&t, NULL, free_them_there, &h),
				0);
			assert_int_equal(pthread_join(t, NULL), 0);
		}
		for (size_t i = n / 4; i < n; i++)
			cbm_heap_free(heap, b[i]);
		assert_heap_whole(heap, 0, true);
	}
	restore_affinity(NULL);
	cbm_heap_destroy(heap);
}

/*
 * The same for classes whose buffers do not tile pages: sub-page classes
 * whose count at the ceiling ends inside a release group (48 B, 1280 B),
 * and classes above a page that are not page multiples (5120 B, 6144 B),
 * whose buffers share pages with their neighbours. Each fills the ceiling
 * and gives everything back; a 64 KiB class must then get the whole
 * ceiling. A class that keeps part of its free memory charged takes that
 * much of the ceiling from every other class for good. A class under a
 * ceiling grows in whole release groups (the least run of its buffers that
 * is whole pages: lcm(size, page) / size buffers, src/frontier.h F6), so
 * it fills the ceiling rounded down to its groups.
 */
static size_t
group_buffers(size_t size)
{
	size_t a = size, b = (size_t)sysconf(_SC_PAGESIZE);

	while (b != 0) {
		size_t t = a % b;

		a = b;
		b = t;
	}
	return (size_t)sysconf(_SC_PAGESIZE) / a; /* lcm / size */
}

static void
free_memory_of_any_class_moves_to_another(void **state)
{
	enum { CEIL = 1 << 20, BIG = 64 * 1024 };
	const size_t sizes[] = {20 * KiB, 48, 1280, 5120, 6144};
	static void *b[CEIL / 48 + 1];
	bool short_of_it = false;

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		cbm_heap *heap = make_heap(16, BIG, 4, CEIL, 0);
		size_t n = 0, got = 0, stuck;

		while ((b[n] = cbm_heap_alloc(heap, sizes[s])) != NULL) {
			memset(b[n], 0x11, sizes[s]);
			n++;
		}
		assert_int_equal(n,
				 CEIL / (group_buffers(sizes[s]) * sizes[s]) *
					 group_buffers(sizes[s]));
		for (size_t i = 0; i < n; i++)
			cbm_heap_free(heap, b[i]);
		while ((b[got] = cbm_heap_alloc(heap, BIG)) != NULL)
			got++;
		stuck = cbm_heap_bytes(heap) - got * BIG;
		print_message("%zu-byte class, %zu buffers freed: a 64 KiB "
			      "class then gets %zu of %d (%zu bytes still "
			      "charged to the first)\n",
			      sizes[s], n, got, CEIL / BIG, stuck);
		short_of_it |= got != CEIL / BIG;
		for (size_t i = 0; i < got; i++)
			cbm_heap_free(heap, b[i]);
		assert_heap_whole(heap, 0, true);
		cbm_heap_destroy(heap);
	}
	if (short_of_it)
		fail_msg("free memory of a class stayed charged to the "
			 "ceiling (above)");
}

struct ceiling_run {
	cbm_heap *heap;
	size_t size, got, over, room;
	void **held;
};

static void *
take_until_null(void *arg)
{
	struct ceiling_run *r = arg;

	while ((r->held[r->got] = cbm_heap_alloc(r->heap, r->size)) != NULL) {
		memset(r->held[r->got], 0x5a, 16);
		r->got++;
		r->over += cbm_heap_bytes(r->heap) > 4 * MiB;
		if (r->got == r->room) {
			r->over++; /* more than the whole ceiling */
			break;
		}
	}
	return NULL;
}

/* Threads of two classes race to a shared ceiling: together they get
 * buffers for at most max_bytes, all of it when every class is a divisor,
 * and heap_bytes never passes the ceiling. */
static void
racing_classes_share_the_ceiling(void **state)
{
	enum { THREADS = 6 };
	cbm_heap *heap = make_heap(64, 64 * KiB, 4, 4 * MiB, 0);
	struct ceiling_run r[THREADS];
	pthread_t t[THREADS];
	size_t bytes = 0, held = 0;

	(void)state;
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct ceiling_run){
			heap,
			i % 2 ? 64 * KiB : 4096,
			0,
			0,
			4 * MiB / 4096 + 1,
			calloc(4 * MiB / 4096 + 1, sizeof(void *))};
		assert_int_equal(
			pthread_create(&t[i], NULL, take_until_null, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(r[i].over, 0);
		bytes += r[i].got * r[i].size;
		held += r[i].got;
	}
	print_message("%zu bytes of buffers under a ceiling of %zu\n", bytes,
		      4 * MiB);
	assert_int_equal(bytes, 4 * MiB);
	assert_heap_whole(heap, held, true);
	assert_true(cbm_heap_bytes(heap) <= 4 * MiB);
	for (int i = 0; i < THREADS; i++) {
		for (size_t k = 0; k < r[i].got; k++)
			cbm_heap_free(heap, r[i].held[k]);
		free(r[i].held);
	}
	cbm_heap_destroy(heap);
}

/* ---- trim, release, barrier, retire ------------------------------------- */

/*
 * trim moves every class's cached buffers down and says how many;
 * release then gives their memory back and says how much: heap_bytes falls
 * by exactly that, and the classes' released_bytes add up to it; the same
 * buffers taken again are charged again, back to where it was.
 */
static void
trim_and_release_cover_every_class(void **state)
{
	enum { N = 40 };
	cbm_heap *heap = make_heap(16, 256 * KiB, 4, 0, 0);
	const size_t sizes[] = {64, 4096, 64 * KiB, 256 * KiB};
	void *b[4][N];
	struct sums s;
	size_t bytes_before;
	long released;
	int moved;

	(void)state;
	/* One CPU: a thread that migrated between the passes would leave
	 * a magazine's worth cached on the CPU it left, charged, and the
	 * second pass would take that much more (CI saw 512 KiB more). */
	pin_to(allowed_cpu(0));
	assert_int_equal(cbm_heap_trim(heap), 0); /* no class yet */
	assert_int_equal(cbm_heap_release(heap), 0);
	cbm_heap_barrier(heap);
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < N; i++) {
			b[c][i] = cbm_heap_alloc(heap, sizes[c]);
			assert_non_null(b[c][i]);
			memset(b[c][i], 7, sizes[c]);
		}
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < N; i++)
			cbm_heap_free(heap, b[c][i]);
	s = sum_classes(heap);
	assert_true(s.cached > 0);
	moved = cbm_heap_trim(heap);
	assert_int_equal(moved, s.cached);
	s = sum_classes(heap);
	assert_int_equal(s.cached, 0);
	assert_int_equal(s.free, s.capacity);
	bytes_before = cbm_heap_bytes(heap);
	released = cbm_heap_release(heap);
	print_message("trim moved %d, release gave back %ld of %zu bytes\n",
		      moved, released, bytes_before);
	/* The buffers of a page or more go back whole. */
	assert_true(released >= (long)(N * (4096 + 64 * KiB + 256 * KiB)));
	assert_int_equal(cbm_heap_bytes(heap), bytes_before - released);
	s = sum_classes(heap);
	{
		size_t rel = 0;

		for (int i = 0; i < s.classes; i++)
			rel += per_class[i].released_bytes;
		assert_int_equal(rel, (size_t)released);
	}
	assert_heap_whole(heap, 0, true);
	assert_int_equal(cbm_heap_release(heap), 0); /* nothing left */
	/* Taken again, the released memory is charged again, whole. */
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < N; i++) {
			b[c][i] = cbm_heap_alloc(heap, sizes[c]);
			assert_non_null(b[c][i]);
			memset(b[c][i], 8, sizes[c]);
		}
	assert_heap_whole(heap, 4 * N, true);
	assert_int_equal(cbm_heap_bytes(heap), bytes_before);
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < N; i++)
			cbm_heap_free(heap, b[c][i]);
	cbm_heap_destroy(heap);
}

struct reader {
	atomic_int phase; /* 1: inside, 2: may leave, 3: left */
};

static void *
read_a_while(void *arg)
{
	struct reader *r = arg;

	cbm_read_lock();
	atomic_store(&r->phase, 1);
	while (atomic_load(&r->phase) != 2)
		sched_yield();
	cbm_read_unlock();
	atomic_store(&r->phase, 3);
	return NULL;
}

/*
 * retire hands a buffer back after a grace period: a reader inside a
 * section keeps it from reuse, so at the ceiling its class has nothing to
 * give; after the reader leaves, barrier brings it back for every class.
 */
static void
retired_buffers_wait_for_readers_then_barrier_brings_them_back(void **state)
{
	enum { BIG = 64 * 1024, CEIL = 4 * BIG };
	cbm_heap *heap = make_heap(64, BIG, 4, CEIL, 0);
	struct reader r = {0};
	void *b[4], *small, *again;
	struct sums s;
	pthread_t t;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_non_null(b[i] = cbm_heap_alloc(heap, BIG));
	assert_null(cbm_heap_alloc(heap, BIG)); /* the ceiling */
	assert_int_equal(pthread_create(&t, NULL, read_a_while, &r), 0);
	while (atomic_load(&r.phase) != 1)
		sched_yield();
	cbm_heap_retire(heap, b[0]);
	s = sum_classes(heap);
	assert_int_equal(s.retires, 1);
	assert_int_equal(s.in_use, 3);
	/* Under the reader the retired buffer is not free: nothing to
	 * hand out (the other class's memory would not fit either). */
	usleep(50000);
	assert_null(cbm_heap_alloc(heap, BIG));
	atomic_store(&r.phase, 2);
	assert_int_equal(pthread_join(t, NULL), 0);
	cbm_heap_barrier(heap);
	s = sum_classes(heap);
	assert_int_equal(s.retired, 0);
	assert_int_equal(s.reclaimed, 1);
	again = cbm_heap_alloc(heap, BIG);
	assert_ptr_equal(again, b[0]);
	/* Retire in two classes at once, barrier once. */
	small = cbm_heap_alloc(heap, 64);
	assert_null(small); /* the ceiling, still: 4 x 64 KiB held */
	cbm_heap_retire(heap, again);
	cbm_heap_barrier(heap);
	small = cbm_heap_alloc(heap, 64);
	assert_non_null(small);
	cbm_heap_retire(heap, small);
	cbm_heap_retire(heap, b[1]);
	cbm_heap_barrier(heap);
	s = sum_classes(heap);
	assert_int_equal(s.retired, 0);
	assert_int_equal(s.retires, 4);
	cbm_heap_free(heap, b[2]);
	cbm_heap_free(heap, b[3]);
	assert_heap_whole(heap, 0, true);
	cbm_heap_destroy(heap);
}

/* ---- debug, fork, destroy ----------------------------------------------- */

/* A debug heap: a double free and a write past a buffer's usable size are
 * reported, in any class; the usable size stays the class's. */
static void
a_debug_heap_catches_double_frees_and_overflows(void **state)
{
	cbm_heap *heap = make_heap(16, 64 * KiB, 4, 0, CBM_POOL_DEBUG);
	struct recorded_errors rec;
	const size_t sizes[] = {16, 100, 4096, 5000, 64 * KiB};

	(void)state;
	recorder_install(&rec);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *a = cbm_heap_alloc(heap, sizes[i]);
		char *b = cbm_heap_alloc(heap, sizes[i]);
		size_t len;
		int before = atomic_load(&rec.count);

		assert_non_null(a);
		assert_non_null(b);
		len = cbm_heap_usable_size(heap, a);
		assert_true(len >= sizes[i]);
		memset(a, 1, len); /* every usable byte is the caller's */
		cbm_heap_free(heap, a);
		assert_int_equal(atomic_load(&rec.count), before);
		cbm_heap_free(heap, a);
		assert_int_equal(atomic_load(&rec.count), before + 1);
		assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
		assert_ptr_equal(rec.last_ptr, a);
		b[len] = 1; /* one past the end, into the guard zone */
		cbm_heap_free(heap, b);
		assert_int_equal(atomic_load(&rec.count), before + 2);
		assert_int_equal(rec.last_err, CBM_ERR_OVERFLOW);
	}
	recorder_remove(&rec);
	/* The overflowing buffers were dropped, held for good. */
	assert_heap_whole(heap, 5, false);
	recorder_install(&rec);
	cbm_heap_destroy(heap); /* reports those five, one class each */
	assert_int_equal(atomic_load(&rec.count), 5);
	assert_int_equal(rec.last_err, CBM_ERR_LEAK);
	recorder_remove(&rec);
}

/* A fork child allocates and frees in a class the parent made and in one
 * it did not, and the parent's heap goes on as it was. */
static void
a_fork_child_uses_the_heap(void **state)
{
	cbm_heap *heap = make_heap(16, 64 * KiB, 4, 8 * MiB, 0);
	void *held[16];
	int status;
	pid_t pid;

	(void)state;
	for (int i = 0; i < 16; i++) {
		held[i] = cbm_heap_alloc(heap, 1000);
		assert_non_null(held[i]);
		memset(held[i], i, 1000);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		void *b[64];
		bool ok = true;

		for (int i = 0; i < 64; i++) {
			b[i] = cbm_heap_alloc(heap, i % 2 ? 1000 : 30000);
			ok = ok && b[i] != NULL;
			if (b[i] != NULL)
				memset(b[i], 0x42, i % 2 ? 1000 : 30000);
		}
		for (int i = 0; i < 64; i++)
			cbm_heap_free(heap, b[i]);
		for (int i = 0; i < 16; i++)
			cbm_heap_free(heap, held[i]);
		ok = ok && sum_classes(heap).in_use == 0 &&
		     cbm_heap_trim(heap) >= 0 && cbm_heap_release(heap) >= 0 &&
		     cbm_heap_bytes(heap) <= 8 * MiB;
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(((unsigned char *)held[i])[999], i);
	assert_heap_whole(heap, 16, true);
	for (int i = 0; i < 16; i++)
		cbm_heap_free(heap, held[i]);
	assert_heap_whole(heap, 0, true);
	cbm_heap_destroy(heap);
}

/* Leak reports name their class: one report per class with buffers out. */
static struct {
	int leaks, others;
	char names[8][64];
} leaked;

static void
record_leak(void *arg, const cbm_pool *pool, int err, const void *ptr,
	    const char *what)
{
	(void)arg, (void)ptr, (void)what;
	if (err != CBM_ERR_LEAK) {
		leaked.others++;
		return;
	}
	if (leaked.leaks < 8)
		snprintf(leaked.names[leaked.leaks], sizeof(leaked.names[0]),
			 "%s", cbm_pool_name(pool));
	leaked.leaks++;
}

static void
destroy_reports_leaks_per_class(void **state)
{
	cbm_heap_config cfg = quiet_config(16, 64 * KiB, 4, 0, 0);
	cbm_heap *heap = NULL;
	bool small = false, large = false;

	(void)state;
	cfg.name = "leaky";
	assert_int_equal(cbm_heap_create(&cfg, &heap), 0);
	assert_non_null(cbm_heap_alloc(heap, 64));
	assert_non_null(cbm_heap_alloc(heap, 50));
	assert_non_null(cbm_heap_alloc(heap, 4096));
	cbm_heap_free(heap, cbm_heap_alloc(heap, 200)); /* no leak there */
	memset(&leaked, 0, sizeof(leaked));
	cbm_set_error_handler(record_leak, NULL);
	cbm_heap_destroy(heap);
	cbm_set_error_handler(NULL, NULL);
	assert_int_equal(leaked.others, 0);
	assert_int_equal(leaked.leaks, 2);
	for (int i = 0; i < 2; i++) {
		small |= !strcmp(leaked.names[i], "leaky/64");
		large |= !strcmp(leaked.names[i], "leaky/4096");
	}
	assert_true(small && large);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_configs_are_refused),
		cmocka_unit_test(a_zero_config_gets_the_defaults),
		cmocka_unit_test(classes_are_named_after_the_heap),
		cmocka_unit_test(the_classes_are_the_headers),
		cmocka_unit_test(
			the_first_classes_leave_out_steps_below_16_per_step),
		cmocka_unit_test(waste_is_bounded_by_the_spacing),
		cmocka_unit_test(
			each_size_gets_the_smallest_class_that_holds_it),
		cmocka_unit_test(sizes_above_max_size_are_refused),
		cmocka_unit_test(buffers_are_aligned_to_their_class),
		cmocka_unit_test(buffers_freed_on_another_thread_go_home),
		cmocka_unit_test(
			foreign_and_interior_pointers_are_reported_and_dropped),
		cmocka_unit_test(a_pointer_past_a_class_frontier_is_foreign),
		cmocka_unit_test(
			pointers_in_unmade_slots_and_beside_the_reservation_are_foreign),
		cmocka_unit_test(a_null_heap_is_reported),
		cmocka_unit_test(class_pools_bulk_calls_interoperate),
		cmocka_unit_test(unused_classes_cost_no_resident_memory),
		cmocka_unit_test(
			the_ceiling_holds_and_free_memory_moves_between_classes),
		cmocka_unit_test(free_memory_of_any_class_moves_to_another),
		cmocka_unit_test(racing_classes_share_the_ceiling),
		cmocka_unit_test_teardown(trim_and_release_cover_every_class,
					  restore_affinity),
		cmocka_unit_test(
			retired_buffers_wait_for_readers_then_barrier_brings_them_back),
		cmocka_unit_test(
			a_debug_heap_catches_double_frees_and_overflows),
		cmocka_unit_test(a_fork_child_uses_the_heap),
		cmocka_unit_test(destroy_reports_leaks_per_class),
	};

	keep_affinity();
	if (getenv("CBM_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CBM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
