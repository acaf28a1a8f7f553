/* SPDX-License-Identifier: MIT */
/*
 * Capacity means capacity, and stats are exact, at the windows where
 * buffers are between places (src/transit.h, src/dry.c).
 *
 * Each test holds one thread at a named yield point of a fault-injection
 * build (src/plant.h, CBM_YIELD_AT) inside the window, makes another thread
 * run through it, and only then lets the first one go: the bug each test is
 * about shows every time, not once in a thousand runs. Without fault
 * injection the sites do not exist and the tests skip. The suite runs in
 * both per-CPU modes (the portable copy of every unit test).
 */
#include "helpers.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "global.h"
#include "plant.h"
#include "pool.h"

#define CAP 8
#define MAG 4
#define NO_SITE (-1)

/* ---- pools in the shape each window needs ------------------------------ */

static cbm_pool *
window_pool(unsigned idle_trim_ms)
{
	return make_magazine_pool(CAP, MAG, idle_trim_ms);
}

/* Every buffer of a window pool, into b[0 .. CAP-1]. */
static void
take_all(cbm_pool *pool, void **b)
{
	for (int i = 0; i < CAP; i++)
		assert_non_null(b[i] = cbm_alloc(pool));
}

static void
assert_exact(const cbm_stats *st, size_t in_use)
{
	assert_int_equal(st->free + st->cached + st->retired + st->in_use,
			 st->capacity);
	assert_int_equal(st->in_use, in_use);
}

#ifdef CBM_FAULT_INJECTION

/* ---- holding a thread at a site ---------------------------------------- */

/* Threads stop in turn: the kth to stop goes on at the kth let_go. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned stops, released;
	atomic_int any_site; /* a site any thread stops at, once */
} hold = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.any_site = NO_SITE,
};

/* The site the calling thread stops at next, and the one after. */
static _Thread_local int my_site = NO_SITE, my_next_site = NO_SITE;

static void
stop_here(void)
{
	unsigned ticket;

	pthread_mutex_lock(&hold.lock);
	ticket = ++hold.stops;
	pthread_cond_broadcast(&hold.cond);
	while (hold.released < ticket)
		pthread_cond_wait(&hold.cond, &hold.lock);
	pthread_mutex_unlock(&hold.lock);
}

static void
site_hook(enum cbm_site site)
{
	int any = (int)site;

	if ((int)site == my_site) {
		my_site = my_next_site;
		my_next_site = NO_SITE;
		stop_here();
	} else if (atomic_compare_exchange_strong(&hold.any_site, &any,
						  NO_SITE)) {
		stop_here();
	}
}

static void
hold_reset(void)
{
	hold.stops = 0;
	hold.released = 0;
	atomic_store(&hold.any_site, NO_SITE);
	cbm_site_hook_set(site_hook);
}

/* Wait until n threads have stopped so far; false after 10 s. */
static bool
wait_stops(unsigned n)
{
	struct timespec until;
	bool stopped;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&hold.lock);
	while (hold.stops < n &&
	       pthread_cond_timedwait(&hold.cond, &hold.lock, &until) == 0)
		;
	stopped = hold.stops >= n;
	pthread_mutex_unlock(&hold.lock);
	return stopped;
}

/* Wait until a thread is stopped that no let_go has released yet. */
static bool
wait_paused(void)
{
	return wait_stops(hold.released + 1);
}

/* Let the earliest stopped thread not yet released go on. */
static void
let_go(void)
{
	pthread_mutex_lock(&hold.lock);
	hold.released++;
	pthread_cond_broadcast(&hold.cond);
	pthread_mutex_unlock(&hold.lock);
}

/* ---- threads that make one call ---------------------------------------- */

struct call {
	pthread_t thread;
	cbm_pool *pool;
	unsigned cpu;  /* pin to it, or CPU_SETSIZE */
	int site;      /* stop there, or NO_SITE */
	int next_site; /* and then there */
	bool internal; /* cbm_global_alloc_one instead of cbm_alloc */
	size_t bulk;   /* cbm_alloc_bulk of this many instead */
	int rc;	       /* cbm_alloc_bulk's */
	void *bufs[CAP];
	void *result;
	atomic_bool returned;
};

static void *
call_main(void *arg)
{
	struct call *c = arg;

	if (c->cpu < CPU_SETSIZE)
		pin_to(c->cpu);
	my_site = c->site;
	my_next_site = c->next_site;
	if (c->bulk > 0)
		c->rc = cbm_alloc_bulk(c->pool, c->bufs, c->bulk);
	else
		c->result = c->internal ? cbm_global_alloc_one(&c->pool->global)
					: cbm_alloc(c->pool);
	my_site = NO_SITE;
	atomic_store(&c->returned, true);
	return NULL;
}

