/* SPDX-License-Identifier: MIT */
/*
 * Region callbacks (cbm.h, on_map and on_unmap): a recording callback
 * keeps the extents it was told of, and every buffer the pool hands out
 * must lie in one of them at that moment. A fixed pool maps its regions at
 * create and does nothing else; an elastic one maps each region before any
 * of it is handed out, grows by whole regions, unmaps only whole free
 * regions when it releases, and maps them again before their next use.
 *
 * Buffers of 128 MiB make regions of 8 buffers (1 GiB), so a few buffers
 * span several regions. The pool never touches a buffer's memory; the
 * tests write one byte of a buffer at most.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plant.h"

#define BLOCK ((size_t)128 << 20)
#define PER 8 /* buffers per region: 1 GiB / 128 MiB */
#define MAX_REGIONS 16

/* What the callbacks were told, kept as an application would. */
struct recorder {
	pthread_mutex_t lock;
	struct {
		char *addr;
		size_t len;
		bool mapped;
	} r[MAX_REGIONS];
	unsigned maps, unmaps;
	unsigned maps_of[MAX_REGIONS], unmaps_of[MAX_REGIONS];
	unsigned bad; /* calls that broke the contract */
};

static struct recorder rec;

static void
recorder_reset(void)
{
	pthread_mutex_destroy(&rec.lock);
	memset(&rec, 0, sizeof(rec));
	pthread_mutex_init(&rec.lock, NULL);
}

static void
on_map(void *arg, void *addr, size_t len, unsigned index)
{
	struct recorder *r = arg;

	pthread_mutex_lock(&r->lock);
	if (index >= MAX_REGIONS || len == 0 || len > ((size_t)1 << 30))
		r->bad++;
	else {
		r->r[index].addr = addr;
		r->r[index].len = len;
		r->r[index].mapped = true;
		r->maps_of[index]++;
	}
	r->maps++;
	pthread_mutex_unlock(&r->lock);
}

static void
on_unmap(void *arg, void *addr, size_t len, unsigned index)
{
	struct recorder *r = arg;

	pthread_mutex_lock(&r->lock);
	/* Only a mapped region, with the extent it was mapped with. */
	if (index >= MAX_REGIONS || !r->r[index].mapped ||
	    r->r[index].addr != addr || r->r[index].len != len)
		r->bad++;
	else {
		r->r[index].mapped = false;
		r->unmaps_of[index]++;
	}
	r->unmaps++;
	pthread_mutex_unlock(&r->lock);
}

/* Do size bytes at buf lie wholly in a region mapped now? */
static bool
span_mapped(const void *buf, size_t size)
{
	const char *p = buf;
	bool in = false;

	pthread_mutex_lock(&rec.lock);
	for (unsigned i = 0; i < MAX_REGIONS && !in; i++)
		in = rec.r[i].mapped && p >= rec.r[i].addr &&
		     p + size <= rec.r[i].addr + rec.r[i].len;
	pthread_mutex_unlock(&rec.lock);
	return in;
}

/* Does a buffer of these tests' pools lie wholly in a mapped region? */
static bool
mapped_now(const void *buf)
{
	return span_mapped(buf, BLOCK);
}

static cbm_pool *
hooked_pool(size_t capacity, size_t max)
{
	cbm_pool_config cfg = {
		.block_size = BLOCK,
		.capacity = capacity,
		.max_capacity = max,
		.magazine_size = 2,
		.release_ms = CBM_RELEASE_OFF,
		/* A fixed pool would pad its stride by a line (cache colouring,
		 * cbm.h), making regions of 4: keep 8. */
		.flags = CBM_POOL_EXACT_STRIDE,
		.name = "hooked",
		.on_map = on_map,
		.on_unmap = on_unmap,
		.region_arg = &rec,
	};
	cbm_pool *pool = NULL;

	recorder_reset();
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	return pool;
}

/* Take a buffer and check that it was mapped when it came. */
static void *
take_mapped(cbm_pool *pool)
{
	void *b = cbm_alloc(pool);

	assert_non_null(b);
	assert_true(mapped_now(b));
	return b;
}

/* Region index is mapped as [its first buffer, + buffers). */
static void
assert_extent(unsigned index, cbm_pool *pool, size_t buffers)
{
	struct iovec first;

	assert_true(cbm_pool_regions(pool, &first, 1) > (int)index);
	assert_true(rec.r[index].mapped);
	assert_ptr_equal(rec.r[index].addr,
			 (char *)first.iov_base + (size_t)index * PER * BLOCK);
	assert_int_equal(rec.r[index].len, buffers * BLOCK);
}

