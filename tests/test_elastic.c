/* SPDX-License-Identifier: MIT */
/*
 * Elastic pools (cbm.h, max_capacity and release_ms): creation costs O(1)
 * whatever the ceiling, the pool grows instead of returning NULL below it
 * and honours capacity at it, buffers keep their addresses, and memory
 * goes back to the OS (RSS as /proc/self/statm counts it) from the global
 * tier only, never from under a held or cached buffer.
 */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plant.h"
#include "pool.h"

#define MiB ((size_t)1 << 20)

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

/*
 * The sanitizers keep shadow memory for every page the program touches,
 * and madvise does not give it back: there the process's RSS says more
 * about the sanitizer than about the pool, so the RSS checks read the
 * pool's arena pages instead (mincore), and the create bound, which is
 * about the pool's bookkeeping, is checked in the other builds only
 * (SANITIZED, helpers.h). Under valgrind (under_valgrind) the same holds
 * for its own shadow, and the bursts are cut to an eighth to keep the run
 * short.
 */

/* What the OS backs now: RSS, or in sanitized builds and under valgrind
 * the pool's arena. */
static size_t
resident_now(const cbm_pool *pool)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len, n = 0;
	unsigned char *vec;

	if (!SANITIZED && !under_valgrind())
		return rss_bytes();
	len = (cbm_capacity(pool) * pool->blocks.stride + page - 1) &
	      ~(page - 1);
	vec = malloc(len / page + 1);
	assert_non_null(vec);
	assert_int_equal(mincore(pool->base, len, vec), 0);
	for (size_t i = 0; i < len / page; i++)
		n += vec[i] & 1;
	free(vec);
	return n * page;
}

static cbm_pool *
elastic_pool(size_t block, size_t capacity, size_t max, unsigned release_ms)
{
	cbm_pool_config cfg = {
		.block_size = block,
		.capacity = capacity,
		.max_capacity = max,
		.release_ms = release_ms,
		.name = "elastic",
	};
	cbm_pool *pool = NULL;

	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	return pool;
}

static void
assert_whole(cbm_pool *pool, size_t in_use)
{
	cbm_stats st;

	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_int_equal(st.free + st.cached + st.retired + st.in_use,
			 st.capacity);
	assert_int_equal(st.in_use, in_use);
	assert_int_equal(cbm_pool_verify(pool), 0);
}

/* ---- configuration ------------------------------------------------------ */

static void
bad_ceilings_are_refused(void **state)
{
	cbm_pool_config cfg = {.block_size = 64, .capacity = 10};
	cbm_pool *pool = NULL;

	(void)state;
	cfg.max_capacity = 9; /* below capacity */
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EINVAL);
	cfg.capacity = 0;
	cfg.max_capacity = 0; /* a fixed pool of nothing */
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EINVAL);
	cfg.max_capacity = (size_t)UINT32_MAX; /* indices are 32 bits */
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EOVERFLOW);
	cfg.max_capacity = 100;
	cfg.release_ms = 9; /* below the least */
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EINVAL);
	cfg.release_ms = 0;
	cfg.block_size = SIZE_MAX / 64; /* the ceiling's bytes overflow */
	assert_int_equal(cbm_pool_create(&cfg, &pool), -EOVERFLOW);
	assert_null(pool);
}

/* ---- creation ------------------------------------------------------------ */

/*
 * A ceiling of 2^31 buffers of 2 KiB (4 TiB of address space) costs under
 * 1 MiB resident at create, and the fixed pool a new user tried (2^26 x
 * 64 B) no longer links anything up front either. ThreadSanitizer maps
 * shadow for every mapping and keeps applications to a few TiB: there the
 * ceiling is 2^28 (512 GiB).
 */
#if defined(__SANITIZE_THREAD__)
#define HUGE_CEILING ((size_t)1 << 28)
#else
#define HUGE_CEILING ((size_t)1 << 31)
#endif

/* Valgrind keeps its guest to some tens of GiB of address space. */
static size_t
huge_ceiling(void)
{
	return under_valgrind() ? (size_t)1 << 24 /* 32 GiB of 2 KiB */
				: HUGE_CEILING;
}

static bool
defined_tsan(void)
{
#if defined(__SANITIZE_THREAD__)
	return true; /* its shadow for each mapping is resident */
#else
	return false;
#endif
}

