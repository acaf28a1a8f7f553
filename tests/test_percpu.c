/*
 * Unit tests for the per-CPU magazine layer (src/percpu.c), on a real pool
 * whose internals the test reads. The test thread pins itself to one CPU so
 * that it knows which cache it uses.
 */
#include "helpers.h"

#include <sched.h>
#include <unistd.h>

#include "global.h"
#include "pool.h"

#define MAG 4

static unsigned
pin_to(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_int_equal(sched_setaffinity(0, sizeof(set), &set), 0);
	return cpu;
}

static unsigned
allowed_cpu(int nth)
{
	cpu_set_t set;
	int seen = 0;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && seen++ == nth)
			return c;
	return CPU_SETSIZE;
}

static cbm_pool *
small_pool(size_t capacity)
{
	cbm_pool_config cfg = {.block_size = 64,
			       .capacity = capacity,
			       .magazine_size = MAG,
			       .name = "percpu"};
	cbm_pool *pool;

	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	return pool;
}

static uint64_t
sum(const cbm_pool *pool, size_t field)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < pool->ncaches; i++)
		n += atomic_load(
			(cbm_atomic_u64 *)((char *)&pool->cpus[i] + field));
	return n;
}

#define SUM(pool, f) sum(pool, offsetof(struct cbm_cpu_cache, f))

