/* SPDX-License-Identifier: MIT */
/*
 * A program outside the project, built against an installed cbm through
 * pkg-config (installed.sh) and against cbm as a Meson subproject
 * (subproject.sh). It uses only what cbm.h documents, and checks that what
 * it gets back adds up.
 */
#include <cbm.h>

#include <stdio.h>
#include <string.h>

#define CAPACITY 64

#ifdef CBM_INLINE_ACTIVE
static const char calls[] = "inline";
#else
static const char calls[] = "exported";
#endif

static int
fail(const char *what)
{
	fprintf(stderr, "consumer: %s\n", what);
	return 1;
}

int
main(void)
{
	cbm_pool_config cfg = {
		.block_size = 1000, .capacity = CAPACITY, .name = "consumer"};
	void *bufs[CAPACITY];
	cbm_pool *pool;
	cbm_stats st;
	struct iovec region;

	if (strcmp(cbm_version(), "0.0.0") <= 0)
		return fail("cbm_version says nothing");
	if (cbm_pool_create(&cfg, &pool) != 0)
		return fail("cbm_pool_create failed");
	if (cbm_alloc_bulk(pool, bufs, CAPACITY) != 0)
		return fail("could not take every buffer");
	if (cbm_alloc(pool) != NULL)
		return fail("an empty pool handed out a buffer");
	for (size_t i = 0; i < CAPACITY; i++)
		memset(bufs[i], (int)i, cbm_block_size(pool));
	/* One region (cbm.h's struct iovec) holds every buffer. */
	if (cbm_pool_regions(pool, &region, 1) != 1)
		return fail("a small pool is not one region");
	for (size_t i = 0; i < CAPACITY; i++)
		if ((char *)bufs[i] < (char *)region.iov_base ||
		    (char *)bufs[i] + cbm_block_size(pool) >
			    (char *)region.iov_base + region.iov_len ||
		    cbm_region_index(pool, (char *)bufs[i] + 7) != 0)
			return fail("a buffer outside its region");
	cbm_free_bulk(pool, bufs, CAPACITY / 2);
	/* One at a time: the calls an inline build (CBM_INLINE) runs in
	 * place. */
	for (int i = 0; i < 1000; i++) {
		void *b = cbm_alloc(pool);

		if (b == NULL)
			return fail("a pool with free buffers handed out none");
		memset(b, i, cbm_block_size(pool));
		cbm_free(pool, b);
	}
	for (size_t i = CAPACITY / 2; i < CAPACITY; i++) {
		cbm_read_lock();
		cbm_read_unlock();
		cbm_retire(pool, bufs[i]);
	}
	cbm_barrier(pool);
	if (cbm_pool_stats(pool, &st) != 0)
		return fail("cbm_pool_stats failed");
	if (st.in_use != 0 || st.retired != 0 ||
	    st.free + st.cached != CAPACITY || st.reclaimed != CAPACITY / 2 ||
	    st.retires != CAPACITY / 2 ||
	    st.allocs != st.frees + st.retires + st.in_use)
		return fail("the pool does not add up");
	if (cbm_pool_verify(pool) != 0)
		return fail("cbm_pool_verify failed");
#if defined(CBM_INLINE) && defined(__x86_64__) && !defined(CBM_INLINE_ACTIVE)
	return fail("CBM_INLINE was asked for and is not in effect");
#endif
	printf("consumer: cbm %s, %s pool of %zu x %zu bytes, %s calls: ok\n",
	       cbm_version(), cbm_pool_name(pool), cbm_capacity(pool),
	       cbm_block_size(pool), calls);
	cbm_pool_destroy(pool);
	return 0;
}
