/* SPDX-License-Identifier: MIT */
/*
 * Debugging a program without rebuilding cbm: CBM_DEBUG in the
 * environment, leak reports that name the buffers and where they were
 * allocated, overflow reports that say how far a write went.
 */
/* This file frees twice on purpose; gcc would see it (cbm.h's
 * CBM_ALLOCATOR) and stop the build. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#include "helpers.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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
	unsetenv("CBM_DEBUG");
	recorder_remove(&rec);
	return 0;
}

/* Bytes from the lowest to the highest buffer of a pool of n, all taken:
 * (n - 1) strides, whatever order they come in. */
static uintptr_t
span_of_all(cbm_pool *pool, size_t n)
{
	void *bufs[64];
	uintptr_t lo = UINTPTR_MAX, hi = 0;

	assert_true(n <= 64);
	assert_int_equal(cbm_alloc_bulk(pool, bufs, n), 0);
	for (size_t i = 0; i < n; i++) {
		uintptr_t p = (uintptr_t)bufs[i];

		lo = p < lo ? p : lo;
		hi = p > hi ? p : hi;
	}
	cbm_free_bulk(pool, bufs, n);
	return hi - lo;
}

static void
cbm_debug_1_makes_a_normal_pool_a_debug_pool(void **state)
{
	cbm_pool *pool;
	void *b;

	(void)state;
	setenv("CBM_DEBUG", "1", 1);
	pool = make_pool(64, 16, 0);
	/* A guard zone after each buffer: 64 + 8 rounded to 64. */
	assert_int_equal(span_of_all(pool, 16), 15 * 128);
	b = cbm_alloc(pool);
	cbm_free(pool, b);
	assert_int_equal(atomic_load(&rec.count), 0);
	cbm_free(pool, b);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
	assert_ptr_equal(rec.last_ptr, b);
	assert_int_equal(cbm_pool_verify(pool), 0);
	cbm_pool_destroy(pool);
	assert_int_equal(atomic_load(&rec.count), 1);
}

static void
cbm_debug_unset_empty_or_0_leaves_pools_alone(void **state)
{
	const char *off[] = {NULL, "", "0"};

	(void)state;
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		cbm_pool *pool;

		if (off[i] == NULL)
			unsetenv("CBM_DEBUG");
		else
			setenv("CBM_DEBUG", off[i], 1);
		pool = make_pool(64, 16, 0);
		assert_int_equal(span_of_all(pool, 16), 15 * 64);
		cbm_pool_destroy(pool);
	}
	assert_int_equal(atomic_load(&rec.count), 0);
}

static void
a_leak_report_names_the_buffers(void **state)
{
	cbm_pool *pool = make_pool(64, 32, 0);
	void *bufs[20];
	char want[64];

	(void)state;
	assert_int_equal(cbm_alloc_bulk(pool, bufs, 20), 0);
	cbm_pool_destroy(pool);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_int_equal(rec.last_err, CBM_ERR_LEAK);
	assert_non_null(strstr(rec.last_what, "20 of 32 buffers still held"));
	/* The first 16 by address and index, the rest counted. */
	{
		int named = 0;
		const char *p = rec.last_what;

		while ((p = strstr(p, " (buffer ")) != NULL) {
			named++;
			p++;
		}
		assert_int_equal(named, 16);
	}
	for (int i = 0; i < 20; i++) {
		unsigned idx;
		const char *at;

		snprintf(want, sizeof(want), "%p (buffer ", bufs[i]);
		at = strstr(rec.last_what, want);
		if (at == NULL)
			continue;
		assert_int_equal(sscanf(at + strlen(want), "%u", &idx), 1);
		assert_true(idx < 32);
	}
	assert_non_null(strstr(rec.last_what, "and 4 more"));
}

/* A call of cbm_alloc from a known place: its return address is inside
 * this function. */
static __attribute__((noinline)) void *
alloc_from_here(cbm_pool *pool)
{
	void *b = cbm_alloc(pool);

	__asm__ volatile("" ::: "memory"); /* not a tail call */
	return b;
}

static void
a_debug_leak_report_says_where_each_was_allocated(void **state)
{
	cbm_pool *pool = make_pool(64, 8, CBM_POOL_DEBUG);
	void *b = alloc_from_here(pool);
	const char *at;
	void *site = NULL;
	char want[64];

	(void)state;
	cbm_pool_destroy(pool);
	assert_int_equal(rec.last_err, CBM_ERR_LEAK);
	snprintf(want, sizeof(want), "%p (buffer ", b);
	at = strstr(rec.last_what, want);
	assert_non_null(at);
	at = strstr(at, "allocated at ");
	assert_non_null(at);
	assert_int_equal(sscanf(at, "allocated at %p", &site), 1);
	assert_true((uintptr_t)site > (uintptr_t)alloc_from_here);
	assert_true((uintptr_t)site < (uintptr_t)alloc_from_here + 256);
	/* Without CBM_DEBUG=backtrace, only the caller. */
	assert_null(strstr(rec.last_what, " <- "));
}

static void
cbm_debug_backtrace_keeps_the_frames_below(void **state)
{
	cbm_pool *pool;

	(void)state;
	setenv("CBM_DEBUG", "backtrace", 1);
	pool = make_pool(64, 8, 0);
	(void)alloc_from_here(pool);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.last_err, CBM_ERR_LEAK);
	assert_non_null(strstr(rec.last_what, "allocated at "));
	/* alloc_from_here, then this test, then cmocka... */
	assert_non_null(strstr(rec.last_what, " <- "));
}

static void
an_overflow_report_says_how_far(void **state)
{
	/* 100 bytes round up to 128 usable; the guard zone is 64. */
	cbm_pool *pool = make_pool(100, 4, CBM_POOL_DEBUG);
	char *b = cbm_alloc(pool);

	(void)state;
	memset(b + cbm_block_size(pool), 0, 5);
	cbm_free(pool, b);
	assert_int_equal(rec.last_err, CBM_ERR_OVERFLOW);
	assert_non_null(strstr(rec.last_what, "written 5 bytes past its end"));
	b = cbm_alloc(pool);
	memset(b + cbm_block_size(pool), 0, 64);
	cbm_free(pool, b);
	assert_non_null(strstr(rec.last_what,
			       "written at least 64 bytes past its end"));
	cbm_pool_destroy(pool); /* the two dropped ones leak */
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, install, remove_recorder)
	const struct CMUnitTest tests[] = {
		T(cbm_debug_1_makes_a_normal_pool_a_debug_pool),
		T(cbm_debug_unset_empty_or_0_leaves_pools_alone),
		T(a_leak_report_names_the_buffers),
		T(a_debug_leak_report_says_where_each_was_allocated),
		T(cbm_debug_backtrace_keeps_the_frames_below),
		T(an_overflow_report_says_how_far),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