static void
start(struct call *c, cbm_pool *pool, unsigned cpu, int site)
{
	c->pool = pool;
	c->cpu = cpu;
	c->site = site;
	atomic_store(&c->returned, false);
	assert_int_equal(pthread_create(&c->thread, NULL, call_main, c), 0);
}

static void *
finish(struct call *c)
{
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	return c->result;
}

/* The application holds held[0 .. CAP - MAG - 1]; the other MAG buffers
 * are one full magazine on the depot, and nothing else is free. */
static void
one_magazine_free(cbm_pool *pool, void **held)
{
	void *b[CAP];
	cbm_stats st;

	take_all(pool, b);
	for (int i = CAP - MAG; i < CAP; i++)
		cbm_free(pool, b[i]);
	assert_int_equal(cbm_pool_trim(pool), MAG);
	memcpy(held, b, (CAP - MAG) * sizeof(void *));
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_int_equal(cbm_depot_full_count(&pool->global.depot), 1);
	assert_int_equal(st.free, MAG);
	assert_int_equal(st.in_use, CAP - MAG);
}

static void
give_back_all(cbm_pool *pool, void **held, size_t n)
{
	cbm_free_bulk(pool, held, n);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
	cbm_site_hook_set(NULL);
}

/* ---- the windows ------------------------------------------------------- */

/*
 * Window 1, a lost steal race: two dry allocations see the same cache full
 * and both go to drain it. One wins and moves its buffers to the depot; the
 * other, held just before it takes the cache, then finds it empty. It must
 * look at the global tier again, where the winner left them, not give up.
 */
static void
a_drain_that_lost_its_race_looks_again(void **state)
{
	unsigned cpu0 = allowed_cpu(0), cpu1 = allowed_cpu(1);
	struct call loser = {.next_site = NO_SITE};
	struct call winner = {.next_site = NO_SITE};
	cbm_pool *pool;
	void *b[CAP];

	(void)state;
	if (cpu1 == CPU_SETSIZE)
		skip();
	pool = window_pool(CBM_IDLE_TRIM_OFF);
	hold_reset();
	/* Every buffer in cpu1's cache. */
	pin_to(cpu1);
	take_all(pool, b);
	for (int i = 0; i < CAP; i++)
		cbm_free(pool, b[i]);
	assert_int_equal(cbm_cache_count(cbm_cache_at(
				 &pool->caches,
				 (unsigned)cpu1 * pool->caches.caches_per_cpu)),
			 CAP);
	pin_to(cpu0);
	start(&loser, pool, cpu0, CBM_SITE_DRAIN_BEFORE_TAKE);
	assert_true(wait_paused());
	start(&winner, pool, cpu0, NO_SITE);
	b[0] = finish(&winner);
	let_go();
	assert_non_null(b[0]);
	b[1] = finish(&loser);
	assert_non_null(b[1]);
	give_back_all(pool, b, 2);
}

/*
 * Window 2, a magazine in transit: cbm_global_alloc_one has taken the only
 * full magazine from the depot and not yet spilled it. An allocation that
 * runs through meanwhile sees an empty pool, but MAG buffers are free: it
 * must wait for them to land, not return NULL.
 */
static void
a_magazine_in_transit_is_waited_for(void **state)
{
	cbm_pool *pool = window_pool(CBM_IDLE_TRIM_OFF);
	struct call carrier = {.internal = true, .next_site = NO_SITE};
	struct call other = {.next_site = NO_SITE};
	void *b[CAP], *carried;
	bool waited;

	(void)state;
	one_magazine_free(pool, b);
	hold_reset();
	start(&carrier, pool, CPU_SETSIZE, CBM_SITE_MAG_IN_HAND);
	assert_true(wait_paused());
	start(&other, pool, CPU_SETSIZE, NO_SITE);
	/* It has had every chance to give up; it must still be waiting. */
	usleep(100 * 1000);
	waited = !atomic_load(&other.returned);
	let_go();
	carried = finish(&carrier);
	assert_non_null(carried);
	assert_non_null(b[CAP - MAG] = finish(&other));
	assert_true(waited);
	/* Taken below the counters: given back the same way. */
	cbm_global_free_one(&pool->global,
			    (uint32_t)(((char *)carried - pool->base) /
				       pool->blocks.stride));
	give_back_all(pool, b, CAP - MAG + 1);
}

