/*
 * Unit tests for retire, barrier, read-side sections, idle trim and fork
 * (src/reclaim.c, src/rcu.c, src/trim.c, src/fork.c).
 */
#include "helpers.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/urcu-qsbr.h>

#include "pool.h"
#include "rcu.h"
#include "verify.h"

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void
barrier_brings_back_everything_retired(void **state)
{
	cbm_pool *pool = make_pool(256, 512, CBM_POOL_DEBUG);
	void *b[500];
	cbm_stats st;

	(void)state;
	for (int i = 0; i < 500; i++)
		b[i] = cbm_alloc(pool);
	for (int i = 0; i < 500; i++)
		cbm_retire(pool, b[i]);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.retired + st.reclaimed, 500);
	assert_conserved(pool);
	cbm_barrier(pool);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.retired, 0);
	assert_int_equal(st.reclaimed, 500);
	assert_true(st.grace_periods >= 1);
	assert_int_equal(st.free + st.cached, 512);
	assert_conserved(pool);
	/* All 512 can be had again. */
	for (int i = 0; i < 500; i++)
		assert_non_null(b[i] = cbm_alloc(pool));
	cbm_free_bulk(pool, b, 500);
	assert_conserved(pool);
	cbm_retire(pool, NULL);
	cbm_pool_destroy(pool);
}

static void
retired_buffers_come_back_without_a_barrier(void **state)
{
	cbm_pool *pool = make_pool(64, 64, 0);
	cbm_stats st;

	(void)state;
	for (int i = 0; i < 64; i++)
		cbm_retire(pool, cbm_alloc(pool));
	/* The thread was idle: the first retire woke it (reclaim.c, R4).
	 * The pass counts them reclaimed before it clears its in-flight
	 * count (splice_batch), so wait for both: until then the buffers
	 * count twice and conservation would fail on a sound pool. */
	for (int i = 0; i < 2000; i++) {
		cbm_pool_stats(pool, &st);
		if (st.reclaimed == 64 && st.retired == 0)
			break;
		sleep_ms(1);
	}
	assert_int_equal(st.reclaimed, 64);
	assert_int_equal(st.retired, 0);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

/*
 * Grace: readers inside cbm_read_lock check that a published buffer still
 * holds what it was published with, while writers replace and retire it and
 * churners allocate and scribble on whatever they get. A retired buffer
 * handed out before its readers left would show a scribble.
 */
#define SLOTS 4
#define WORDS 16

struct grace {
	cbm_pool *pool;
	_Atomic(uint64_t *) slot[SLOTS];
	atomic_bool stop;
	atomic_ulong reads, torn, writes, churns;
};

static void *
reader(void *arg)
{
	struct grace *g = arg;
	unsigned long reads = 0, torn = 0;

	while (!atomic_load(&g->stop)) {
		cbm_read_lock();
		for (int s = 0; s < SLOTS; s++) {
			uint64_t *p = atomic_load(&g->slot[s]);

			for (int w = 1; w < WORDS; w++)
				torn += p[w] != p[0];
			reads++;
		}
		cbm_read_unlock();
	}
	atomic_fetch_add(&g->reads, reads);
	atomic_fetch_add(&g->torn, torn);
	return NULL;
}

static void *
writer(void *arg)
{
	struct grace *g = arg;
	uint64_t serial = (uint64_t)pthread_self() << 20;
	unsigned long writes = 0;

	while (!atomic_load(&g->stop)) {
		uint64_t *p = cbm_alloc(g->pool), *old;

		if (p == NULL) {
			sched_yield();
			continue;
		}
		serial++;
		for (int w = 0; w < WORDS; w++)
			p[w] = serial;
		old = atomic_exchange(&g->slot[serial % SLOTS], p);
		cbm_retire(g->pool, old);
		if (++writes % 64 == 0)
			atomic_fetch_add(&g->writes, 64);
	}
	atomic_fetch_add(&g->writes, writes % 64);
	return NULL;
}

static void *
churner(void *arg)
{
	struct grace *g = arg;
	unsigned long churns = 0;

	while (!atomic_load(&g->stop)) {
		uint64_t *p = cbm_alloc(g->pool);

		if (p == NULL) {
			sched_yield();
			continue;
		}
		for (int w = 0; w < WORDS; w++)
			p[w] = w; /* never all equal */
		cbm_free(g->pool, p);
		churns++;
	}
	atomic_fetch_add(&g->churns, churns);
	return NULL;
}

static void
readers_never_see_a_retired_buffer_reused(void **state)
{
	static struct grace g;
	pthread_t t[8];
	void *(*role[8])(void *) = {reader, reader,  reader,  writer,
				    writer, churner, churner, reader};
	cbm_stats st;

	(void)state;
	memset(&g, 0, sizeof(g));
	/* Small: reuse follows reclamation at once. */
	g.pool = make_pool(WORDS * 8, 64, 0);
	for (int s = 0; s < SLOTS; s++) {
		uint64_t *p = cbm_alloc(g.pool);

		for (int w = 0; w < WORDS; w++)
			p[w] = s;
		atomic_store(&g.slot[s], p);
	}
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, role[i], &g);
	/* Run until buffers have been retired and reused a few thousand
	 * times (seconds on a quiet machine; longer under sanitizers). */
	for (int waited = 0; waited < 20000; waited += 100) {
		sleep_ms(100);
		cbm_pool_stats(g.pool, &st);
		if (waited >= 1000 && atomic_load(&g.writes) > 2000 &&
		    st.reclaimed > 2000)
			break;
	}
	atomic_store(&g.stop, true);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	print_message("reads %lu, writes %lu, churns %lu, torn %lu\n",
		      atomic_load(&g.reads), atomic_load(&g.writes),
		      atomic_load(&g.churns), atomic_load(&g.torn));
	assert_int_equal(atomic_load(&g.torn), 0);
	assert_true(atomic_load(&g.writes) > 1000);
	assert_true(atomic_load(&g.reads) > 1000);
	cbm_pool_stats(g.pool, &st);
	/* Retired buffers were reused many times over, each after a grace
	 * period: the test exercised what it checks. */
	assert_true(st.reclaimed > 1000);
	for (int s = 0; s < SLOTS; s++)
		cbm_retire(g.pool, atomic_load(&g.slot[s]));
	cbm_barrier(g.pool);
	assert_conserved(g.pool);
	cbm_pool_destroy(g.pool);
}

