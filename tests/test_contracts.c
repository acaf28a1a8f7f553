/* SPDX-License-Identifier: MIT */
/*
 * The contract assertions (src/contract.h) fire on the violations they are
 * about. Each case breaks one contract on purpose in a child process and
 * expects it to abort with that assertion's message. Builds without
 * assertions (release) skip them.
 */
#include "helpers.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contract.h"
#include "depot.h"
#include "global.h"
#include "istack.h"
#include "pool.h"
#include "report.h"
#include "transit.h"

#ifdef CBM_ASSERTS

/* Run breach(pool) in a child; it must die of SIGABRT, having printed an
 * assertion failure that names what. */
static void
expect_assertion(void (*breach)(cbm_pool *pool), const char *what)
{
	char out[512] = {0};
	int fds[2], status;
	pid_t child;

	assert_int_equal(pipe(fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		cbm_pool_config cfg = {.block_size = 64,
				       .capacity = 16,
				       .magazine_size = 4,
				       .name = "contract"};
		cbm_pool *pool;

		dup2(fds[1], 2);
		if (cbm_pool_create(&cfg, &pool) != 0)
			_exit(2);
		breach(pool);
		_exit(0); /* not reached when the assertion fires */
	}
	close(fds[1]);
	for (size_t got = 0; got < sizeof(out) - 1;) {
		ssize_t n = read(fds[0], out + got, sizeof(out) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	print_message("%s", out);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(out, "cbm: assertion failed"));
	assert_non_null(strstr(out, what));
}

/* percpu.h: a held-cache function on a cache nobody holds. */
static void
pop_from_an_unheld_cache(cbm_pool *pool)
{
	struct cbm_held h = {.c = cbm_cache_at(&pool->caches, 0)};

	cbm_held_pop(&pool->caches, &h);
}

static void
held_cache_calls_need_a_held_cache(void **state)
{
	(void)state;
	expect_assertion(pop_from_an_unheld_cache, "held_by_someone");
}

/* P4 and the witness: a report with a cache held. */
static void
report_with_a_cache_held(cbm_pool *pool)
{
	struct cbm_held h;

	if (!cbm_caches_hold_current(&pool->caches, &h))
		_exit(3);
	cbm_report(pool, CBM_ERR_BAD_ARG, NULL, "planted");
}

static void
no_report_while_a_cache_is_held(void **state)
{
	(void)state;
	expect_assertion(report_with_a_cache_held, "cbm_witness_caches == 0");
}

/* P4: the registry lock (a barrier) with a cache held. */
static void
barrier_with_a_cache_held(cbm_pool *pool)
{
	struct cbm_held h;

	if (!cbm_caches_hold_current(&pool->caches, &h))
		_exit(3);
	cbm_barrier(pool);
}

static void
no_registry_lock_while_a_cache_is_held(void **state)
{
	(void)state;
	expect_assertion(barrier_with_a_cache_held, "cbm_witness_caches == 0");
}

/* P4: waiting for another cache with one held. */
static void
take_a_second_cache(cbm_pool *pool)
{
	cbm_cache_take(&pool->caches, 0);
	cbm_cache_take(&pool->caches, 1);
}

static void
no_wait_for_a_cache_while_one_is_held(void **state)
{
	(void)state;
	expect_assertion(take_a_second_cache, "cbm_witness_caches == 0");
}

/* P4: holding the current cache with another one held. */
static void
allocate_with_a_cache_taken(cbm_pool *pool)
{
	cbm_cache_take(&pool->caches, 0);
	(void)cbm_alloc(pool);
}

static void
no_cache_is_held_twice_by_a_slow_path(void **state)
{
	(void)state;
	expect_assertion(allocate_with_a_cache_taken,
			 "cbm_witness_caches == 0");
}

/* percpu.h: a cache index names a cache. */
static void
take_a_cache_past_the_last(cbm_pool *pool)
{
	cbm_cache_take(&pool->caches, pool->caches.ncaches);
}

static void
cache_indices_name_caches(void **state)
{
	(void)state;
	expect_assertion(take_a_cache_past_the_last, "i < caches->ncaches");
}

/* depot.h: a magazine given as empty must be empty. */
static void
give_a_full_magazine_as_empty(cbm_pool *pool)
{
	struct cbm_mag *m = cbm_depot_take_empty(&pool->global.depot);

	cbm_mag_set_count(m, 1);
	cbm_depot_give_empty(&pool->global.depot, m);
}

static void
empty_magazines_are_empty(void **state)
{
	(void)state;
	expect_assertion(give_a_full_magazine_as_empty,
			 "cbm_mag_count(m) == 0");
}

/* global.h: runs are at most a magazine. */
static void
take_a_run_longer_than_a_magazine(cbm_pool *pool)
{
	void *slots[8];
	enum cbm_run_kind kind;

	cbm_global_take_run(&pool->global, slots, 5, &kind);
}

static void
put_an_empty_run(cbm_pool *pool)
{
	cbm_global_put_run(&pool->global, NULL, 0);
}

static void
runs_are_one_to_a_magazine(void **state)
{
	(void)state;
	expect_assertion(take_a_run_longer_than_a_magazine,
			 "max > 0 && max <= g->mag_size");
	expect_assertion(put_an_empty_run, "n > 0 && n <= g->mag_size");
}

/* depot.h: a magazine given as full must be full. */
static void
give_an_empty_magazine_as_full(cbm_pool *pool)
{
	struct cbm_mag *m = cbm_depot_take_empty(&pool->global.depot);

	cbm_depot_give_full(&pool->global.depot, m);
}

static void
full_magazines_are_full(void **state)
{
	(void)state;
	expect_assertion(give_an_empty_magazine_as_full,
			 "cbm_mag_count(m) == d->mag_size");
}

/* global.h: indices below capacity. */
static void
free_an_index_past_capacity(cbm_pool *pool)
{
	cbm_global_free_one(&pool->global, 16);
}

static void
indices_are_below_capacity(void **state)
{
	(void)state;
	expect_assertion(free_an_index_past_capacity, "idx < existing(g)");
}

/* The expensive tier: every slot of a spilled run is a buffer. */
static void
spill_a_run_with_a_stranger(cbm_pool *pool)
{
	static char stranger[64];
	void *run[2] = {cbm_block_ptr(pool, 0), stranger};

	cbm_global_put_run(&pool->global, run, 2);
}

static void
spilled_runs_hold_only_buffers(void **state)
{
	(void)state;
	expect_assertion(spill_a_run_with_a_stranger, "idx < existing(g)");
}

/* transit.h, T1: a move ends only after it began. */
static void
end_a_move_never_begun(cbm_pool *pool)
{
	cbm_transit_end(&pool->global.transit, true);
}

static void
moves_end_only_after_they_begin(void **state)
{
	(void)state;
	expect_assertion(end_a_move_never_begun, ">= cbm_mover");
}

/* istack.c, I3: chains have ends. */
static void
push_a_chain_of_nil(cbm_pool *pool)
{
	cbm_istack_push_chain(&pool->global.freelist, pool->links, CBM_NIL,
			      CBM_NIL, 1);
}

static void
pushed_chains_name_entries(void **state)
{
	(void)state;
	expect_assertion(push_a_chain_of_nil, "first != CBM_NIL");
}

#endif /* CBM_ASSERTS */

int
main(void)
{
#ifdef CBM_ASSERTS
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(held_cache_calls_need_a_held_cache),
		cmocka_unit_test(no_report_while_a_cache_is_held),
		cmocka_unit_test(no_registry_lock_while_a_cache_is_held),
		cmocka_unit_test(no_wait_for_a_cache_while_one_is_held),
		cmocka_unit_test(no_cache_is_held_twice_by_a_slow_path),
		cmocka_unit_test(cache_indices_name_caches),
		cmocka_unit_test(full_magazines_are_full),
		cmocka_unit_test(empty_magazines_are_empty),
		cmocka_unit_test(runs_are_one_to_a_magazine),
		cmocka_unit_test(indices_are_below_capacity),
		cmocka_unit_test(spilled_runs_hold_only_buffers),
		cmocka_unit_test(moves_end_only_after_they_begin),
		cmocka_unit_test(pushed_chains_name_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
#else
	/* A release build: nothing to fire. 77 is meson's SKIP. */
	return 77;
#endif
}
