/* SPDX-License-Identifier: MIT */
/*
 * Fault injection at every allocation and thread-start site of
 * cbm_pool_create (plant.h, CBM_FAIL_HERE): each failing in turn returns
 * the documented error (-ENOMEM, or -EAGAIN for the reclamation thread),
 * frees everything it took, leaves nothing poisoned (under ASan the next
 * pool's every byte is written), and the next create succeeds. What it
 * took: the process's mappings are counted here (every reservation is one);
 * heap blocks are LeakSanitizer's to find in the ASan build, which runs
 * this test too (glibc's own count, mallinfo2, counts blocks its thread
 * cache keeps after a free as in use, so it cannot tell a leak).
 */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "plant.h"

#ifdef CBM_FAULT_INJECTION

/* Lines of /proc/self/maps: one per mapping. */
static unsigned
mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned n = 0;
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int
create(const cbm_pool_config *cfg, cbm_pool **pool)
{
	*pool = NULL;
	return cbm_pool_create(cfg, pool);
}

/* A pool of cfg's shape, used in full: every byte of every buffer
 * written (ASan reports a byte left poisoned), then destroyed. */
static void
use_and_destroy(const cbm_pool_config *cfg, cbm_pool *pool)
{
	size_t n = cfg->max_capacity ? cfg->max_capacity : cfg->capacity;
	void **b = calloc(n, sizeof(*b));

	assert_int_equal(cbm_alloc_bulk(pool, b, n), 0);
	for (size_t i = 0; i < n; i++)
		memset(b[i], 0xee, cbm_block_size(pool));
	cbm_free_bulk(pool, b, n);
	assert_int_equal(cbm_pool_verify(pool), 0);
	cbm_pool_destroy(pool);
	free(b);
}

static void
every_site_fails_cleanly(const cbm_pool_config *cfg, const char *shape)
{
	unsigned long before, sites;
	cbm_pool *pool;

	/* Once whole, so that what a first create does once (the fork
	 * handlers, the thread's stack in glibc's cache) is behind us, and
	 * the first read of the maps (stdio keeps a buffer of its own). */
	(void)mappings();
	assert_int_equal(create(cfg, &pool), 0);
	use_and_destroy(cfg, pool);
	before = cbm_fail_sites();
	assert_int_equal(create(cfg, &pool), 0);
	sites = cbm_fail_sites() - before;
	cbm_pool_destroy(pool);
	print_message("%s: %lu sites\n", shape, sites);
	assert_true(sites >= 4);
	for (unsigned long k = 1; k <= sites; k++) {
		unsigned maps = 0;
		const char *site = "";
		int rc = 0;

		/* The same site fails five times: from the third on, what a
		 * failure leaves would add up. (The first two may meet a lazy
		 * mapping of the C library's, once.) */
		for (int round = 0; round < 5; round++) {
			cbm_fail_countdown(k);
			rc = create(cfg, &pool);
			cbm_fail_countdown(0);
			assert_null(pool);
			site = cbm_fail_last();
			if (strcmp(site, "the reclamation thread") == 0)
				assert_int_equal(rc, -EAGAIN);
			else
				assert_int_equal(rc, -ENOMEM);
			if (round == 2)
				maps = mappings();
			else if (round > 2)
				assert_int_equal(mappings(), maps);
		}
		print_message("| %s | %lu | %s | %s | nothing left |\n", shape,
			      k, site, rc == -EAGAIN ? "-EAGAIN" : "-ENOMEM");
		/* And the next one is whole. */
		assert_int_equal(create(cfg, &pool), 0);
		use_and_destroy(cfg, pool);
	}
}

static void
a_fixed_pool(void **state)
{
	cbm_pool_config cfg = {.block_size = 256, .capacity = 1000};

	(void)state;
	every_site_fails_cleanly(&cfg, "fixed");
}

static void
an_elastic_debug_pool(void **state)
{
	cbm_pool_config cfg = {
		.block_size = 100,
		.max_capacity = 3000,
		.flags = CBM_POOL_DEBUG,
	};

	(void)state;
	every_site_fails_cleanly(&cfg, "elastic debug");
}

/* Region callbacks (cbm.h): a create that fails leaves no region mapped
 * (on_map may come again for a region that grows; on_unmap ends it). */
static atomic_int mapped[8];

static void
on_map(void *arg, void *addr, size_t len, unsigned index)
{
	(void)arg, (void)addr, (void)len;
	atomic_store(&mapped[index % 8], 1);
}

static void
on_unmap(void *arg, void *addr, size_t len, unsigned index)
{
	(void)arg, (void)addr, (void)len;
	atomic_store(&mapped[index % 8], 0);
}

static void
an_elastic_pool_with_region_callbacks(void **state)
{
	cbm_pool_config cfg = {
		.block_size = 4096,
		.capacity = 16,
		.max_capacity = 64,
		.on_map = on_map,
		.on_unmap = on_unmap,
	};

	(void)state;
	every_site_fails_cleanly(&cfg, "elastic, region callbacks");
	for (int i = 0; i < 8; i++)
		assert_int_equal(atomic_load(&mapped[i]), 0);
}

#endif /* CBM_FAULT_INJECTION */

int
main(void)
{
#ifdef CBM_FAULT_INJECTION
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_fixed_pool),
		cmocka_unit_test(an_elastic_debug_pool),
		cmocka_unit_test(an_elastic_pool_with_region_callbacks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
#else
	/* Only a fault-injection build has the sites. 77 is meson's SKIP. */
	return 77;
#endif
}