/* A reader inside its section holds the barrier until it leaves. */
struct held_reader {
	atomic_int phase;
	atomic_bool barrier_done;
	cbm_pool *pool;
};

static void *
barrier_thread(void *arg)
{
	struct held_reader *h = arg;

	cbm_barrier(h->pool);
	atomic_store(&h->barrier_done, true);
	return NULL;
}

static void *
memb_reader(void *arg)
{
	struct held_reader *h = arg;

	cbm_read_lock();
	atomic_store(&h->phase, 1);
	while (atomic_load(&h->phase) != 2)
		sched_yield();
	cbm_read_unlock();
	return NULL;
}

static void
barrier_waits_for_readers_inside(void **state)
{
	struct held_reader h = {.pool = make_pool(64, 8, 0)};
	pthread_t r, b;

	(void)state;
	pthread_create(&r, NULL, memb_reader, &h);
	while (atomic_load(&h.phase) != 1)
		sched_yield();
	cbm_retire(h.pool, cbm_alloc(h.pool));
	pthread_create(&b, NULL, barrier_thread, &h);
	sleep_ms(200);
	assert_false(atomic_load(&h.barrier_done));
	atomic_store(&h.phase, 2);
	pthread_join(r, NULL);
	pthread_join(b, NULL);
	assert_true(atomic_load(&h.barrier_done));
	assert_conserved(h.pool);
	cbm_pool_destroy(h.pool);
}

/* A pool of the qsbr flavor waits for qsbr readers, who use their own
 * flavor's API: registered, and announcing quiescent states. */
static void *
qsbr_reader(void *arg)
{
	struct held_reader *h = arg;

	urcu_qsbr_register_thread();
	atomic_store(&h->phase, 1);
	while (atomic_load(&h->phase) != 2)
		sched_yield();
	urcu_qsbr_quiescent_state();
	urcu_qsbr_unregister_thread();
	return NULL;
}