/*
 * Window 3, a refill not yet published: a thread has copied a magazine
 * into its CPU's cache, which it holds, and the cache's word still reads
 * count 0. An allocation on another CPU finds the global tier empty and
 * every cache's count 0; it must wait for the refill to land.
 */
static void
a_refill_in_transit_is_waited_for(void **state)
{
	unsigned cpu0 = allowed_cpu(0), cpu1 = allowed_cpu(1);
	struct call refiller = {.next_site = NO_SITE};
	struct call other = {.next_site = NO_SITE};
	cbm_pool *pool;
	void *b[CAP];
	bool waited;

	(void)state;
	if (cpu1 == CPU_SETSIZE)
		skip();
	pool = window_pool(CBM_IDLE_TRIM_OFF);
	one_magazine_free(pool, b);
	hold_reset();
	start(&refiller, pool, cpu0, CBM_SITE_REFILL_UNCOMMITTED);
	assert_true(wait_paused());
	start(&other, pool, cpu1, NO_SITE);
	usleep(100 * 1000);
	waited = !atomic_load(&other.returned);
	let_go();
	assert_non_null(b[CAP - MAG] = finish(&refiller));
	assert_non_null(b[CAP - MAG + 1] = finish(&other));
	assert_true(waited);
	give_back_all(pool, b, CAP - MAG + 2);
}

/*
 * A fork child has no copy of the threads whose moves were in flight: their
 * buffers are simply gone from its pool (held, to the child), and nothing
 * there may wait for those moves to end.
 */
static void
a_fork_child_waits_for_no_move_of_a_thread_it_lacks(void **state)
{
	cbm_pool *pool = window_pool(CBM_IDLE_TRIM_OFF);
	struct call carrier = {.internal = true, .next_site = NO_SITE};
	void *b[CAP], *carried;
	int status = -1;
	pid_t child;

	(void)state;
	one_magazine_free(pool, b);
	hold_reset();
	start(&carrier, pool, CPU_SETSIZE, CBM_SITE_MAG_IN_HAND);
	assert_true(wait_paused());
	child = fork();
	if (child == 0) {
		cbm_stats st;

		alarm(10); /* a wait for the lost move would never end */
		if (cbm_alloc(pool) != NULL)
			_exit(1);
		/* The carried buffers count as free to the counters, and
		 * are in no tier: the snapshot must still come back. */
		if (cbm_pool_stats(pool, &st) != 0 || st.in_use != CAP - MAG)
			_exit(2);
		_exit(0);
	}
	waitpid(child, &status, 0);
	let_go();
	carried = finish(&carrier);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	b[CAP - MAG] = carried;
	cbm_global_free_one(&pool->global,
			    (uint32_t)(((char *)carried - pool->base) /
				       pool->blocks.stride));
	give_back_all(pool, b, CAP - MAG);
}

/*
 * A bulk allocation that cannot be served from its cache holds what it
 * found while it looks for the rest, and gives it back if it fails. Held
 * there with MAG of the MAG + 1 it asked for, it must not make a single
 * allocation see the pool dry: the single one waits, and gets a buffer
 * once the bulk one has failed and given back (dry.c, D3).
 */
static void
a_failing_bulk_allocation_does_not_starve_a_single_one(void **state)
{
	struct call bulk = {.bulk = MAG + 1, .next_site = NO_SITE};
	struct call one = {.next_site = NO_SITE};
	cbm_pool *pool = window_pool(CBM_IDLE_TRIM_OFF);
	void *b[CAP];
	bool waited;

	(void)state;
	one_magazine_free(pool, b);
	hold_reset();
	start(&bulk, pool, allowed_cpu(0), CBM_SITE_BULK_GATHERING);
	assert_true(wait_paused());
	start(&one, pool, allowed_cpu(1), NO_SITE);
	usleep(100 * 1000);
	waited = !atomic_load(&one.returned);
	let_go();
	finish(&bulk);
	b[CAP - MAG] = finish(&one);
	assert_true(waited);
	assert_int_equal(bulk.rc, -ENOMEM);
	assert_non_null(b[CAP - MAG]);
	give_back_all(pool, b, CAP - MAG + 1);
}

/*
 * Two bulk allocations, each holding part of what it asked for, each
 * finding the other's part missing: neither may wait for the other (D4),
 * and they must not both fail when one of them alone would succeed. Here
 * each CPU's cache holds 2, and each asks for 3. The first looks while the
 * second holds its 2 and is held on its way to give back; then the second
 * looks while the first holds. Exactly one must get its 3.
 */
