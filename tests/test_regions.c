/* SPDX-License-Identifier: MIT */
/*
 * A pool's memory as regions (src/regions.c, G1-G3): the regions cover
 * every buffer exactly, none larger than 1 GiB, no buffer straddles two,
 * and cbm_region_index names the region that holds any byte of a buffer
 * and rejects every address that is in none. The pools over 1 GiB here
 * cost address space only: the arena is never touched.
 */
#include "helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#define GIB ((size_t)1 << 30)
#define MIB ((size_t)1 << 20)

static struct recorded_errors rec;

static int
install(void **state)
{
	(void)state;
	recorder_install(&rec);
	return 0;
}

static int
remove_recorder(void **state)
{
	(void)state;
	recorder_remove(&rec);
	return 0;
}

static cbm_pool *
make(size_t block_size, size_t capacity, size_t align, unsigned flags)
{
	cbm_pool_config cfg = {.block_size = block_size,
			       .capacity = capacity,
			       .align = align,
			       .flags = flags,
			       .name = "regions"};
	cbm_pool *pool = NULL;

	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	return pool;
}

/* The pool's regions, checked to be at most 1 GiB each and to follow one
 * another with no gap; *count says how many. */
static struct iovec *
regions_of(const cbm_pool *pool, int *count)
{
	int n = cbm_pool_regions(pool, NULL, 0);
	struct iovec *iov;

	assert_true(n > 0);
	iov = calloc((size_t)n, sizeof(*iov));
	assert_non_null(iov);
	assert_int_equal(cbm_pool_regions(pool, iov, (unsigned)n), n);
	for (int r = 0; r < n; r++) {
		assert_true(iov[r].iov_len > 0);
		assert_true(iov[r].iov_len <= GIB);
		if (r > 0)
			assert_ptr_equal((char *)iov[r - 1].iov_base +
						 iov[r - 1].iov_len,
					 iov[r].iov_base);
	}
	*count = n;
	return iov;
}

/* The region that holds [p, p + len), found by looking, or -1 when no
 * single region holds it all. */
static int
holder(const struct iovec *iov, int n, const char *p, size_t len)
{
	for (int r = 0; r < n; r++) {
		const char *lo = iov[r].iov_base;

		if (p >= lo && p + len <= lo + iov[r].iov_len)
			return r;
	}
	return -1;
}

/*
 * Take every buffer; each lies inside one region with all its bytes, the
 * one cbm_region_index names for its start, its last byte and a byte in
 * between; the regions hold nothing else (their bytes add up to the
 * buffers' strides). Returns the buffers, for the caller to give back.
 */
static void **
check_every_buffer(cbm_pool *pool, const struct iovec *iov, int n)
{
	size_t cap = cbm_capacity(pool), size = cbm_block_size(pool);
	size_t total = 0;
	void **bufs = calloc(cap, sizeof(*bufs));

	assert_non_null(bufs);
	assert_int_equal(cbm_alloc_bulk(pool, bufs, cap), 0);
	for (size_t i = 0; i < cap; i++) {
		char *b = bufs[i];
		int r = holder(iov, n, b, size);

		assert_true(r >= 0);
		assert_int_equal(cbm_region_index(pool, b), r);
		assert_int_equal(cbm_region_index(pool, b + size - 1), r);
		assert_int_equal(cbm_region_index(pool, b + size / 2 + 1), r);
	}
	for (int r = 0; r < n; r++)
		total += iov[r].iov_len;
	assert_true(total >= cap * size);
	assert_true(total < cap * size + cap * 4096);
	return bufs;
}