static void
bad_callbacks_are_refused(void **state)
{
	cbm_pool_config cfg = {.block_size = 64, .capacity = 10};
	cbm_pool *pool = NULL;

	(void)state;
	cfg.on_map = on_map; /* one alone */
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EINVAL);
	cfg.on_map = NULL;
	cfg.on_unmap = on_unmap;
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EINVAL);
	/* A buffer larger than a region may be. */
	cfg.on_map = on_map;
	cfg.block_size = ((size_t)1 << 30) + 4096;
	cfg.capacity = 1;
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EOVERFLOW);
	/* 1 GiB fits, but not with a debug pool's guard zone. */
	cfg.block_size = (size_t)1 << 30;
	cfg.flags = CBM_POOL_DEBUG;
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EOVERFLOW);
	assert_null(pool);
	cfg.flags = 0;
	cfg.region_arg = &rec;
	recorder_reset();
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_int_equal(rec.maps, 1);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.unmaps, 1);
	assert_int_equal(rec.bad, 0);
}

/* A fixed pool: on_map for each region at create, in cbm_pool_regions's
 * terms, and nothing more while buffers come and go; destroy unmaps. */
static void
a_fixed_pool_maps_its_regions_at_create_only(void **state)
{
	enum { N = 2 * PER + 3 };
	cbm_pool *pool = hooked_pool(N, 0);
	struct iovec iov[4];
	void *b[N];

	(void)state;
	assert_int_equal(cbm_pool_regions(pool, iov, 4), 3);
	assert_int_equal(rec.maps, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(rec.maps_of[i], 1);
		assert_ptr_equal(rec.r[i].addr, iov[i].iov_base);
		assert_int_equal(rec.r[i].len, iov[i].iov_len);
	}
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++)
			b[i] = take_mapped(pool);
		cbm_free_bulk(pool, b, N);
		assert_true(cbm_pool_trim(pool) >= 0);
	}
	assert_int_equal(rec.maps, 3);
	assert_int_equal(rec.unmaps, 0);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.unmaps, 3);
	assert_int_equal(rec.bad, 0);
}

/* An elastic pool from nothing: each region is mapped, whole (or up to the
 * ceiling), before the first of its buffers is handed out, and the pool
 * grows by regions. */
static void
an_elastic_pool_maps_each_region_before_its_buffers(void **state)
{
	enum { MAX = 2 * PER + 4 };
	cbm_pool *pool = hooked_pool(0, MAX);
	void *b[MAX];

	(void)state;
	assert_int_equal(rec.maps, 0);
	for (int i = 0; i < MAX; i++) {
		b[i] = take_mapped(pool);
		/* Grown to the end of the buffer's region, or the ceiling. */
		assert_int_equal(cbm_capacity(pool) % PER == 0 ||
					 cbm_capacity(pool) == MAX,
				 1);
	}
	assert_null(cbm_alloc(pool));
	assert_int_equal(rec.maps, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(rec.maps_of[i], 1);
	assert_extent(0, pool, PER);
	assert_extent(1, pool, PER);
	assert_extent(2, pool, 4); /* cut short by the ceiling */
	cbm_free_bulk(pool, b, MAX);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.unmaps, 3);
	assert_int_equal(rec.bad, 0);
}

/* Buffers that exist at create but fill no region: growth lengthens the
 * last region (a new extent for the same index) before handing out more. */
static void
growth_lengthens_the_last_region(void **state)
{
	enum { MAX = 2 * PER };
	cbm_pool *pool = hooked_pool(3, MAX);
	void *b[MAX];

	(void)state;
	assert_int_equal(rec.maps, 1);
	assert_extent(0, pool, 3);
	/* A region not all of whose buffers exist yet never goes: its other
	 * buffers would come into being unmapped. */
	for (int i = 0; i < 3; i++)
		b[i] = take_mapped(pool);
	cbm_free_bulk(pool, b, 3);
	assert_true(cbm_pool_trim(pool) >= 0);
	assert_int_equal(cbm_pool_release(pool), 0);
	assert_int_equal(rec.unmaps, 0);
	for (int i = 0; i < MAX; i++)
		b[i] = take_mapped(pool);
	assert_int_equal(rec.maps_of[0], 2);
	assert_extent(0, pool, PER);
	assert_int_equal(rec.maps_of[1], 1);
	assert_extent(1, pool, PER);
	cbm_free_bulk(pool, b, MAX);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.bad, 0);
}

/* Release: on_unmap only for regions all of whose buffers are free in the
 * global tier (the last one, cut short by the ceiling, is whole with the
 * buffers it has); the next use of a released region maps it again
 * first. */
