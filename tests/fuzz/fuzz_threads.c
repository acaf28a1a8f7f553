/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness 2: several threads share a pool and free each other's
 * buffers.
 *
 * The bytes choose a pool (size, magazine, debug or not), a thread count
 * (2 to 4) and each thread's program: alloc, free, bulk alloc and free,
 * retire, trim, stats, and hand-offs through a shared mailbox of slots
 * (a thread puts a buffer it holds in a slot, or takes what another left
 * there, and frees it later). Checks:
 *   - nothing is handed out twice: each buffer's first word is its
 *     holder's mark, set by compare-and-swap from 0 when a thread gets it
 *     and cleared before it goes back (the pool never writes into a
 *     buffer, docs/design.md "Isolation"), so a second holder finds the
 *     mark of the first;
 *   - no allocation fails: the capacity is above what all threads and the
 *     mailbox can hold at once plus every retire, so the application
 *     never holds every buffer and cbm.h says it never sees NULL, whatever
 *     other threads' caches hold;
 *   - afterwards, with everything given back and a barrier: stats exact
 *     (nothing in use, allocs = frees + retires) and verify passes.
 * The schedule is not under the fuzzer's control, so an input is a family
 * of runs; the properties hold for every member.
 */
#include <cbm.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"

#define MAX_THREADS 4
#define MAX_HOLD 24    /* buffers one thread holds at most */
#define SLOTS 8	       /* the mailbox */
#define MAX_RETIRES 32 /* per input, so they fit the capacity */
#define MAX_OPS 200    /* per thread */
#define BULK 8

struct shared {
	cbm_pool *pool;
	_Atomic(void *) slots[SLOTS];
	atomic_uint retires_left;
	atomic_uint reports;
};

struct worker {
	struct shared *sh;
	uint64_t mark;
	const uint8_t *prog;
	size_t len;
	void *held[MAX_HOLD];
	size_t nheld;
	pthread_t thread;
};

static void
record(void *arg, const cbm_pool *pool, int err, const void *ptr,
       const char *what)
{
	struct shared *sh = arg;

	(void)pool;
	(void)err;
	(void)ptr;
	fprintf(stderr, "fuzz_threads: report: %s\n", what);
	atomic_fetch_add(&sh->reports, 1);
}

static _Atomic uint64_t *
mark_of(void *buf)
{
	return (_Atomic uint64_t *)buf;
}

/* buf just came to w: from the pool, or from the mailbox (then marked by
 * its last holder, who let go of it there). */
static void
claim(struct worker *w, void *buf, uint64_t from)
{
	uint64_t expected = from;

	FUZZ_CHECK(((uintptr_t)buf & 7) == 0, "%p not aligned", buf);
	if (!atomic_compare_exchange_strong(mark_of(buf), &expected, w->mark))
		FUZZ_FAIL("%p handed to thread %llu while thread %llu holds "
			  "it",
			  buf, (unsigned long long)w->mark,
			  (unsigned long long)expected);
	w->held[w->nheld++] = buf;
}

/* Held buffer i leaves w for the pool. */
static void *
release(struct worker *w, size_t i)
{
	void *buf = w->held[i];
	uint64_t expected = w->mark;

	w->held[i] = w->held[--w->nheld];
	if (!atomic_compare_exchange_strong(mark_of(buf), &expected, 0))
		FUZZ_FAIL("%p held by thread %llu carries mark %llu", buf,
			  (unsigned long long)w->mark,
			  (unsigned long long)expected);
	return buf;
}

static void
step(struct worker *w, uint8_t op, uint8_t arg)
{
	struct shared *sh = w->sh;
	void *bufs[BULK], *buf;
	size_t n;
	cbm_stats st;

	switch (op % 10) {
	case 0:
	case 1:
		if (w->nheld == MAX_HOLD)
			break;
		errno = 0;
		buf = cbm_alloc(sh->pool);
		FUZZ_CHECK(buf != NULL,
			   "alloc: NULL (errno %d) while the application "
			   "cannot hold every buffer",
			   errno);
		claim(w, buf, 0);
		break;
	case 2:
	case 3:
		if (w->nheld > 0)
			cbm_free(sh->pool, release(w, arg % w->nheld));
		break;
	case 4:
		n = arg % (BULK + 1);
		if (w->nheld + n > MAX_HOLD)
			break;
		FUZZ_CHECK(cbm_alloc_bulk(sh->pool, bufs, n) == 0,
			   "alloc_bulk(%zu) failed while the application "
			   "cannot hold every buffer",
			   n);
		for (size_t i = 0; i < n; i++)
			claim(w, bufs[i], 0);
		break;
	case 5:
		n = w->nheld < BULK ? w->nheld : BULK;
		n = n ? arg % (n + 1) : 0;
		for (size_t i = 0; i < n; i++)
			bufs[i] = release(w, 0);
		cbm_free_bulk(sh->pool, bufs, n);
		break;
	case 6: /* put one in the mailbox; take what was there */
		if (w->nheld == 0)
			break;
		n = arg % w->nheld;
		buf = w->held[n];
		w->held[n] = w->held[--w->nheld];
		/* It keeps w's mark: the taker swaps it for its own. */
		buf = atomic_exchange(&sh->slots[arg % SLOTS], buf);
		if (buf != NULL)
			claim(w, buf, atomic_load(mark_of(buf)));
		break;
	case 7: /* take from the mailbox */
		if (w->nheld == MAX_HOLD)
			break;
		buf = atomic_exchange(&sh->slots[arg % SLOTS], NULL);
		if (buf != NULL)
			claim(w, buf, atomic_load(mark_of(buf)));
		break;
	case 8:
		if (w->nheld == 0)
			break;
		{
			unsigned left = atomic_load(&sh->retires_left);

			while (left > 0 &&
			       !atomic_compare_exchange_weak(&sh->retires_left,
							     &left, left - 1))
				;
			if (left == 0)
				break;
		}
		cbm_retire(sh->pool, release(w, arg % w->nheld));
		break;
	default:
		if (arg & 1) {
			FUZZ_CHECK(cbm_pool_trim(sh->pool) >= 0, "trim failed");
		} else {
			FUZZ_CHECK(cbm_pool_stats(sh->pool, &st) == 0,
				   "stats failed");
			FUZZ_CHECK(st.in_use <= st.capacity &&
					   st.free <= st.capacity &&
					   st.cached <= st.capacity,
				   "stats out of range");
		}
		break;
	}
}

