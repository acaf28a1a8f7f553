/* SPDX-License-Identifier: MIT */
/* Unit tests for the depot of magazines (src/depot.c). */
#include "helpers.h"

#include "depot.h"

static void
starts_with_every_magazine_empty(void **state)
{
	struct cbm_depot d;
	struct cbm_mag *m;
	unsigned n = 0;

	(void)state;
	assert_int_equal(cbm_depot_init(&d, 7, 16), 0);
	assert_null(cbm_depot_take_full(&d));
	assert_int_equal(cbm_depot_full_count(&d), 0);
	while ((m = cbm_depot_take_empty(&d)) != NULL) {
		assert_int_equal(cbm_mag_count(m), 0);
		assert_ptr_equal(cbm_depot_mag(&d, m->id), m);
		n++;
	}
	assert_int_equal(n, 7);
	cbm_depot_fini(&d);
}

static void
full_and_empty_are_separate(void **state)
{
	struct cbm_depot d;
	struct cbm_mag *a, *b;

	(void)state;
	assert_int_equal(cbm_depot_init(&d, 3, 4), 0);
	a = cbm_depot_take_empty(&d);
	cbm_mag_set_count(a, 4);
	cbm_depot_give_full(&d, a);
	assert_int_equal(cbm_depot_full_count(&d), 1);
	b = cbm_depot_take_full(&d);
	assert_ptr_equal(a, b);
	assert_null(cbm_depot_take_full(&d));
	cbm_mag_set_count(b, 0);
	cbm_depot_give_empty(&d, b);
	assert_int_equal(cbm_depot_full_count(&d), 0);
	cbm_depot_fini(&d);
}

static void
magazines_do_not_share_lines(void **state)
{
	struct cbm_depot d;

	(void)state;
	assert_int_equal(cbm_depot_init(&d, 4, 1), 0);
	assert_int_equal(d.mag_bytes % 64, 0);
	assert_int_equal((uintptr_t)cbm_depot_mag(&d, 1) % 64, 0);
	cbm_depot_fini(&d);
}

/* Threads trade magazines between the stacks; each magazine is held by one
 * thread at a time and all come back. */
struct trader {
	struct cbm_depot *d;
	atomic_int *holder;
	int id;
	long violations;
};

static void *
trade(void *arg)
{
	struct trader *t = arg;

	for (int i = 0; i < 100000; i++) {
		struct cbm_mag *m = (i & 1) ? cbm_depot_take_full(t->d)
					    : cbm_depot_take_empty(t->d);
		if (m == NULL)
			continue;
		if (atomic_exchange(&t->holder[m->id], t->id) != 0)
			t->violations++;
		atomic_store(&t->holder[m->id], 0);
		/* Fill or empty it, and give it to the other stack. */
		if (cbm_mag_count(m) == 0) {
			cbm_mag_set_count(m, t->d->mag_size);
			cbm_depot_give_full(t->d, m);
		} else {
			cbm_mag_set_count(m, 0);
			cbm_depot_give_empty(t->d, m);
		}
	}
	return NULL;
}

static void
concurrent_trades_keep_every_magazine(void **state)
{
	struct cbm_depot d;
	atomic_int holder[16] = {0};
	struct trader t[6];
	unsigned n = 0;

	(void)state;
	assert_int_equal(cbm_depot_init(&d, 16, 8), 0);
	for (int i = 0; i < 6; i++)
		t[i] = (struct trader){.d = &d, .holder = holder, .id = i + 1};
	run_threads(6, trade, t, sizeof(t[0]));
	for (int i = 0; i < 6; i++)
		assert_int_equal(t[i].violations, 0);
	while (cbm_depot_take_full(&d) != NULL)
		n++;
	while (cbm_depot_take_empty(&d) != NULL)
		n++;
	assert_int_equal(n, 16);
	cbm_depot_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(starts_with_every_magazine_empty),
		cmocka_unit_test(full_and_empty_are_separate),
		cmocka_unit_test(magazines_do_not_share_lines),
		cmocka_unit_test(concurrent_trades_keep_every_magazine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