static void
release_unmaps_whole_free_regions_and_reuse_maps_them(void **state)
{
	enum { MAX = 2 * PER + 4 };
	cbm_pool *pool = hooked_pool(0, MAX);
	void *b[MAX];
	cbm_stats st;
	long gone;

	(void)state;
	for (int i = 0; i < MAX; i++)
		b[i] = take_mapped(pool);
	/* Region 0 all free, region 1 but one, region 2 (4, to the ceiling)
	 * all. */
	for (int i = 0; i < MAX; i++)
		if (i != PER + 3)
			cbm_free(pool, b[i]);
	assert_true(cbm_pool_trim(pool) >= 0);
	gone = cbm_pool_release(pool);
	assert_true(gone > 0);
	assert_int_equal(rec.unmaps, 2);
	assert_int_equal(rec.unmaps_of[0], 1);
	assert_int_equal(rec.unmaps_of[2], 1);
	assert_false(rec.r[0].mapped || rec.r[2].mapped);
	assert_true(rec.r[1].mapped);
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_int_equal(st.released_bytes, (size_t)gone);
	assert_int_equal(cbm_pool_verify(pool), 0);

	/* Take every free buffer: the released regions' come last (the
	 * released list after the freelist), each mapped when it comes. */
	for (int i = 0; i < MAX; i++)
		if (i != PER + 3)
			b[i] = take_mapped(pool);
	assert_null(cbm_alloc(pool));
	assert_int_equal(rec.maps_of[0], 2);
	assert_int_equal(rec.maps_of[2], 2);
	assert_extent(0, pool, PER);
	assert_extent(2, pool, 4);

	/* Everything free: every region goes. */
	cbm_free_bulk(pool, b, MAX);
	assert_true(cbm_pool_trim(pool) >= 0);
	assert_true(cbm_pool_release(pool) > 0);
	assert_int_equal(rec.unmaps_of[0], 2);
	assert_int_equal(rec.unmaps_of[1], 1);
	assert_int_equal(rec.unmaps_of[2], 2);
	assert_int_equal(cbm_pool_verify(pool), 0);
	for (int i = 0; i < MAX; i++)
		b[i] = take_mapped(pool);
	cbm_free_bulk(pool, b, MAX);
	cbm_pool_destroy(pool);
	/* Destroy unmaps what is still mapped, once each. */
	for (unsigned i = 0; i < 3; i++)
		assert_false(rec.r[i].mapped);
	assert_int_equal(rec.maps, rec.unmaps);
	assert_int_equal(rec.bad, 0);
}

static unsigned
unmaps_now(void)
{
	unsigned n;

	pthread_mutex_lock(&rec.lock);
	n = rec.unmaps;
	pthread_mutex_unlock(&rec.lock);
	return n;
}

/* The background policy releases through the same callbacks. */
static void
background_release_unmaps_too(void **state)
{
	cbm_pool_config cfg = {
		.block_size = BLOCK,
		.max_capacity = PER,
		.release_ms = 20,
		.on_map = on_map,
		.on_unmap = on_unmap,
		.region_arg = &rec,
	};
	cbm_pool *pool = NULL;
	void *b[PER];

	(void)state;
	recorder_reset();
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	for (int i = 0; i < PER; i++)
		b[i] = take_mapped(pool);
	cbm_free_bulk(pool, b, PER);
	assert_true(cbm_pool_trim(pool) >= 0);
	/* The reclamation thread calls on_unmap: read under its lock. */
	for (int i = 0; i < 500 && unmaps_now() == 0; i++)
		usleep(10000);
	assert_int_equal(unmaps_now(), 1);
	b[0] = take_mapped(pool);
	cbm_free(pool, b[0]);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.bad, 0);
}

/* A fork child grows its copy of a hooked pool, and the parent its own:
 * the fork handlers held the growth lock across fork() and let go of it
 * on both sides. Small buffers (one region, cut by the ceiling): a child
 * under memcheck scans every buffer handed out when it exits. */
static void
a_fork_child_grows_a_hooked_pool(void **state)
{
	cbm_pool_config cfg = {.block_size = 4096,
			       .max_capacity = 64,
			       .release_ms = CBM_RELEASE_OFF,
			       .on_map = on_map,
			       .on_unmap = on_unmap,
			       .region_arg = &rec};
	cbm_pool *pool = NULL;
	void *b;
	pid_t pid;
	int status = -1;

	(void)state;
	recorder_reset();
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		b = cbm_alloc(pool);
		_exit(b != NULL && span_mapped(b, 4096) && rec.maps == 1 ? 0
									 : 1);
	}
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("the child did not finish (a growth lock left held?)");
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(rec.maps, 0); /* the child's growth was its own */
	b = cbm_alloc(pool);
	assert_non_null(b);
	assert_true(span_mapped(b, 4096));
	cbm_free(pool, b);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.bad, 0);
}