static void
huge_ceilings_cost_nothing_resident(void **state)
{
	const struct {
		size_t block, capacity, max;
	} cases[] = {
		{2048, 0, huge_ceiling()},
		{2048, 1000, huge_ceiling()},
		{64, (size_t)1 << 26, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t before = rss_bytes(), after;
		cbm_pool *pool = elastic_pool(cases[i].block, cases[i].capacity,
					      cases[i].max, 0);
		void *b;

		after = rss_bytes();
		print_message("ceiling %zu x %zu B: %zu KiB more resident\n",
			      cbm_max_capacity(pool), cases[i].block,
			      (after - before) / 1024);
		if (!defined_tsan() && !under_valgrind())
			assert_true(after < before + MiB);
		assert_int_equal(cbm_capacity(pool), cases[i].capacity);
		assert_int_equal(cbm_max_capacity(pool),
				 cases[i].max ? cases[i].max
					      : cases[i].capacity);
		assert_non_null(b = cbm_alloc(pool));
		cbm_free(pool, b);
		cbm_pool_destroy(pool);
	}
}

/* ---- growth -------------------------------------------------------------- */

/* Below the ceiling the pool grows rather than return NULL; at it, NULL
 * only when every buffer is held; addresses are base + index x stride. */
static void
a_pool_grows_to_its_ceiling_and_no_further(void **state)
{
	enum { MAX = 3000 };
	cbm_pool *pool = elastic_pool(100, 0, MAX, 0);
	static void *b[MAX + 1];
	char *base;
	cbm_stats st;

	(void)state;
	assert_int_equal(cbm_capacity(pool), 0);
	for (size_t i = 0; i < MAX; i++) {
		assert_non_null(b[i] = cbm_alloc(pool));
		memset(b[i], (int)(i & 0xff), cbm_block_size(pool));
		assert_true(cbm_capacity(pool) >= i + 1);
	}
	assert_int_equal(cbm_capacity(pool), MAX);
	assert_null(cbm_alloc(pool));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(cbm_alloc_bulk(pool, b, 1), -ENOMEM);
	assert_whole(pool, MAX);
	/* Addresses are fixed: every buffer at its index's place, contents
	 * as written. */
	base = pool->base;
	for (size_t i = 0; i < MAX; i++) {
		size_t off = (size_t)((char *)b[i] - base);

		assert_int_equal(off % pool->blocks.stride, 0);
		assert_true(off / pool->blocks.stride < MAX);
		assert_int_equal(((unsigned char *)b[i])[0], i & 0xff);
	}
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_true(st.grows > 0);
	assert_int_equal(st.max_capacity, MAX);
	cbm_free_bulk(pool, b, MAX);
	assert_whole(pool, 0);
	/* The capacity stays: a pool never shrinks its count. */
	assert_int_equal(cbm_capacity(pool), MAX);
	cbm_pool_destroy(pool);
}

/* A pointer into the reserved arena past the buffers that exist is not a
 * buffer of the pool, and is reported as one that is not. */
static void
a_pointer_past_the_frontier_is_foreign(void **state)
{
	struct recorded_errors rec;
	cbm_pool *pool = elastic_pool(64, 0, 100000, 0);
	void *b = cbm_alloc(pool);
	char *beyond;

	(void)state;
	assert_non_null(b);
	recorder_install(&rec);
	beyond = pool->base + cbm_capacity(pool) * pool->blocks.stride;
	cbm_free(pool, beyond);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_ptr_equal(rec.last_ptr, beyond);
	recorder_remove(&rec);
	cbm_free(pool, b);
	assert_whole(pool, 0);
	cbm_pool_destroy(pool);
}

struct ceiling_run {
	cbm_pool *pool;
	size_t got;
	void **held;
};

static void *
take_until_null(void *arg)
{
	struct ceiling_run *r = arg;

	while ((r->held[r->got] = cbm_alloc(r->pool)) != NULL) {
		memset(r->held[r->got], 0x5a, 8);
		r->got++;
	}
	return NULL;
}

/* Several threads drive a growable pool to its ceiling at once: together
 * they get every buffer, each once, and no more. */
static void
threads_drive_a_pool_to_its_ceiling(void **state)
{
	enum { MAX = 20000, THREADS = 6 };
	cbm_pool *pool = elastic_pool(64, 0, MAX, 0);
	struct ceiling_run r[THREADS];
	pthread_t t[THREADS];
	uint8_t *seen = calloc(MAX, 1);
	size_t total = 0;

	(void)state;
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct ceiling_run){pool, 0,
					    calloc(MAX + 1, sizeof(void *))};
		assert_int_equal(
			pthread_create(&t[i], NULL, take_until_null, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		for (size_t k = 0; k < r[i].got; k++) {
			size_t idx =
				(size_t)((char *)r[i].held[k] - pool->base) /
				pool->blocks.stride;

			assert_true(idx < MAX);
			assert_int_equal(seen[idx], 0);
			seen[idx] = 1;
		}
		total += r[i].got;
	}
	assert_int_equal(total, MAX);
	assert_int_equal(cbm_capacity(pool), MAX);
	assert_whole(pool, MAX);
	for (int i = 0; i < THREADS; i++) {
		cbm_free_bulk(pool, r[i].held, r[i].got);
		free(r[i].held);
	}
	assert_whole(pool, 0);
	free(seen);
	cbm_pool_destroy(pool);
}

/* ---- release ------------------------------------------------------------- */

/*
 * RSS before a burst, at its peak and after release: a 64 MiB burst of 2
 * KiB buffers, held and written, then given back, trimmed down from the
 * caches and released, brings RSS back to within a few MiB of before.
 */
static void
rss_falls_after_a_burst_is_released(void **state)
{
	enum { FULL = 32768 }; /* x 2 KiB = 64 MiB */
	size_t N = under_valgrind() ? FULL / 8 : FULL, burst = N * 2048;
	cbm_pool *pool = elastic_pool(2048, 0, 1u << 20, CBM_RELEASE_OFF);
	static void *b[FULL];
	size_t before, peak, after;
	long released;
	cbm_stats st;

	(void)state;
	before = resident_now(pool);
	assert_int_equal(cbm_alloc_bulk(pool, b, N), 0);
	for (size_t i = 0; i < N; i++)
		memset(b[i], 0x77, 2048);
	peak = resident_now(pool);
	cbm_free_bulk(pool, b, N);
	assert_true(cbm_pool_trim(pool) >= 0);
	released = cbm_pool_release(pool);
	after = resident_now(pool);
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	print_message("RSS %zu MiB before, %zu at the peak, %zu after "
		      "releasing %ld MiB (resident_bytes %zu MiB)\n",
		      before / MiB, peak / MiB, after / MiB,
		      released / (long)MiB, st.resident_bytes / MiB);
	/* Within a sixteenth of the burst (its last pages may sit in this
	 * CPU's cache until the trim, and the bookkeeping stays). */
	assert_true(peak >= before + burst - burst / 16);
	assert_true((size_t)released >= burst - burst / 64);
	assert_int_equal(st.released_bytes, (size_t)released);
	assert_true(after <= before + burst / 16);
	assert_true(st.resident_bytes <= burst / 16);
	assert_int_equal(st.releases, 1);
	assert_whole(pool, 0);
	/* Released buffers come back as normal ones, zero or old. */
	assert_int_equal(cbm_alloc_bulk(pool, b, N), 0);
	for (size_t i = 0; i < N; i++) {
		unsigned char c = ((unsigned char *)b[i])[100];

		assert_true(c == 0 || c == 0x77);
		memset(b[i], 0x11, 2048);
	}
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_int_equal(st.released_bytes, 0);
	assert_whole(pool, N);
	cbm_free_bulk(pool, b, N);
	cbm_pool_destroy(pool);
}

/* Held and cached buffers are never released: their contents stay. */
static void
held_and_cached_buffers_keep_their_contents(void **state)
{
	enum { N = 4096 };
	cbm_pool *pool = elastic_pool(4096, 0, N, CBM_RELEASE_OFF);
	static void *b[N];

	(void)state;
	assert_int_equal(cbm_alloc_bulk(pool, b, N), 0);
	for (size_t i = 0; i < N; i++)
		memset(b[i], (int)(i % 251) + 1, 4096);
	/* Half go back: some to this CPU's cache, the rest to the tier. */
	for (size_t i = 0; i < N; i += 2)
		cbm_free(pool, b[i]);
	assert_true(cbm_pool_release(pool) > 0);
	for (size_t i = 1; i < N; i += 2)
		for (size_t k = 0; k < 4096; k += 512)
			assert_int_equal(((unsigned char *)b[i])[k],
					 (i % 251) + 1);
	for (size_t i = 1; i < N; i += 2)
		cbm_free(pool, b[i]);
	assert_whole(pool, 0);
	cbm_pool_destroy(pool);
}

/* Buffers smaller than a page: only pages all of whose buffers are free
 * go back. */
static void
small_buffers_release_only_whole_pages(void **state)
{
	enum { N = 64 * 64 }; /* 64 pages of 64 buffers of 64 B */
	cbm_pool *pool = elastic_pool(64, 0, N, CBM_RELEASE_OFF);
	static void *b[N];
	size_t per_page = (size_t)sysconf(_SC_PAGESIZE) / 64;
	long got;

	(void)state;
	assert_int_equal(cbm_alloc_bulk(pool, b, N), 0);
	/* Keep one buffer of every page: nothing can go. */
	for (size_t i = 0; i < N; i++)
		if (i % per_page != 0)
			cbm_free(pool, b[i]);
	assert_true(cbm_pool_trim(pool) >= 0);
	assert_int_equal(cbm_pool_release(pool), 0);
	assert_whole(pool, N / per_page);
	/* Every buffer of the first pages free: those pages go. */
	for (size_t i = 0; i < N; i += per_page)
		cbm_free(pool, b[i]);
	assert_true(cbm_pool_trim(pool) >= 0);
	got = cbm_pool_release(pool);
	print_message("%ld bytes released of %zu\n", got, (size_t)N * 64);
	assert_true(got > 0);
	assert_int_equal(got % sysconf(_SC_PAGESIZE), 0);
	assert_whole(pool, 0);
	cbm_pool_destroy(pool);
}

/* The reclamation thread releases what stayed free for release_ms, with no
 * call from the application. */
static void
idle_memory_goes_back_in_the_background(void **state)
{
	enum { FULL = 8192 }; /* x 4 KiB = 32 MiB */
	size_t N = under_valgrind() ? FULL / 8 : FULL;
	cbm_pool_config cfg = {
		.block_size = 4096,
		.max_capacity = FULL,
		.release_ms = 50,
		.idle_trim_ms = 10,
		.name = "background",
	};
	cbm_pool *pool = NULL;
	static void *b[FULL];
	cbm_stats st;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_int_equal(cbm_alloc_bulk(pool, b, N), 0);
	for (size_t i = 0; i < N; i++)
		memset(b[i], 1, 4096);
	cbm_free_bulk(pool, b, N);
	/* Not a timing test: wait (up to 20 s) for what must happen. */
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(cbm_pool_stats(pool, &st), 0);
		if (st.released_bytes >= (size_t)N * 4096 * 9 / 10)
			break;
		usleep(10000);
	}
	print_message("released %zu of %zu bytes in the background, "
		      "%lu passes\n",
		      st.released_bytes, (size_t)N * 4096,
		      (unsigned long)st.releases);
	assert_true(st.released_bytes >= (size_t)N * 4096 * 9 / 10);
	assert_true(st.releases > 0);
	assert_whole(pool, 0);
	cbm_pool_destroy(pool);
}