static void
two_gathering_bulk_allocations_do_not_both_fail(void **state)
{
	unsigned cpu0 = allowed_cpu(0), cpu1 = allowed_cpu(1);
	struct call first = {.bulk = 3, .next_site = CBM_SITE_BULK_GIVING_BACK};
	struct call second = {.bulk = 3, .next_site = NO_SITE};
	cbm_pool *pool;
	void *b[CAP];

	(void)state;
	if (cpu1 == CPU_SETSIZE)
		skip();
	pool = window_pool(CBM_IDLE_TRIM_OFF);
	take_all(pool, b);
	pin_to(cpu0);
	cbm_free_bulk(pool, b, 2);
	pin_to(cpu1);
	cbm_free_bulk(pool, b + 2, 2);
	hold_reset();
	start(&first, pool, cpu0, CBM_SITE_BULK_GATHERING);
	assert_true(wait_stops(1));
	start(&second, pool, cpu1, CBM_SITE_BULK_GATHERING);
	assert_true(wait_stops(2));
	let_go(); /* the first looks, the second holding its 2 */
	assert_true(wait_stops(3));
	let_go(); /* the second looks, the first holding its 2 */
	usleep(100 * 1000);
	let_go(); /* the first gives back */
	finish(&first);
	finish(&second);
	assert_true((first.rc == 0) != (second.rc == 0));
	assert_true(first.rc == 0 || first.rc == -ENOMEM);
	assert_true(second.rc == 0 || second.rc == -ENOMEM);
	cbm_free_bulk(pool, first.rc == 0 ? first.bufs : second.bufs, 3);
	give_back_all(pool, b + 4, CAP - 4);
}

/* ---- stats ------------------------------------------------------------- */

/* A thread that takes one snapshot (or one audit), stopping once at site
 * on the way (NO_SITE: nowhere). */
struct stats_call {
	cbm_pool *pool;
	int site;
	cbm_stats st;
	int verified; /* cbm_pool_verify's answer */
};

static void *
stats_main(void *arg)
{
	struct stats_call *s = arg;

	my_site = s->site;
	assert_int_equal(cbm_pool_stats(s->pool, &s->st), 0);
	my_site = NO_SITE;
	return NULL;
}

static void *
verify_main(void *arg)
{
	struct stats_call *s = arg;

	my_site = s->site;
	s->verified = cbm_pool_verify(s->pool);
	my_site = NO_SITE;
	return NULL;
}

/*
 * The reclamation thread drains an idle cache while the application makes
 * no call: held after the buffers reached the depot and before the cache's
 * word is released, it has them in both places. A snapshot taken then must
 * wait and count them once.
 */
static void
stats_are_exact_while_an_idle_drain_is_half_done(void **state)
{
	cbm_pool *pool = window_pool(10);
	struct stats_call s = {.pool = pool, .site = NO_SITE};
	pthread_t t;
	void *b[CAP];

	(void)state;
	hold_reset();
	take_all(pool, b);
	/* Arm before the buffers are cached: the drain comes 10 ms later. */
	atomic_store(&hold.any_site, CBM_SITE_DRAIN_UNRELEASED);
	cbm_free_bulk(pool, b, MAG);
	assert_true(wait_paused());
	assert_int_equal(pthread_create(&t, NULL, stats_main, &s), 0);
	/* Longer than any deadline would be: the thread's moves are waited
	 * out whatever keeps it off the CPU (transit.h, T4). */
	usleep(300 * 1000);
	let_go();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_exact(&s.st, CAP - MAG);
	give_back_all(pool, b + MAG, CAP - MAG);
}

/*
 * A snapshot that waited out one move of the reclamation thread, and whose
 * next reading a second move overlaps (a reclaimed batch on the freelist
 * and still counted in flight: in both places): it must wait that one out
 * too, not give its reading up as approximate because the first wait used
 * up its tries (transit.h, T4-T5; the tries are for the application's
 * moves). No application call runs while it reads.
 */