static void
release(cbm_pool *pool, void **bufs, struct iovec *iov)
{
	cbm_free_bulk(pool, bufs, cbm_capacity(pool));
	free(bufs);
	free(iov);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
a_small_pool_is_one_region_of_all_its_buffers(void **state)
{
	cbm_pool *pool = make(4096, 64, 4096, 0);
	struct iovec *iov;
	void **bufs;
	int n;

	(void)state;
	iov = regions_of(pool, &n);
	assert_int_equal(n, 1);
	assert_int_equal(iov[0].iov_len, 64 * 4096);
	assert_int_equal((uintptr_t)iov[0].iov_base % 4096, 0);
	bufs = check_every_buffer(pool, iov, n);
	assert_int_equal(atomic_load(&rec.count), 0);
	release(pool, bufs, iov);
}

/* 1100 buffers of 1 MiB: 1024 in the first region (exactly 1 GiB), 76 in
 * the second. */
static void
a_pool_over_a_gib_spans_regions_of_at_most_a_gib(void **state)
{
	cbm_pool *pool = make(MIB, 1100, 4096, 0);
	struct iovec *iov;
	void **bufs;
	int n;

	(void)state;
	iov = regions_of(pool, &n);
	assert_int_equal(n, 2);
	assert_int_equal(iov[0].iov_len, GIB);
	assert_int_equal(iov[1].iov_len, 76 * MIB);
	bufs = check_every_buffer(pool, iov, n);
	assert_int_equal(atomic_load(&rec.count), 0);
	release(pool, bufs, iov);
}

/* A stride that is no power of two (192 KiB): 4096 buffers fit a region
 * (768 MiB; 5461 would fit 1 GiB, but the index is a shift), and the
 * boundary falls between buffer 4095 and buffer 4096. */
static void
a_region_boundary_falls_between_two_buffers(void **state)
{
	size_t stride = 192 * 1024;
	cbm_pool *pool = make(stride, 6000, 4096, 0);
	struct iovec *iov;
	char *edge;
	void **bufs;
	int n;

	(void)state;
	iov = regions_of(pool, &n);
	assert_int_equal(n, 2);
	assert_int_equal(iov[0].iov_len, 4096 * stride);
	assert_int_equal(iov[1].iov_len, (6000 - 4096) * stride);
	bufs = check_every_buffer(pool, iov, n);
	edge = iov[1].iov_base;
	assert_int_equal(cbm_region_index(pool, edge - 1), 0);
	assert_int_equal(cbm_region_index(pool, edge - stride), 0);
	assert_int_equal(cbm_region_index(pool, edge), 1);
	assert_int_equal(cbm_region_index(pool, edge + 1), 1);
	assert_int_equal(atomic_load(&rec.count), 0);
	release(pool, bufs, iov);
}

/* Asked for fewer than there are: fills that many, says how many there
 * are, and writes nothing past them. */
static void
a_short_array_is_filled_as_far_as_it_goes(void **state)
{
	cbm_pool *pool = make(MIB, 2100, 4096, 0);
	struct iovec iov[4];
	char *first;

	(void)state;
	memset(iov, 0xa5, sizeof(iov));
	assert_int_equal(cbm_pool_regions(pool, iov, 1), 3);
	first = iov[0].iov_base;
	assert_int_equal(iov[0].iov_len, GIB);
	for (size_t k = 0; k < sizeof(iov[1]); k++)
		assert_int_equal(((unsigned char *)&iov[1])[k], 0xa5);
	assert_int_equal(cbm_pool_regions(pool, iov, 4), 3);
	assert_ptr_equal(iov[0].iov_base, first);
	assert_ptr_equal(iov[2].iov_base, first + 2 * GIB);
	assert_int_equal(iov[2].iov_len, 52 * MIB);
	for (size_t k = 0; k < sizeof(iov[3]); k++)
		assert_int_equal(((unsigned char *)&iov[3])[k], 0xa5);
	assert_int_equal(atomic_load(&rec.count), 0);
	cbm_pool_destroy(pool);
}

static void
expect_foreign(const cbm_pool *pool, const void *p)
{
	int before = atomic_load(&rec.count);

	assert_int_equal(cbm_region_index(pool, p), -EINVAL);
	assert_int_equal(atomic_load(&rec.count), before + 1);
	assert_int_equal(rec.last_err, CBM_ERR_FOREIGN);
	assert_ptr_equal(rec.last_ptr, p);
	assert_ptr_equal(rec.last_pool, pool);
}

/* Addresses in no buffer: before the arena, just past the last buffer, on
 * the stack, on the heap, NULL; each is reported and answered -EINVAL. */
static void
an_address_in_no_buffer_is_foreign(void **state)
{
	cbm_pool *pool = make(4096, 16, 4096, 0);
	struct iovec iov;
	char *base, local = 0;
	void *heap = malloc(64);

	(void)state;
	assert_int_equal(cbm_pool_regions(pool, &iov, 1), 1);
	base = iov.iov_base;
	expect_foreign(pool, base - 1);
	expect_foreign(pool, base + 16 * 4096);
	expect_foreign(pool, base + 16 * 4096 + 100);
	expect_foreign(pool, &local);
	expect_foreign(pool, heap);
	expect_foreign(pool, NULL);
	assert_int_equal(cbm_region_index(pool, base + 16 * 4096 - 1), 0);
	free(heap);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

/* A debug pool's regions include the guard zones (G3), but a byte of a
 * guard zone is in no buffer. */
static void
a_guard_zone_is_in_a_region_but_in_no_buffer(void **state)
{
	cbm_pool *pool = make(4096, 8, 4096, CBM_POOL_DEBUG);
	size_t size = cbm_block_size(pool);
	struct iovec iov;
	char *b = cbm_alloc(pool);
	size_t stride;

	(void)state;
	assert_non_null(b);
	assert_int_equal(cbm_pool_regions(pool, &iov, 1), 1);
	stride = iov.iov_len / 8;
	assert_true(stride > size);
	assert_int_equal(iov.iov_len % stride, 0);
	assert_int_equal(cbm_region_index(pool, b + size - 1), 0);
	expect_foreign(pool, b + size);
	expect_foreign(pool, b + stride - 1);
	cbm_free(pool, b);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
null_arguments_are_bad_arguments(void **state)
{
	cbm_pool *pool = make(4096, 4, 0, 0);
	struct iovec iov;

	(void)state;
	assert_int_equal(cbm_pool_regions(NULL, &iov, 1), -EINVAL);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	assert_int_equal(cbm_pool_regions(NULL, NULL, 0), -EINVAL);
	assert_int_equal(cbm_region_index(NULL, &iov), -EINVAL);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	assert_int_equal(atomic_load(&rec.count), 3);
	assert_int_equal(cbm_pool_regions(pool, NULL, 2), -EINVAL);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	assert_ptr_equal(rec.last_pool, pool);
	assert_int_equal(cbm_pool_regions(pool, NULL, 0), 1);
	assert_int_equal(atomic_load(&rec.count), 4);
	cbm_pool_destroy(pool);
}

/*
 * An elastic pool's regions cover the buffers that exist now (G2): none
 * before the first allocation, then more at the end as it grows, none
 * moving; the reserved space past the buffers that exist is in no buffer.
 */
static void
a_growing_pool_adds_regions_at_the_end(void **state)
{
	cbm_pool_config cfg = {.block_size = MIB,
			       .capacity = 0,
			       .max_capacity = 1100,
			       .align = 4096,
			       .release_ms = CBM_RELEASE_OFF,
			       .name = "regions-elastic"};
	void **bufs = calloc(1030, sizeof(*bufs));
	struct iovec first, iov[3];
	cbm_pool *pool = NULL;
	size_t exists;
	int n;

	(void)state;
	assert_non_null(bufs);
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_int_equal(cbm_pool_regions(pool, iov, 3), 0);
	bufs[0] = cbm_alloc(pool);
	assert_non_null(bufs[0]);
	assert_int_equal(cbm_pool_regions(pool, &first, 1), 1);
	assert_int_equal(first.iov_len, cbm_capacity(pool) * MIB);
	assert_int_equal(holder(&first, 1, bufs[0], MIB), 0);
	assert_int_equal(cbm_region_index(pool, bufs[0]), 0);
	for (int i = 1; i < 1030; i++) {
		bufs[i] = cbm_alloc(pool);
		assert_non_null(bufs[i]);
	}
	exists = cbm_capacity(pool);
	assert_true(exists >= 1030 && exists <= 1100);
	n = cbm_pool_regions(pool, iov, 3);
	assert_int_equal(n, 2);
	assert_ptr_equal(iov[0].iov_base, first.iov_base);
	assert_int_equal(iov[0].iov_len, GIB);
	assert_int_equal(iov[1].iov_len, (exists - 1024) * MIB);
	for (int i = 0; i < 1030; i++) {
		char *b = bufs[i];
		int r = holder(iov, n, b, MIB);

		assert_true(r >= 0);
		assert_int_equal(cbm_region_index(pool, b), r);
		assert_int_equal(cbm_region_index(pool, b + MIB - 1), r);
	}
	expect_foreign(pool, (char *)iov[1].iov_base + iov[1].iov_len);
	expect_foreign(pool, (char *)iov[1].iov_base + iov[1].iov_len + MIB);
	cbm_free_bulk(pool, bufs, 1030);
	free(bufs);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

/* A buffer larger than any region can be: no regions, and it says so. */
static void
a_buffer_over_a_gib_has_no_region(void **state)
{
	cbm_pool *pool = make(GIB + 4096, 1, 4096, 0);
	struct iovec iov;
	void *b = cbm_alloc(pool);

	(void)state;
	assert_int_equal(cbm_pool_regions(pool, &iov, 1), -EOVERFLOW);
	assert_int_equal(cbm_region_index(pool, b), -EOVERFLOW);
	assert_int_equal(atomic_load(&rec.count), 0);
	cbm_free(pool, b);
	cbm_pool_destroy(pool);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, install, remove_recorder)
	const struct CMUnitTest tests[] = {
		T(a_small_pool_is_one_region_of_all_its_buffers),
		T(a_pool_over_a_gib_spans_regions_of_at_most_a_gib),
		T(a_region_boundary_falls_between_two_buffers),
		T(a_short_array_is_filled_as_far_as_it_goes),
		T(an_address_in_no_buffer_is_foreign),
		T(a_guard_zone_is_in_a_region_but_in_no_buffer),
		T(null_arguments_are_bad_arguments),
		T(a_buffer_over_a_gib_has_no_region),
		T(a_growing_pool_adds_regions_at_the_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