/* A fixed pool keeps its memory unless asked: release_ms defaults off
 * there (read from the pool: a background pass would come only after a
 * whole default window, longer than a test should sleep to see none), and
 * a fixed pool that asks for release_ms does release in the background. */
static void
a_fixed_pool_releases_only_when_asked(void **state)
{
	cbm_pool_config cfg = {
		.block_size = 4096,
		.capacity = 1024,
		.idle_trim_ms = 10,
	};
	cbm_pool *pool = NULL, *elastic = elastic_pool(4096, 0, 1024, 0);
	static void *b[1024];
	cbm_stats st;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_int_equal(pool->release.ms, CBM_RELEASE_OFF);
	assert_int_equal(elastic->release.ms, 1000); /* cbm.h's default */
	cbm_pool_destroy(elastic);
	assert_int_equal(cbm_alloc_bulk(pool, b, 1024), 0);
	cbm_free_bulk(pool, b, 1024);
	assert_true(cbm_pool_release(pool) > 0);
	cbm_pool_destroy(pool);

	cfg.release_ms = 20;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_int_equal(cbm_alloc_bulk(pool, b, 1024), 0);
	for (size_t i = 0; i < 1024; i++)
		memset(b[i], 1, 4096);
	cbm_free_bulk(pool, b, 1024);
	/* Not a timing test: wait (up to 20 s) for what must happen. */
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(cbm_pool_stats(pool, &st), 0);
		if (st.released_bytes > 0)
			break;
		usleep(10000);
	}
	assert_true(st.released_bytes > 0);
	assert_int_equal(st.max_capacity, 1024);
	cbm_pool_destroy(pool);
}