static void *
run(void *arg)
{
	struct worker *w = arg;

	for (size_t i = 0; i + 1 < w->len; i += 2)
		step(w, w->prog[i], w->prog[i + 1]);
	while (w->nheld > 0)
		cbm_free(w->sh->pool, release(w, 0));
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shared sh;
	static struct worker workers[MAX_THREADS];
	struct fuzz_bytes b = {data, size};
	cbm_pool_config cfg;
	unsigned nthreads;
	size_t per, sum;
	cbm_stats st;

	memset(&sh, 0, sizeof(sh));
	memset(&cfg, 0, sizeof(cfg));
	nthreads = 2 + fuzz_u8(&b) % (MAX_THREADS - 1);
	cfg.block_size = 8 + fuzz_u8(&b) % 256;
	cfg.align = (size_t)8 << (fuzz_u8(&b) % 4);
	cfg.magazine_size = fuzz_u8(&b) % 12;
	cfg.flags = (fuzz_u8(&b) & 1) ? CBM_POOL_DEBUG : 0;
	cfg.name = "fuzz-threads";
	/* Above all that can be out at once: so no allocation may fail. */
	cfg.capacity = nthreads * MAX_HOLD + SLOTS + MAX_RETIRES + 1 +
		       fuzz_u8(&b) % 64;
	atomic_store(&sh.retires_left, MAX_RETIRES);
	cbm_set_error_handler(record, &sh);
	FUZZ_CHECK(cbm_pool_create(&cfg, &sh.pool) == 0, "create failed");

	per = b.n / nthreads;
	if (per > 2 * MAX_OPS)
		per = 2 * MAX_OPS;
	for (unsigned t = 0; t < nthreads; t++) {
		struct worker *w = &workers[t];

		memset(w, 0, sizeof(*w));
		w->sh = &sh;
		w->mark = t + 1;
		w->prog = b.p + t * per;
		w->len = per;
		FUZZ_CHECK(pthread_create(&w->thread, NULL, run, w) == 0,
			   "pthread_create");
	}
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(workers[t].thread, NULL);
	/* What the mailbox still holds: the last holder's mark is on it. */
	for (unsigned s = 0; s < SLOTS; s++) {
		void *buf = atomic_exchange(&sh.slots[s], NULL);

		if (buf != NULL) {
			atomic_store(mark_of(buf), 0);
			cbm_free(sh.pool, buf);
		}
	}
	cbm_barrier(sh.pool);
	FUZZ_CHECK(cbm_pool_stats(sh.pool, &st) == 0, "stats failed");
	sum = st.free + st.cached + st.retired + st.in_use;
	FUZZ_CHECK(st.in_use == 0 && st.retired == 0 && sum == st.capacity,
		   "after: in_use %zu, retired %zu, free %zu + cached %zu of "
		   "%zu",
		   st.in_use, st.retired, st.free, st.cached, st.capacity);
	FUZZ_CHECK(st.allocs == st.frees + st.retires && st.alloc_failures == 0,
		   "after: allocs %llu, frees %llu, retires %llu, failures "
		   "%llu",
		   (unsigned long long)st.allocs, (unsigned long long)st.frees,
		   (unsigned long long)st.retires,
		   (unsigned long long)st.alloc_failures);
	FUZZ_CHECK(cbm_pool_verify(sh.pool) == 0, "verify failed");
	FUZZ_CHECK(atomic_load(&sh.reports) == 0, "%u misuse reports",
		   atomic_load(&sh.reports));
	cbm_pool_destroy(sh.pool);
	FUZZ_CHECK(atomic_load(&sh.reports) == 0, "destroy reported");
	cbm_set_error_handler(NULL, NULL);
	return 0;
}