static void
pools_of_another_flavor_wait_for_its_readers(void **state)
{
	cbm_pool_config cfg = {.block_size = 64,
			       .capacity = 8,
			       .rcu_flavor = &urcu_qsbr_flavor};
	struct held_reader h = {0};
	pthread_t r, b;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &h.pool), 0);
	pthread_create(&r, NULL, qsbr_reader, &h);
	while (atomic_load(&h.phase) != 1)
		sched_yield();
	cbm_retire(h.pool, cbm_alloc(h.pool));
	pthread_create(&b, NULL, barrier_thread, &h);
	sleep_ms(200);
	/* The qsbr reader has not passed a quiescent state. */
	assert_false(atomic_load(&h.barrier_done));
	atomic_store(&h.phase, 2);
	pthread_join(r, NULL);
	pthread_join(b, NULL);
	assert_true(atomic_load(&h.barrier_done));
	assert_conserved(h.pool);
	cbm_pool_destroy(h.pool);
}

static void *
short_lived_reader(void *arg)
{
	(void)arg;
	cbm_read_lock();
	cbm_read_lock(); /* sections nest */
	cbm_read_unlock();
	cbm_read_unlock();
	return NULL;
}

static void
reader_threads_unregister_at_exit(void **state)
{
	uint32_t before = atomic_load(&cbm_rcu_registered_readers);
	cbm_pool *pool = make_pool(64, 8, 0);

	(void)state;
	for (int round = 0; round < 50; round++) {
		pthread_t t[4];

		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, short_lived_reader, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	}
	assert_int_equal(atomic_load(&cbm_rcu_registered_readers), before);
	/* And grace periods still complete. */
	cbm_retire(pool, cbm_alloc(pool));
	cbm_barrier(pool);
	cbm_pool_destroy(pool);
}

static void
idle_caches_are_drained(void **state)
{
	cbm_pool_config cfg = {.block_size = 64,
			       .capacity = 256,
			       .magazine_size = 16,
			       .idle_trim_ms = 100};
	cbm_pool *pool;
	void *b[40];
	cbm_stats st;
	struct timespec freed, now;
	long waited = 0;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	for (int i = 0; i < 40; i++)
		b[i] = cbm_alloc(pool);
	cbm_free_bulk(pool, b, 40);
	/* The cache's last operation: idleness is measured from here, on a
	 * clock (sleeps overrun on a loaded machine). */
	clock_gettime(CLOCK_MONOTONIC, &freed);
	cbm_pool_stats(pool, &st);
	assert_true(st.cached > 0);
	while (waited < 5000) {
		sleep_ms(5);
		cbm_pool_stats(pool, &st);
		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - freed.tv_sec) * 1000 +
			 (now.tv_nsec - freed.tv_nsec) / 1000000;
		if (st.cached == 0)
			break;
	}
	print_message("cached buffers drained after %ld ms idle\n", waited);
	assert_int_equal(st.cached, 0);
	/* Not before the period; after it, within a tick on a quiet machine
	 * (about 125 ms here), later under valgrind or a loaded CI. */
	assert_true(waited >= 100);
	assert_true(st.idle_drains >= 16);
	assert_int_equal(st.free, 256);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
idle_trim_can_be_off(void **state)
{
	cbm_pool_config cfg = {.block_size = 64,
			       .capacity = 256,
			       .magazine_size = 16,
			       .idle_trim_ms = CBM_IDLE_TRIM_OFF};
	cbm_pool *pool;
	cbm_stats st;

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	cbm_free(pool, cbm_alloc(pool));
	sleep_ms(300);
	cbm_pool_stats(pool, &st);
	assert_true(st.cached > 0);
	assert_int_equal(st.idle_drains, 0);
	cbm_pool_destroy(pool);
}

/* Threads hammer the pool while the main thread forks; the child must
 * find a whole pool and use it, retire included. */
struct hammer {
	cbm_pool *pool;
	atomic_bool stop;
};

static void *
hammer(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load(&h->stop)) {
		void *b[8];

		if (cbm_alloc_bulk(h->pool, b, 8) == 0) {
			cbm_retire(h->pool, b[0]);
			cbm_free_bulk(h->pool, b + 1, 7);
		}
	}
	return NULL;
}

/*
 * In the child, buffers that the parent's other threads held, or had in
 * hand inside a library call, are gone for good: the child checks the
 * structures (no buffer in two places), then that what is left is usable
 * and handed out once each.
 */