static void
release_of_no_pool_is_reported(void **state)
{
	struct recorded_errors rec;

	(void)state;
	recorder_install(&rec);
	assert_int_equal(cbm_pool_release(NULL), -EINVAL);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	assert_int_equal(cbm_max_capacity(NULL), 0);
	recorder_remove(&rec);
}

/* A debug pool grows and releases too: states and guard zones of grown
 * and released buffers work as those of any other. */
static void
a_debug_pool_grows_and_releases(void **state)
{
	enum { MAX = 512 };
	cbm_pool_config cfg = {
		.block_size = 4096,
		.max_capacity = MAX,
		.release_ms = CBM_RELEASE_OFF,
		.flags = CBM_POOL_DEBUG,
	};
	struct recorded_errors rec;
	cbm_pool *pool = NULL;
	static void *b[MAX];

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	assert_int_equal(cbm_alloc_bulk(pool, b, MAX), 0);
	cbm_free_bulk(pool, b, MAX);
	assert_true(cbm_pool_trim(pool) >= 0);
	assert_true(cbm_pool_release(pool) > 0);
	assert_whole(pool, 0);
	assert_int_equal(cbm_alloc_bulk(pool, b, MAX), 0);
	recorder_install(&rec);
	cbm_free(pool, b[0]);
	cbm_free(pool, b[0]); /* a double free of a released-and-reused one */
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
	((char *)b[1])[4096] = 1; /* into its guard zone */
	cbm_free(pool, b[1]);
	assert_int_equal(atomic_load(&rec.count), 2);
	assert_int_equal(rec.last_err, CBM_ERR_OVERFLOW);
	recorder_remove(&rec);
	cbm_free_bulk(pool, &b[2], MAX - 2);
	assert_int_equal(cbm_pool_verify(pool), 0);
	cbm_pool_destroy(pool); /* b[1] was dropped: reported held, once */
}

