/* SPDX-License-Identifier: MIT */
/* Shared by the unit tests: cmocka, an error-handler recorder, threads. */
#ifndef CBM_TEST_HELPERS_H
#define CBM_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cbm.h"

/* Built with a sanitizer, whose own shadow memory makes RSS readings
 * about it rather than the pool. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* Under valgrind (its preload library shows it is there), which keeps a
 * shadow of its own and gives its guest less address space. */
static inline bool
under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* Records every report instead of aborting. */
struct recorded_errors {
	atomic_int count;
	int last_err;
	const void *last_ptr;
	const cbm_pool *last_pool;
	char last_what[4096]; /* a leak report names buffers */
	pthread_mutex_t lock;
};

static inline void
record_error(void *arg, const cbm_pool *pool, int err, const void *ptr,
	     const char *what)
{
	struct recorded_errors *r = arg;

	pthread_mutex_lock(&r->lock);
	r->last_err = err;
	r->last_ptr = ptr;
	r->last_pool = pool;
	strncpy(r->last_what, what, sizeof(r->last_what) - 1);
	pthread_mutex_unlock(&r->lock);
	atomic_fetch_add(&r->count, 1);
}

static inline void
recorder_install(struct recorded_errors *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	cbm_set_error_handler(record_error, r);
}

static inline void
recorder_remove(struct recorded_errors *r)
{
	cbm_set_error_handler(NULL, NULL);
	pthread_mutex_destroy(&r->lock);
}

static inline cbm_pool *
make_pool(size_t block_size, size_t capacity, unsigned flags)
{
	cbm_pool_config cfg = {.block_size = block_size,
			       .capacity = capacity,
			       .flags = flags,
			       .name = "test"};
	cbm_pool *pool = NULL;

	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_non_null(pool);
	return pool;
}

/* A pool of capacity 64-byte buffers with magazines of magazine_size, for
 * tests that count what moves between caches and tiers. */
static inline cbm_pool *
make_magazine_pool(size_t capacity, unsigned magazine_size,
		   unsigned idle_trim_ms)
{
	cbm_pool_config cfg = {.block_size = 64,
			       .capacity = capacity,
			       .magazine_size = magazine_size,
			       .idle_trim_ms = idle_trim_ms,
			       .name = "test"};
	cbm_pool *pool = NULL;

	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	return pool;
}

/* The two accounts of a quiescent pool agree (stats.c). */
static inline void
assert_conserved(const cbm_pool *pool)
{
	cbm_stats st;

	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_int_equal(st.free + st.cached + st.retired + st.in_use,
			 st.capacity);
	assert_int_equal(cbm_pool_verify(pool), 0);
}

/* The CPUs the test process may run on, as it started: keep_affinity()
 * first thing in main. */
static inline cpu_set_t *
test_affinity(void)
{
	static cpu_set_t set;

	return &set;
}

static inline void
keep_affinity(void)
{
	sched_getaffinity(0, sizeof(cpu_set_t), test_affinity());
}

/* A teardown: back to all of them. */
static inline int
restore_affinity(void **state)
{
	(void)state;
	return sched_setaffinity(0, sizeof(cpu_set_t), test_affinity());
}

/* The nth of those CPUs, or CPU_SETSIZE when there are fewer. */
static inline unsigned
allowed_cpu(int nth)
{
	int seen = 0;

	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, test_affinity()) && seen++ == nth)
			return c;
	return CPU_SETSIZE;
}

/* Pin the calling thread to cpu; returns it. */
static inline unsigned
pin_to(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_int_equal(sched_setaffinity(0, sizeof(set), &set), 0);
	return cpu;
}

/* Run fn(arg_i) on n threads at once and join them. */
static inline void
run_threads(unsigned n, void *(*fn)(void *), void *args, size_t arg_size)
{
	pthread_t t[64];

	assert_true(n <= 64);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fn,
						(char *)args + i * arg_size),
				 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
}

#endif /* CBM_TEST_HELPERS_H */
