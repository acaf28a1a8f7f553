/*
 * Scenario prodcons: producers allocate buffers (singly and in bulk), stamp
 * them and hand them through a shared queue to consumers, which check the
 * stamp and free them: every buffer is freed on another thread than the one
 * that allocated it, and, when the machine has two CPUs or more, on another
 * CPU (producers and consumers are pinned apart). A debug pool, so that the
 * library's own double-free and handed-out-twice checks are armed too.
 *
 * Planted fault it catches: no-tag (--magazine 1).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "stress.h"

#define IN_QUEUE 0xffffffffu /* the queue's holder id */
#define BATCH 16

struct queue {
	pthread_mutex_t lock;
	void **slot;
	size_t size, head, count;
};

struct prodcons {
	cbm_pool *pool;
	struct tracker t;
	struct queue q;
};

static void
pin(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static size_t
enqueue(struct queue *q, void *const *b, size_t n)
{
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	for (; k < n && q->count < q->size; k++, q->count++)
		q->slot[(q->head + q->count) % q->size] = b[k];
	pthread_mutex_unlock(&q->lock);
	return k;
}

static size_t
dequeue(struct queue *q, void **b, size_t n)
{
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	for (; k < n && q->count > 0; k++, q->count--) {
		b[k] = q->slot[q->head];
		q->head = (q->head + 1) % q->size;
	}
	pthread_mutex_unlock(&q->lock);
	return k;
}

static void
producer(struct run *run, struct prodcons *pc, unsigned index, struct rng *r)
{
	uint32_t holder = index + 1;
	uint64_t serial = 0;
	void *b[BATCH];

	while (!atomic_load(&run->stop)) {
		size_t n = 1 + rng_below(r, BATCH), sent = 0;

		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (rng_below(r, 2) && cbm_alloc_bulk(pc->pool, b, n) == 0) {
			/* got all n */
		} else {
			for (n = 0; n < BATCH / 2; n++)
				if ((b[n] = cbm_alloc(pc->pool)) == NULL)
					break;
		}
		if (n == 0) {
			atomic_fetch_add(&run->empty, 1);
			sched_yield();
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			tracker_claim(run, &pc->t, b[i], holder, ++serial);
			tracker_pass(run, &pc->t, b[i], holder, IN_QUEUE);
		}
		while (sent < n) {
			sent += enqueue(&pc->q, b + sent, n - sent);
			if (sent < n)
				sched_yield();
		}
	}
}

static void
consumer(struct run *run, struct prodcons *pc, unsigned index, struct rng *r)
{
	uint32_t holder = index + 1;
	void *b[BATCH];

	for (;;) {
		size_t n = dequeue(&pc->q, b, 1 + rng_below(r, BATCH));

		if (n == 0) {
			/* Producers stop first; drain what they left. */
			if (atomic_load(&run->stop))
				return;
			sched_yield();
			continue;
		}
		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		for (size_t i = 0; i < n; i++) {
			tracker_pass(run, &pc->t, b[i], IN_QUEUE, holder);
			tracker_release(run, &pc->t, b[i], holder);
		}
		if (rng_below(r, 2))
			cbm_free_bulk(pc->pool, b, n);
		else
			for (size_t i = 0; i < n; i++)
				cbm_free(pc->pool, b[i]);
	}
}

static void
prodcons_worker(struct run *run, unsigned index, void *arg)
{
	struct prodcons *pc = arg;
	bool produces = index % 2 == 0;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	if (run->cpus >= 2)
		pin(produces ? 0 : 1);
	if (produces)
		producer(run, pc, index, &r);
	else
		consumer(run, pc, index, &r);
}

void
scenario_prodcons(struct run *run)
{
	cbm_pool_config cfg =
		pool_config(run, 64 * run->opt.threads, 0, 256, CBM_POOL_DEBUG);
	static struct prodcons pc;

	if (cbm_pool_create(&cfg, &pc.pool) != 0)
		abort();
	tracker_init(&pc.t, pc.pool);
	pthread_mutex_init(&pc.q.lock, NULL);
	pc.q.size = cbm_capacity(pc.pool);
	pc.q.slot = calloc(pc.q.size, sizeof(void *));
	run_threads(run, run->opt.threads, prodcons_worker, &pc);
	/* Consumers may leave before a producer's last batch lands (the queue
	 * holds the whole pool, so producers never wait on consumers). */
	for (void *b[BATCH];;) {
		size_t n = dequeue(&pc.q, b, BATCH);

		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			tracker_pass(run, &pc.t, b[i], IN_QUEUE, 1);
			tracker_release(run, &pc.t, b[i], 1);
		}
		cbm_free_bulk(pc.pool, b, n);
	}
	print_pool("pool", pc.pool);
	check_capacity(run, pc.pool, 0);
	check_conserved(run, pc.pool, 0);
	tracker_fini(&pc.t);
	free(pc.q.slot);
	cbm_pool_destroy(pc.pool);
}