/* A fork child grows its copy of the pool to the ceiling and releases,
 * while the parent's pool goes on as it was. */
static void
a_fork_child_grows_its_own_copy(void **state)
{
	enum { MAX = 4096 };
	cbm_pool *pool = elastic_pool(2048, 0, MAX, CBM_RELEASE_OFF);
	static void *b[MAX];
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(cbm_alloc_bulk(pool, b, MAX / 2), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t n = MAX / 2;

		while (n < MAX && (b[n] = cbm_alloc(pool)) != NULL)
			n++;
		cbm_free_bulk(pool, b, n);
		(void)cbm_pool_trim(pool);
		_exit(n == MAX && cbm_capacity(pool) == MAX &&
				      cbm_pool_release(pool) > 0 &&
				      cbm_pool_verify(pool) == 0
			      ? 0
			      : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(cbm_capacity(pool) <= MAX, 1);
	cbm_free_bulk(pool, b, MAX / 2);
	assert_whole(pool, 0);
	cbm_pool_destroy(pool);
}

#ifdef CBM_FAULT_INJECTION

/* ---- windows ------------------------------------------------------------- */

/* One thread stops at a site until told to go on. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int site; /* the site to stop at, once */
	bool stopped, go;
} window = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.site = -1,
};

static void
window_hook(enum cbm_site site)
{
	pthread_mutex_lock(&window.lock);
	if ((int)site == window.site) {
		window.site = -1;
		window.stopped = true;
		pthread_cond_broadcast(&window.cond);
		while (!window.go)
			pthread_cond_wait(&window.cond, &window.lock);
	}
	pthread_mutex_unlock(&window.lock);
}

static void
window_arm(enum cbm_site site)
{
	window.site = (int)site;
	window.stopped = window.go = false;
	cbm_site_hook_set(window_hook);
}

static void
window_wait_stopped(void)
{
	pthread_mutex_lock(&window.lock);
	while (!window.stopped)
		pthread_cond_wait(&window.cond, &window.lock);
	pthread_mutex_unlock(&window.lock);
}

static void
window_open(void)
{
	pthread_mutex_lock(&window.lock);
	window.go = true;
	pthread_cond_broadcast(&window.cond);
	pthread_mutex_unlock(&window.lock);
}

static void *
release_now(void *arg)
{
	(void)cbm_pool_release(arg);
	return NULL;
}

struct taker {
	cbm_pool *pool;
	void *buf;
	atomic_bool done;
};

static void *
take_and_write(void *arg)
{
	struct taker *t = arg;

	t->buf = cbm_alloc(t->pool);
	if (t->buf != NULL)
		memset(t->buf, 0xab, 4096);
	atomic_store(&t->done, true);
	return NULL;
}