#ifdef CBM_FAULT_INJECTION
/*
 * The window between a growth deciding what to add and publishing it: a
 * grower held there (CBM_SITE_MAPPING, before its on_map) must not let any
 * other thread take a buffer of the new part. The other thread either
 * reaches the grow path itself (and waits for the grower) or, with
 * map-after-publish, takes an unmapped buffer at once, every time.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool armed, held, go, other_growing;
} win = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static _Thread_local bool is_other;

static void
window_hook(enum cbm_site site)
{
	pthread_mutex_lock(&win.lock);
	if (site == CBM_SITE_MAPPING && win.armed && !is_other) {
		win.armed = false;
		win.held = true;
		pthread_cond_broadcast(&win.cond);
		while (!win.go)
			pthread_cond_wait(&win.cond, &win.lock);
	} else if (site == CBM_SITE_GROWING && is_other) {
		win.other_growing = true;
		pthread_cond_broadcast(&win.cond);
	}
	pthread_mutex_unlock(&win.lock);
}

struct taker {
	cbm_pool *pool;
	bool other; /* the thread that must wait */
	void *buf;
	bool was_mapped, done;
};

static void *
take(void *arg)
{
	struct taker *t = arg;

	is_other = t->other;
	t->buf = cbm_alloc(t->pool);
	t->was_mapped = t->buf != NULL && mapped_now(t->buf);
	pthread_mutex_lock(&win.lock);
	t->done = true;
	pthread_cond_broadcast(&win.cond);
	pthread_mutex_unlock(&win.lock);
	return NULL;
}

/* Wait on win.cond, win.lock held, for at most 10 s in all: a window
 * that never comes is a failure, not a hang. */
static void
window_wait(const struct timespec *until)
{
	int rc = pthread_cond_timedwait(&win.cond, &win.lock, until);

	if (rc == ETIMEDOUT) {
		pthread_mutex_unlock(&win.lock);
		fail_msg("the window never came");
	}
}

static void
no_buffer_of_a_growth_is_taken_before_on_map(void **state)
{
	cbm_pool *pool = hooked_pool(0, 2 * PER);
	struct taker grower = {.pool = pool},
		     other = {.pool = pool, .other = true};
	struct timespec until;
	pthread_t a, b;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	win.armed = true;
	win.held = win.go = win.other_growing = false;
	cbm_site_hook_set(window_hook);
	assert_int_equal(pthread_create(&a, NULL, take, &grower), 0);
	pthread_mutex_lock(&win.lock);
	while (!win.held)
		window_wait(&until);
	pthread_mutex_unlock(&win.lock);
	/* The grower is inside the window: the other must wait for it. */
	assert_int_equal(pthread_create(&b, NULL, take, &other), 0);
	pthread_mutex_lock(&win.lock);
	while (!other.done && !win.other_growing)
		window_wait(&until);
	win.go = true;
	pthread_cond_broadcast(&win.cond);
	pthread_mutex_unlock(&win.lock);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	cbm_site_hook_set(NULL);
	assert_non_null(grower.buf);
	assert_non_null(other.buf);
	assert_true(grower.was_mapped);
	assert_true(other.was_mapped);
	assert_int_equal(rec.maps_of[0], 1);
	cbm_free(pool, grower.buf);
	cbm_free(pool, other.buf);
	cbm_pool_destroy(pool);
	assert_int_equal(rec.bad, 0);
}
#endif /* CBM_FAULT_INJECTION */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_callbacks_are_refused),
		cmocka_unit_test(a_fixed_pool_maps_its_regions_at_create_only),
		cmocka_unit_test(
			an_elastic_pool_maps_each_region_before_its_buffers),
		cmocka_unit_test(growth_lengthens_the_last_region),
		cmocka_unit_test(
			release_unmaps_whole_free_regions_and_reuse_maps_them),
		cmocka_unit_test(background_release_unmaps_too),
		cmocka_unit_test(a_fork_child_grows_a_hooked_pool),
#ifdef CBM_FAULT_INJECTION
		cmocka_unit_test(no_buffer_of_a_growth_is_taken_before_on_map),
#endif
	};

	pthread_mutex_init(&rec.lock, NULL);
	if (getenv("CBM_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CBM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
