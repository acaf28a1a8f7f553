/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for retire, barrier, read-side sections, idle trim and fork
 * (src/reclaim.c, src/rcu.c, src/trim.c, src/fork.c).
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/urcu-qsbr.h>

#include "pool.h"
#include "rcu.h"
#include "reclaim.h"
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

/*
 * Calls that wait for the reclamation thread are served within a pass or
 * two, however fast buffers are retired (reclaim.c, R3 and R5). One thread
 * keeps retiring from a large pool, so that every pass takes more than
 * SMALL_BATCH buffers and the thread goes straight into the next one. Two
 * readers hold sections of SECTION_MS each, half a section out of
 * step, so that a reader is always inside one that has at least half of
 * it to go: no pass is shorter than SECTION_MS / 2 (one reader would let
 * every other pass end in microseconds, between its unlock and next lock).
 * The bounds count passes, not seconds: a slow machine makes passes longer,
 * not more numerous.
 */
#define BUSY_CAPACITY 65536
#define SECTION_MS 10
#define RETIRE_BURST 500
#define LARGE_PASS 256 /* SMALL_BATCH, reclaim.c */
/*
 * Counted: passes that began after the call and ended before it returned.
 * By design a barrier, and so destroy, needs one of them; fork, verify and
 * destroy's unregister none (they wait for the pass in flight, which began
 * before). The window measured opens a little before the call takes the
 * registry lock: a pass that begins meanwhile adds one, and a wait for a
 * CPU as long as a pass (SECTION_MS / 2 at least) on a loaded 2-CPU
 * machine one more. Starved, they see tens to hundreds.
 */
#define MAX_PASSES_WAITED 3

struct busy {
	cbm_pool *pool;
	atomic_bool stop;
	atomic_int readers;
	struct timespec start; /* the readers' common clock */
};

/*
 * Bursts of RETIRE_BURST a millisecond: about half a million buffers a
 * second, thousands a pass, far from draining the pool within one (a dry
 * pool leaves the thread nothing to take after a pass, and it naps). A
 * fraction of a CPU: flat out, this thread would compete with the one that
 * measures, and the passes that end while that one waits for a CPU would
 * count as waited.
 */
static void *
busy_retirer(void *arg)
{
	struct busy *b = arg;

	while (!atomic_load(&b->stop)) {
		for (int i = 0; i < RETIRE_BURST; i++) {
			void *p = cbm_alloc(b->pool);

			if (p != NULL)
				cbm_retire(b->pool, p);
		}
		sleep_ms(1);
	}
	return NULL;
}

static void
timespec_add_ms(struct timespec *ts, unsigned ms)
{
	ts->tv_nsec += (long)ms * 1000000;
	ts->tv_sec += ts->tv_nsec / 1000000000;
	ts->tv_nsec %= 1000000000;
}

/* Sections end on a fixed grid, so a late wake-up shortens one section
 * and does not put the two readers in step. */
static void *
slow_reader(void *arg)
{
	struct busy *b = arg;
	struct timespec end = b->start;

	timespec_add_ms(&end,
			atomic_fetch_add(&b->readers, 1) * SECTION_MS / 2);
	while (!atomic_load(&b->stop)) {
		cbm_read_lock();
		timespec_add_ms(&end, SECTION_MS);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end,
				       NULL) == EINTR)
			;
		cbm_read_unlock();
	}
	return NULL;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum { WAIT_BARRIER, WAIT_FORK, WAIT_VERIFY, WAIT_DESTROY, WAIT_KINDS };

static const char *const wait_kind[WAIT_KINDS] = {"barrier", "fork", "verify",
						  "destroy"};

/* One call's window, and the most passes and milliseconds each kind of
 * call waited. */
struct waits {
	uint64_t started, ms;
	int64_t most[WAIT_KINDS];
	uint64_t most_ms[WAIT_KINDS];
};

static void
wait_begins(struct waits *w)
{
	uint64_t done;

	/* Let the thread get back into its stride after the call before. */
	sleep_ms(20);
	cbm_reclaim_pass_counts(&w->started, &done);
	w->ms = mono_ms();
}