/*
 * The window between a release pass taking free buffers out and giving
 * their pages back: an allocation at the ceiling that runs through it must
 * not get one of them (it waits for the move), so what it writes is never
 * zeroed by the pass. With release-published it gets one at once and its
 * data is lost every time.
 */
static void
a_buffer_taken_during_a_release_keeps_its_data(void **state)
{
	enum { N = 64 };
	cbm_pool *pool = elastic_pool(4096, 0, N, CBM_RELEASE_OFF);
	static void *b[N];
	struct taker t = {.pool = pool};
	pthread_t rel, tk;

	(void)state;
	assert_int_equal(cbm_alloc_bulk(pool, b, N), 0);
	/* One buffer free, in the global tier: the one a release takes. */
	cbm_free(pool, b[0]);
	assert_true(cbm_pool_trim(pool) >= 0);
	window_arm(CBM_SITE_RELEASING);
	assert_int_equal(pthread_create(&rel, NULL, release_now, pool), 0);
	window_wait_stopped();
	assert_int_equal(pthread_create(&tk, NULL, take_and_write, &t), 0);
	/* Let the taker run through the window, or block in it. */
	for (int i = 0; i < 50 && !atomic_load(&t.done); i++)
		usleep(2000);
	window_open();
	pthread_join(rel, NULL);
	pthread_join(tk, NULL);
	cbm_site_hook_set(NULL);
	assert_non_null(t.buf);
	for (size_t k = 0; k < 4096; k += 64)
		assert_int_equal(((unsigned char *)t.buf)[k], 0xab);
	cbm_free(pool, t.buf);
	cbm_free_bulk(pool, &b[1], N - 1);
	assert_whole(pool, 0);
	cbm_pool_destroy(pool);
}

static void *
alloc_one(void *arg)
{
	void *b = cbm_alloc(arg);

	return b;
}

/*
 * Two threads grow a pool at its last step at once: one held where it
 * found every buffer taken, the other grows and takes; the held one then
 * must not grow past the ceiling (with grow-past-ceiling it does, every
 * time).
 */
static void
racing_growers_stop_at_the_ceiling(void **state)
{
	enum { MAX = 10 };
	cbm_pool_config cfg = {
		.block_size = 64,
		.max_capacity = MAX,
		.magazine_size = 8,
	};
	cbm_pool *pool = NULL;
	void *b[MAX + 8];
	size_t n = 0;
	pthread_t t;
	void *got;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	window_arm(CBM_SITE_GROWING);
	assert_int_equal(pthread_create(&t, NULL, alloc_one, pool), 0);
	window_wait_stopped();
	/* The held grower holds a move: take exactly the ceiling, which
	 * needs no look at a dry pool (that would wait for the move). */
	for (; n < MAX; n++)
		assert_non_null(b[n] = cbm_alloc(pool));
	window_open();
	pthread_join(t, &got);
	cbm_site_hook_set(NULL);
	if (got != NULL)
		b[n++] = got;
	while (n < MAX + 8 && (b[n] = cbm_alloc(pool)) != NULL)
		n++;
	assert_int_equal(n, MAX);
	assert_int_equal(cbm_capacity(pool), MAX);
	assert_whole(pool, MAX);
	cbm_free_bulk(pool, b, n);
	cbm_pool_destroy(pool);
}

#endif /* CBM_FAULT_INJECTION */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_ceilings_are_refused),
		cmocka_unit_test(huge_ceilings_cost_nothing_resident),
		cmocka_unit_test(a_pool_grows_to_its_ceiling_and_no_further),
		cmocka_unit_test(a_pointer_past_the_frontier_is_foreign),
		cmocka_unit_test(threads_drive_a_pool_to_its_ceiling),
		cmocka_unit_test(rss_falls_after_a_burst_is_released),
		cmocka_unit_test(held_and_cached_buffers_keep_their_contents),
		cmocka_unit_test(small_buffers_release_only_whole_pages),
		cmocka_unit_test(idle_memory_goes_back_in_the_background),
		cmocka_unit_test(a_fixed_pool_releases_only_when_asked),
		cmocka_unit_test(release_of_no_pool_is_reported),
		cmocka_unit_test(a_debug_pool_grows_and_releases),
		cmocka_unit_test(a_fork_child_grows_its_own_copy),
#ifdef CBM_FAULT_INJECTION
		cmocka_unit_test(
			a_buffer_taken_during_a_release_keeps_its_data),
		cmocka_unit_test(racing_growers_stop_at_the_ceiling),
#endif
	};

	if (getenv("CBM_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CBM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