static void
a_snapshot_waits_out_every_reclaimer_move(void **state)
{
	cbm_pool *pool = window_pool(CBM_IDLE_TRIM_OFF);
	struct stats_call s = {.pool = pool, .site = CBM_SITE_STATS_READING};
	pthread_t t;
	void *b[CAP];

	(void)state;
	hold_reset();
	take_all(pool, b);
	atomic_store(&hold.any_site, CBM_SITE_RECLAIM_SPLICED);
	for (int i = 0; i < MAG; i++)
		cbm_retire(pool, b[i]);
	assert_true(wait_stops(1)); /* 1: the reclaimer, in its first move */
	assert_int_equal(pthread_create(&t, NULL, stats_main, &s), 0);
	usleep(50 * 1000); /* the snapshot waits, many times round */
	atomic_store(&hold.any_site, CBM_SITE_RECLAIM_SPLICED);
	let_go();
	assert_true(wait_stops(2)); /* 2: the snapshot, about to read */
	for (int i = MAG; i < CAP; i++)
		cbm_retire(pool, b[i]);
	assert_true(wait_stops(3)); /* 3: the reclaimer, in its next move */
	let_go();		    /* the snapshot reads across it */
	usleep(50 * 1000);
	let_go();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_exact(&s.st, 0);
	give_back_all(pool, NULL, 0);
}

/*
 * An audit while the reclamation thread idle-trims (no application call
 * running, as cbm_pool_verify asks): held just before it waits for that
 * thread, while the trim drains a cache into a magazine minted for it,
 * it must still find every buffer. It sized its view of the depot before
 * it waited, once: then it saw magazine 0 as a bad link and its buffers
 * as nowhere (CI, stress sizes under TSan).
 */
static void
an_audit_sees_magazines_minted_while_it_waits(void **state)
{
	cbm_pool *pool = window_pool(10);
	struct stats_call s = {.pool = pool,
			       .site = CBM_SITE_VERIFY_QUIESCING,
			       .verified = -1};
	cbm_stats st;
	pthread_t t;
	void *b[CAP];

	(void)state;
	hold_reset();
	take_all(pool, b);
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	assert_int_equal(st.idle_drains, 0);
	assert_int_equal(pthread_create(&t, NULL, verify_main, &s), 0);
	assert_true(wait_stops(1)); /* the audit, about to wait */
	/* Into this CPU's cache; 10 ms later the trim drains it into the
	 * depot, in a magazine it mints. */
	cbm_free_bulk(pool, b, MAG);
	for (int i = 0; i < 500 && st.idle_drains == 0; i++) {
		usleep(2000);
		assert_int_equal(cbm_pool_stats(pool, &st), 0);
	}
	assert_true(st.idle_drains > 0);
	let_go();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s.verified, 0);
	give_back_all(pool, b + MAG, CAP - MAG);
}

#endif /* CBM_FAULT_INJECTION */

/*
 * Random stress on top: snapshots in a tight loop, with no application call
 * running, while the reclamation thread reclaims retired batches and
 * idle-trims caches under them. Every snapshot must add up.
 */
static void
stats_are_exact_under_retires_and_idle_trims(void **state)
{
	cbm_pool *pool = window_pool(10);
	struct timespec start, now;
	unsigned long snapshots = 0;
	void *b[CAP];

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		/* Last round's retired buffers back first (an application
		 * call; the snapshots below run with none). */
		cbm_barrier(pool);
		take_all(pool, b);
		for (int i = 0; i < CAP; i += 2) {
			cbm_retire(pool, b[i]);
			cbm_free(pool, b[i + 1]);
		}
		for (int k = 0; k < 20000; k++, snapshots++) {
			cbm_stats st;

			assert_int_equal(cbm_pool_stats(pool, &st), 0);
			assert_exact(&st, 0);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < 1);
	print_message("%lu snapshots, all exact\n", snapshots);
	cbm_barrier(pool);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

int
main(void)
{
	/* Tests pin threads: each ends where it began. */
#define T(f) cmocka_unit_test_teardown(f, restore_affinity)
	const struct CMUnitTest tests[] = {
#ifdef CBM_FAULT_INJECTION
		T(a_drain_that_lost_its_race_looks_again),
		T(a_magazine_in_transit_is_waited_for),
		T(a_refill_in_transit_is_waited_for),
		T(a_fork_child_waits_for_no_move_of_a_thread_it_lacks),
		T(a_failing_bulk_allocation_does_not_starve_a_single_one),
		T(two_gathering_bulk_allocations_do_not_both_fail),
		T(stats_are_exact_while_an_idle_drain_is_half_done),
		T(a_snapshot_waits_out_every_reclaimer_move),
		T(an_audit_sees_magazines_minted_while_it_waits),
#endif
		T(stats_are_exact_under_retires_and_idle_trims),
	};

	keep_affinity();
	if (getenv("CBM_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CBM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
