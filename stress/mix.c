/* SPDX-License-Identifier: MIT */
/*
 * Scenario mix: every thread allocates, frees, and moves buffers in bulk at
 * random, holding up to HOLD_MAX; every held buffer is claimed and stamped
 * (exclusivity). At intervals all threads park outside the library and the
 * main thread writes over every free buffer, the way a buggy application
 * writes after free: since the pool keeps nothing inside free buffers, the
 * run must go on unharmed (isolation). It ends with conservation and
 * capacity checks.
 *
 * Planted faults it catches: no-tag (with --magazine 1, so that most
 * operations reach the freelist), links-in-buffers (with --block 4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stress.h"

#define HOLD_MAX 32

struct mix {
	cbm_pool *pool;
	struct tracker t;
	pthread_barrier_t parked, resume;
	atomic_bool pause, done;
};

static void
mix_worker(struct run *run, unsigned index, void *arg)
{
	struct mix *m = arg;
	uint32_t holder = index + 1;
	void *held[HOLD_MAX];
	unsigned n = 0;
	uint64_t serial = 0;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	while (!atomic_load(&m->done)) {
		unsigned op = rng_below(&r, 100);

		if (atomic_load(&m->pause)) {
			pthread_barrier_wait(&m->parked);
			pthread_barrier_wait(&m->resume);
			continue;
		}
		if (atomic_load(&run->stop)) {
			sleep_us(100);
			continue;
		}
		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (op < 40 && n < HOLD_MAX) {
			void *b = cbm_alloc(m->pool);

			if (b == NULL) {
				atomic_fetch_add(&run->empty, 1);
				continue;
			}
			tracker_claim(run, &m->t, b, holder, ++serial);
			held[n++] = b;
		} else if (op < 50 && n < HOLD_MAX) {
			unsigned k = 1 + rng_below(&r, HOLD_MAX - n);

			if (cbm_alloc_bulk(m->pool, &held[n], k) != 0) {
				atomic_fetch_add(&run->empty, 1);
				continue;
			}
			for (unsigned i = 0; i < k; i++)
				tracker_claim(run, &m->t, held[n + i], holder,
					      ++serial);
			n += k;
		} else if (op < 60 && n > 0) {
			unsigned k = 1 + rng_below(&r, n);

			n -= k;
			for (unsigned i = 0; i < k; i++)
				tracker_release(run, &m->t, held[n + i],
						holder);
			cbm_free_bulk(m->pool, &held[n], k);
		} else if (op < 97 && n > 0) {
			unsigned i = rng_below(&r, n);
			void *b = held[i];

			held[i] = held[--n];
			tracker_release(run, &m->t, b, holder);
			cbm_free(m->pool, b);
		} else if (op >= 97) {
			sched_yield();
		}
	}
	while (n > 0) {
		tracker_release(run, &m->t, held[--n], holder);
		cbm_free(m->pool, held[n]);
	}
}

/* With every thread parked, write over every buffer nobody holds. The
 * first word names a held buffer, so that a pool that kept its links in
 * there would hand that buffer out twice. */
static void
scribble_free_buffers(struct run *run, struct mix *m)
{
	uint32_t some_held = 0;

	for (uint32_t i = 0; i < m->t.capacity; i++)
		if (atomic_load(&m->t.owner[i]) != 0)
			some_held = i;
	for (uint32_t i = 0; i < m->t.capacity; i++) {
		char *b = m->t.base + (size_t)i * m->t.stride;

		if (atomic_load(&m->t.owner[i]) != 0)
			continue;
		/* In ASan builds the pool poisons its free buffers; lift that
		 * for the scribble and put it back by the pool's own rule
		 * (debug.h), which leaves granules shared with a neighbour
		 * alone. */
		cbm_san_leave_pool(&m->t.pool->blocks, b);
		memset(b, 0xa5, m->t.block);
		memcpy(b, &some_held, sizeof(some_held));
		cbm_san_enter_pool(&m->t.pool->blocks, b);
	}
	check(run, INV_ISOLATION, true, "scribble");
}

static void *
mix_thread(void *p)
{
	void **a = p;

	mix_worker(a[0], (unsigned)(uintptr_t)a[1], a[2]);
	return NULL;
}

void
scenario_mix(struct run *run)
{
	cbm_pool_config cfg = pool_config(run, 16 * run->opt.threads, 4, 64, 0);
	unsigned nt = run->opt.threads;
	pthread_t *t = calloc(nt, sizeof(*t));
	void *(*args)[3] = calloc(nt, sizeof(*args));
	unsigned ms = (unsigned)(run->opt.seconds * 1000);
	static struct mix m;

	if (cbm_pool_create(&cfg, &m.pool) != 0)
		abort();
	tracker_init(&m.t, m.pool);
	pthread_barrier_init(&m.parked, NULL, nt + 1);
	pthread_barrier_init(&m.resume, NULL, nt + 1);
	for (unsigned i = 0; i < nt; i++) {
		args[i][0] = run;
		args[i][1] = (void *)(uintptr_t)i;
		args[i][2] = &m;
		pthread_create(&t[i], NULL, mix_thread, args[i]);
	}
	for (unsigned elapsed = 0; elapsed < ms && !atomic_load(&run->stop);
	     elapsed += 100) {
		sleep_us(100000);
		atomic_store(&m.pause, true);
		pthread_barrier_wait(&m.parked);
		atomic_store(&m.pause, false);
		scribble_free_buffers(run, &m);
		pthread_barrier_wait(&m.resume);
	}
	atomic_store(&m.done, true);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	print_pool("pool", m.pool);
	check_capacity(run, m.pool, 0);
	check_conserved(run, m.pool, 0);
	tracker_fini(&m.t);
	cbm_pool_destroy(m.pool);
	free(t);
	free(args);
}