/* Returns the passes that began after wait_begins and ended by now. */
static int64_t
wait_ends(struct waits *w, int kind)
{
	uint64_t started, done, ms = mono_ms() - w->ms;
	int64_t passes;

	cbm_reclaim_pass_counts(&started, &done);
	passes = (int64_t)(done - w->started);
	if (passes > MAX_PASSES_WAITED)
		print_message("%s waited %" PRId64 " passes, %" PRIu64 " ms\n",
			      wait_kind[kind], passes, ms);
	if (passes > w->most[kind])
		w->most[kind] = passes;
	if (ms > w->most_ms[kind])
		w->most_ms[kind] = ms;
	return passes;
}

static void
waiters_are_served_while_every_pass_is_large(void **state)
{
	static struct busy b;
	struct waits w = {0};
	/* Seconds here, under valgrind and under TSan alike. */
	int rounds = 10;
	uint64_t started, done0, done;
	cbm_stats st0, st;
	pthread_t t[3];

	(void)state;
	b.pool = make_pool(64, BUSY_CAPACITY, 0);
	atomic_store(&b.stop, false);
	atomic_store(&b.readers, 0);
	clock_gettime(CLOCK_MONOTONIC, &b.start);
	pthread_create(&t[0], NULL, busy_retirer, &b);
	pthread_create(&t[1], NULL, slow_reader, &b);
	pthread_create(&t[2], NULL, slow_reader, &b);
	/* Let the passes grow large before measuring. */
	cbm_reclaim_pass_counts(&started, &done0);
	do {
		sleep_ms(1);
		cbm_reclaim_pass_counts(&started, &done);
	} while (done - done0 < 3);
	cbm_pool_stats(b.pool, &st0);
	done0 = done;
	for (int round = 0; round < rounds; round++) {
		cbm_pool *other = make_pool(64, 64, 0);
		int status = -1, verified;
		pid_t pid;

		wait_begins(&w);
		cbm_barrier(b.pool);
		/* R3: it waited for a pass that began after it did. */
		assert_true(wait_ends(&w, WAIT_BARRIER) >= 1);

		wait_begins(&w);
		pid = fork();
		if (pid == 0)
			_exit(0);
		wait_ends(&w, WAIT_FORK);
		assert_true(pid > 0);
		waitpid(pid, &status, 0);
		assert_true(WIFEXITED(status));

		/* A second pool with retired buffers of its own: in the
		 * busy pool's passes, then destroyed while they go on. */
		for (int i = 0; i < 32; i++)
			cbm_retire(other, cbm_alloc(other));
		wait_begins(&w);
		verified = cbm_pool_verify(other);
		wait_ends(&w, WAIT_VERIFY);
		assert_int_equal(verified, 0);
		wait_begins(&w);
		cbm_pool_destroy(other);
		wait_ends(&w, WAIT_DESTROY);
	}
	cbm_reclaim_pass_counts(&started, &done);
	cbm_pool_stats(b.pool, &st);
	atomic_store(&b.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	print_message("%d rounds, %" PRIu64 " passes, %" PRIu64
		      " buffers each on average\n",
		      rounds, done - done0,
		      (st.reclaimed - st0.reclaimed) / (done - done0));
	for (int k = 0; k < WAIT_KINDS; k++)
		print_message("%s waited at most %" PRId64
			      " passes begun after it, %" PRIu64 " ms\n",
			      wait_kind[k], w.most[k], w.most_ms[k]);
	/* The load did what the test needs: passes too large for the thread
	 * to nap between them. */
	assert_true(st.reclaimed - st0.reclaimed >=
		    (uint64_t)LARGE_PASS * (done - done0));
	for (int k = 0; k < WAIT_KINDS; k++)
		assert_true(w.most[k] <= MAX_PASSES_WAITED);
	cbm_barrier(b.pool);
	assert_conserved(b.pool);
	cbm_pool_destroy(b.pool);
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
		cmocka_unit_test(waiters_are_served_while_every_pass_is_large),
	};

	/* CBM_TEST_FILTER=name runs one test (tests/expect_tsan_race.sh). */
	if (getenv("CBM_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CBM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