static void
one_trip_below_per_magazine(void **state)
{
	cbm_pool *pool = small_pool(64);
	struct cbm_cpu_cache *c =
		&pool->cpus[pin_to(allowed_cpu(0)) * CBM_CACHES_PER_CPU];
	void *b[3 * MAG];

	(void)state;
	/* The first alloc fills the loaded magazine from the freelist. */
	b[0] = cbm_alloc(pool);
	assert_int_equal(SUM(pool, global_pops), 1);
	assert_int_equal(cbm_cache_count(c), MAG - 1);
	for (int i = 1; i < MAG; i++)
		b[i] = cbm_alloc(pool);
	assert_int_equal(SUM(pool, global_pops), 1);
	/* The next one refills again: one trip per MAG allocations. */
	for (int i = MAG; i < 3 * MAG; i++)
		b[i] = cbm_alloc(pool);
	assert_int_equal(SUM(pool, global_pops), 3);

	/* Frees fill the loaded magazine, then the previous one, then trade
	 * a full one for an empty one from the depot. */
	for (int i = 0; i < 2 * MAG; i++)
		cbm_free(pool, b[i]);
	assert_int_equal(cbm_cache_count(c), 2 * MAG);
	assert_int_equal(SUM(pool, depot_exchanges), 0);
	cbm_free(pool, b[2 * MAG]);
	assert_int_equal(SUM(pool, depot_exchanges), 1);
	assert_int_equal(cbm_depot_full_count(&pool->depot), 1);
	for (int i = 2 * MAG + 1; i < 3 * MAG; i++)
		cbm_free(pool, b[i]);
	assert_conserved(pool);

	/* Allocating it all back: alternating does not thrash. */
	for (int i = 0; i < 1000; i++)
		cbm_free(pool, cbm_alloc(pool));
	assert_int_equal(SUM(pool, depot_exchanges), 1);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
empty_caches_trade_with_the_depot(void **state)
{
	cbm_pool *pool = small_pool(64);
	struct cbm_cpu_cache *c =
		&pool->cpus[pin_to(allowed_cpu(0)) * CBM_CACHES_PER_CPU];
	struct cbm_mag *full;

	(void)state;
	/* Put one full magazine on the depot by hand. */
	full = cbm_depot_take_empty(&pool->depot);
	assert_int_equal(cbm_global_fill(pool, full), MAG);
	cbm_depot_give_full(&pool->depot, full);

	assert_true(cbm_cache_trylock(c));
	assert_true(cbm_cache_refill_locked(pool, c));
	assert_ptr_equal(cbm_cache_loaded(c), full);
	assert_int_equal(atomic_load(&c->depot_exchanges), 1);
	cbm_cache_unlock(c);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
drain_moves_everything_global(void **state)
{
	cbm_pool *pool = small_pool(64);
	struct cbm_cpu_cache *c =
		&pool->cpus[pin_to(allowed_cpu(0)) * CBM_CACHES_PER_CPU];
	void *b[MAG + 2];
	cbm_stats st;

	(void)state;
	for (int i = 0; i < MAG + 2; i++)
		b[i] = cbm_alloc(pool);
	for (int i = 0; i < MAG + 2; i++)
		cbm_free(pool, b[i]);
	assert_true(cbm_cache_count(c) > 0);
	assert_int_equal(cbm_pool_trim(pool), (int)(2 * MAG));
	assert_int_equal(cbm_cache_count(c), 0);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.free, 64);
	assert_int_equal(st.cached, 0);
	assert_int_equal(st.trims, 2 * MAG);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
busy_cache_uses_the_spare_then_goes_global(void **state)
{
	cbm_pool *pool = small_pool(64);
	struct cbm_cpu_cache *own =
		&pool->cpus[pin_to(allowed_cpu(0)) * CBM_CACHES_PER_CPU];
	struct cbm_cpu_cache *spare = own + 1;
	cbm_stats st;
	void *buf;

	(void)state;
	/* Hold the CPU's own cache, as a thread preempted inside would. */
	assert_true(cbm_cache_trylock(own));
	buf = cbm_alloc(pool);
	assert_non_null(buf);
	assert_int_equal(atomic_load(&spare->allocs), 1);
	cbm_free(pool, buf);
	assert_int_equal(atomic_load(&spare->frees), 1);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.busy_fallbacks, 0);
	/* Both held: straight to the global tier, and still no waiting. */
	assert_true(cbm_cache_trylock(spare));
	buf = cbm_alloc(pool);
	assert_non_null(buf);
	cbm_free(pool, buf);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.busy_fallbacks, 2);
	assert_int_equal(st.in_use, 0);
	cbm_cache_unlock(spare);
	cbm_cache_unlock(own);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
other_cpus_caches_are_stolen_when_dry(void **state)
{
	unsigned cpu0 = allowed_cpu(0), cpu1 = allowed_cpu(1);
	cbm_pool *pool;
	void *b[64];
	cbm_stats st;

	(void)state;
	if (cpu1 == CPU_SETSIZE)
		skip();
	pool = small_pool(64);
	/* Leave 2 * MAG buffers cached on cpu0. */
	pin_to(cpu0);
	for (int i = 0; i < 2 * MAG; i++)
		b[i] = cbm_alloc(pool);
	for (int i = 0; i < 2 * MAG; i++)
		cbm_free(pool, b[i]);
	assert_int_equal(
		cbm_cache_count(&pool->cpus[cpu0 * CBM_CACHES_PER_CPU]),
		2 * MAG);
	/* From cpu1, every buffer can still be had. */
	pin_to(cpu1);
	for (int i = 0; i < 64; i++)
		assert_non_null(b[i] = cbm_alloc(pool));
	assert_null(cbm_alloc(pool));
	cbm_pool_stats(pool, &st);
	assert_true(st.steals >= 1);
	assert_int_equal(st.alloc_failures, 1);
	for (int i = 0; i < 64; i++)
		cbm_free(pool, b[i]);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
a_cache_is_one_line(void **state)
{
	cbm_pool *pool = small_pool(16);

	(void)state;
	assert_int_equal(sizeof(struct cbm_cpu_cache), 64);
	assert_int_equal((uintptr_t)&pool->cpus[1] % 64, 0);
	assert_int_equal(pool->ncaches % CBM_CACHES_PER_CPU, 0);
	cbm_pool_destroy(pool);
}

static cpu_set_t original_affinity;

static int
restore_affinity(void **state)
{
	(void)state;
	return sched_setaffinity(0, sizeof(original_affinity),
				 &original_affinity);
}

int
main(void)
{
	sched_getaffinity(0, sizeof(original_affinity), &original_affinity);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(one_trip_below_per_magazine,
					  restore_affinity),
		cmocka_unit_test_teardown(empty_caches_trade_with_the_depot,
					  restore_affinity),
		cmocka_unit_test_teardown(drain_moves_everything_global,
					  restore_affinity),
		cmocka_unit_test_teardown(
			busy_cache_uses_the_spare_then_goes_global,
			restore_affinity),
		cmocka_unit_test_teardown(other_cpus_caches_are_stolen_when_dry,
					  restore_affinity),
		cmocka_unit_test(a_cache_is_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
