/* SPDX-License-Identifier: MIT */
/* Unit tests for the tagged-index stacks (src/freelist.c). */
#include "helpers.h"

#include <stdlib.h>

#include "istack.h"

#define N 64

static cbm_atomic_u32 links[N];

static void
push_pop_is_lifo(void **state)
{
	struct cbm_istack s;

	(void)state;
	cbm_istack_init(&s);
	assert_int_equal(cbm_istack_pop(&s, links), CBM_NIL);
	for (uint32_t i = 0; i < 10; i++)
		cbm_istack_push(&s, links, i);
	assert_int_equal(cbm_istack_count(&s), 10);
	for (uint32_t i = 10; i-- > 0;)
		assert_int_equal(cbm_istack_pop(&s, links), i);
	assert_int_equal(cbm_istack_pop(&s, links), CBM_NIL);
	assert_int_equal(cbm_istack_count(&s), 0);
}

static void
chains_move_whole(void **state)
{
	struct cbm_istack s;
	uint32_t n, idx;

	(void)state;
	cbm_istack_init(&s);
	/* 0 -> 1 -> ... -> 19, pushed as one chain */
	for (uint32_t i = 0; i < 19; i++)
		cbm_store_relaxed_u32(&links[i], i + 1);
	cbm_istack_push_chain(&s, links, 0, 19, 20);
	cbm_istack_push(&s, links, 30);
	assert_int_equal(cbm_istack_count(&s), 21);

	idx = cbm_istack_pop_chain(&s, links, 5, &n);
	assert_int_equal(n, 5);
	assert_int_equal(idx, 30);
	for (uint32_t i = 0; i < 4; i++) {
		idx = cbm_load_relaxed_u32(&links[idx]);
		assert_int_equal(idx, i);
	}
	/* Asking for more than there is takes the rest. */
	idx = cbm_istack_pop_chain(&s, links, 100, &n);
	assert_int_equal(n, 16);
	assert_int_equal(idx, 4);
	assert_int_equal(cbm_istack_pop_chain(&s, links, 3, &n), CBM_NIL);
	assert_int_equal(n, 0);
	assert_int_equal(cbm_istack_count(&s), 0);
}

static void
the_tag_changes_on_every_operation(void **state)
{
	struct cbm_istack s;
	uint64_t h0, h1, h2;

	(void)state;
	cbm_istack_init(&s);
	cbm_istack_push(&s, links, 7);
	h0 = cbm_load_relaxed_u64(&s.head);
	assert_int_equal(cbm_istack_pop(&s, links), 7);
	h1 = cbm_load_relaxed_u64(&s.head);
	cbm_istack_push(&s, links, 7);
	h2 = cbm_load_relaxed_u64(&s.head);
	/* Same top index, different head word: the ABA case a pop that read
	 * h0 must not mistake for "nothing happened". */
	assert_int_equal((uint32_t)h0, (uint32_t)h2);
	assert_int_not_equal(h0, h2);
	assert_int_not_equal(h0, h1);
}

static void
ilist_counts_and_takes_all(void **state)
{
	struct cbm_ilist l;
	uint32_t n, idx;

	(void)state;
	cbm_ilist_init(&l);
	assert_int_equal(cbm_ilist_take_all(&l, &n), CBM_NIL);
	assert_int_equal(n, 0);
	for (uint32_t i = 0; i < 5; i++)
		cbm_ilist_push(&l, links, i);
	assert_int_equal(cbm_ilist_count(&l), 5);
	idx = cbm_ilist_take_all(&l, &n);
	assert_int_equal(n, 5);
	for (uint32_t i = 5; i-- > 0;) {
		assert_int_equal(idx, i);
		idx = cbm_load_relaxed_u32(&links[idx]);
	}
	assert_int_equal(idx, CBM_NIL);
	assert_int_equal(cbm_ilist_count(&l), 0);
}

/* Many threads pop and push the same few indices: each index is owned by
 * at most one thread at a time, and at the end all are back, once each. */
struct shared {
	struct cbm_istack s;
	cbm_atomic_u32 owner[N];
};

struct worker {
	struct shared *sh;
	uint32_t id;
	unsigned seed;
	unsigned long violations;
};

static void *
churn(void *arg)
{
	struct worker *w = arg;
	uint32_t held[8];
	unsigned nheld = 0;

	for (int op = 0; op < 200000; op++) {
		if (nheld < 8 && (nheld == 0 || rand_r(&w->seed) % 2)) {
			uint32_t n, idx;

			idx = cbm_istack_pop_chain(
				&w->sh->s, links, 1 + rand_r(&w->seed) % 3, &n);
			for (uint32_t i = 0; i < n; i++) {
				uint32_t next =
					cbm_load_relaxed_u32(&links[idx]);

				if (atomic_exchange(&w->sh->owner[idx], w->id))
					w->violations++;
				if (nheld < 8)
					held[nheld++] = idx;
				else {
					atomic_store(&w->sh->owner[idx], 0);
					cbm_istack_push(&w->sh->s, links, idx);
				}
				idx = next;
			}
		} else if (nheld > 0) {
			uint32_t idx = held[--nheld];

			if (atomic_exchange(&w->sh->owner[idx], 0) != w->id)
				w->violations++;
			cbm_istack_push(&w->sh->s, links, idx);
		}
	}
	while (nheld > 0) {
		uint32_t idx = held[--nheld];

		atomic_store(&w->sh->owner[idx], 0);
		cbm_istack_push(&w->sh->s, links, idx);
	}
	return NULL;
}

static void
concurrent_pops_never_share(void **state)
{
	static struct shared sh;
	struct worker w[8];
	uint8_t seen[N] = {0};
	uint32_t idx, n;

	(void)state;
	cbm_istack_init(&sh.s);
	for (uint32_t i = 0; i < N; i++) {
		atomic_store(&sh.owner[i], 0);
		cbm_istack_push(&sh.s, links, i);
	}
	for (uint32_t i = 0; i < 8; i++)
		w[i] = (struct worker){.sh = &sh, .id = i + 1, .seed = i};
	run_threads(8, churn, w, sizeof(w[0]));
	for (int i = 0; i < 8; i++)
		assert_int_equal(w[i].violations, 0);
	assert_int_equal(cbm_istack_count(&sh.s), N);
	idx = cbm_istack_pop_chain(&sh.s, links, N + 1, &n);
	assert_int_equal(n, N);
	for (uint32_t i = 0; i < n; i++) {
		assert_true(idx < N);
		assert_int_equal(seen[idx]++, 0);
		idx = cbm_load_relaxed_u32(&links[idx]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(push_pop_is_lifo),
		cmocka_unit_test(chains_move_whole),
		cmocka_unit_test(the_tag_changes_on_every_operation),
		cmocka_unit_test(ilist_counts_and_takes_all),
		cmocka_unit_test(concurrent_pops_never_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