static int
child_uses_pool(cbm_pool *pool)
{
	size_t cap = cbm_capacity(pool), got = 0;
	void **all = calloc(cap, sizeof(void *));
	cbm_stats st;
	void *b;

	if (cbm_verify(pool, false) != 0)
		return 10;
	/* Buffers the parent's threads retired wait for a grace period. */
	cbm_barrier(pool);
	b = cbm_alloc(pool);
	if (b == NULL)
		return 11;
	cbm_free(pool, b);
	cbm_retire(pool, cbm_alloc(pool));
	cbm_barrier(pool);
	cbm_pool_stats(pool, &st);
	if (st.retired != 0 || st.reclaimed == 0)
		return 12;
	while (got < cap && (all[got] = cbm_alloc(pool)) != NULL)
		got++;
	/* At most what the parent's three threads can have in hand: a
	 * bulk of 8, or a magazine between the depot and a cache. */
	if (got + 3 * (8 + st.magazine_size) < cap - st.in_use)
		return 13;
	for (size_t i = 0; i < got; i++)
		for (size_t j = i + 1; j < got; j++)
			if (all[i] == all[j])
				return 14;
	cbm_free_bulk(pool, all, got);
	if (cbm_verify(pool, false) != 0)
		return 15;
	free(all);
	return 0;
}

static void
fork_child_gets_a_usable_pool(void **state)
{
	static struct hammer h;
	pthread_t t[3];
	int status[20];

	(void)state;
	h.pool = make_pool(64, 512, CBM_POOL_DEBUG);
	atomic_store(&h.stop, false);
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, hammer, &h);
	for (int round = 0; round < 20; round++) {
		pid_t pid;

		sleep_ms(5);
		pid = fork();
		if (pid == 0)
			_exit(child_uses_pool(h.pool));
		status[round] = -1;
		if (pid > 0)
			waitpid(pid, &status[round], 0);
	}
	/* Stop the threads before any assertion can leave the test. */
	atomic_store(&h.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (int round = 0; round < 20; round++) {
		assert_true(WIFEXITED(status[round]));
		assert_int_equal(WEXITSTATUS(status[round]), 0);
	}
	cbm_barrier(h.pool);
	assert_conserved(h.pool);
	cbm_pool_destroy(h.pool);
}

static void
destroy_waits_for_retired_buffers(void **state)
{
	struct recorded_errors rec;

	(void)state;
	recorder_install(&rec);
	for (int i = 0; i < 20; i++) {
		cbm_pool *pool = make_pool(64, 32, 0);

		for (int k = 0; k < 32; k++)
			cbm_retire(pool, cbm_alloc(pool));
		cbm_pool_destroy(pool); /* no leak: retired is not held */
	}
	assert_int_equal(atomic_load(&rec.count), 0);
	recorder_remove(&rec);
}

/* Pools come and go on some threads while others retire into theirs. */
static void *
lifecycle(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++) {
		cbm_pool *pool = make_pool(128, 64, i % 2 ? CBM_POOL_DEBUG : 0);
		void *b[16];

		assert_int_equal(cbm_alloc_bulk(pool, b, 16), 0);
		for (int k = 0; k < 16; k++)
			cbm_retire(pool, b[k]);
		if (i % 3 == 0)
			cbm_barrier(pool);
		cbm_pool_destroy(pool);
	}
	return NULL;
}

static void *
retirer(void *arg)
{
	cbm_pool *pool = arg;

	for (int i = 0; i < 20000; i++) {
		void *b = cbm_alloc(pool);

		if (b != NULL)
			cbm_retire(pool, b);
	}
	return NULL;
}

static void
pools_come_and_go_while_others_retire(void **state)
{
	cbm_pool *hot = make_pool(64, 256, 0);
	pthread_t t[6];

	(void)state;
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, i < 3 ? lifecycle : retirer,
			       i < 3 ? NULL : hot);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	cbm_barrier(hot);
	assert_conserved(hot);
	cbm_pool_destroy(hot);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(barrier_brings_back_everything_retired),
		cmocka_unit_test(retired_buffers_come_back_without_a_barrier),
		cmocka_unit_test(readers_never_see_a_retired_buffer_reused),
		cmocka_unit_test(barrier_waits_for_readers_inside),
		cmocka_unit_test(pools_of_another_flavor_wait_for_its_readers),
		cmocka_unit_test(reader_threads_unregister_at_exit),
		cmocka_unit_test(idle_caches_are_drained),
		cmocka_unit_test(idle_trim_can_be_off),
		cmocka_unit_test(fork_child_gets_a_usable_pool),
		cmocka_unit_test(destroy_waits_for_retired_buffers),
		cmocka_unit_test(pools_come_and_go_while_others_retire),
	};

	/* CBM_TEST_FILTER=name runs one test (tests/expect_tsan_race.sh). */
	if (getenv("CBM_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CBM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
