/* SPDX-License-Identifier: MIT */
/*
 * Scenarios prodcons and dry: producers allocate buffers (singly and in
 * bulk), stamp them and hand them through a shared queue to consumers,
 * which check the stamp and free them: every buffer is freed on another
 * thread than the one that allocated it, and, when the machine has two CPUs
 * or more, on another CPU (producers are pinned to one, consumers to
 * another), so buffers flow from one CPU's cache through the global tier
 * into the other's all the time.
 *
 * The application keeps its own count of what it holds (struct budget) and
 * never reserves more than capacity - 2, so at every instant at least two
 * buffers are free: every NULL and every -ENOMEM breaks capacity.
 *
 *  prodcons  as many producers as consumers, a debug pool (so that the
 *            library's own double-free and handed-out-twice checks are
 *            armed too), 64 buffers per thread.
 *  dry       the shape that found the pool's dry-path windows: three
 *            producers per consumer, 64 buffers, magazines of 4, so the
 *            producers' CPU runs dry all the time and its allocations
 *            drain the consumers' cache while buffers are in transit.
 *
 * Planted faults they catch: no-tag --magazine 1 (prodcons: exclusivity),
 * no-stable-view (dry: capacity).
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
	struct budget budget;
	unsigned producers_per_consumer;
	size_t batch;
};

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

/* Take n buffers, in bulk or one by one; each failure is a violation. */
static size_t
produce(struct run *run, struct prodcons *pc, struct rng *r, void **b, size_t n)
{
	size_t got = 0;

	if (rng_below(r, 2)) {
		bool ok = cbm_alloc_bulk(pc->pool, b, n) == 0;

		check(run, INV_CAPACITY, ok,
		      "cbm_alloc_bulk of %zu failed with at least %zu more "
		      "buffers free",
		      n, cbm_capacity(pc->pool) - pc->budget.limit);
		return ok ? n : 0;
	}
	for (; got < n; got++) {
		b[got] = cbm_alloc(pc->pool);
		check(run, INV_CAPACITY, b[got] != NULL,
		      "cbm_alloc returned NULL with at least %zu buffers free",
		      cbm_capacity(pc->pool) - pc->budget.limit);
		if (b[got] == NULL)
			break;
	}
	return got;
}

static void
producer(struct run *run, struct prodcons *pc, unsigned index, struct rng *r)
{
	uint32_t holder = index + 1;
	uint64_t serial = 0;
	void *b[BATCH];

	while (!atomic_load(&run->stop)) {
		size_t n = 1 + rng_below(r, (unsigned)pc->batch), got, sent = 0;

		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (!budget_try(&pc->budget, n)) {
			/* The application is at its own limit. */
			atomic_fetch_add(&run->empty, 1);
			sched_yield();
			continue;
		}
		got = produce(run, pc, r, b, n);
		budget_give(&pc->budget, n - got);
		for (size_t i = 0; i < got; i++) {
			tracker_claim(run, &pc->t, b[i], holder, ++serial);
			tracker_pass(run, &pc->t, b[i], holder, IN_QUEUE);
		}
		while (sent < got) {
			sent += enqueue(&pc->q, b + sent, got - sent);
			if (sent < got)
				sched_yield();
		}
	}
}

static void
consume(struct run *run, struct prodcons *pc, struct rng *r, void **b, size_t n,
	uint32_t holder)
{
	for (size_t i = 0; i < n; i++) {
		tracker_pass(run, &pc->t, b[i], IN_QUEUE, holder);
		tracker_release(run, &pc->t, b[i], holder);
	}
	if (r == NULL || rng_below(r, 2))
		cbm_free_bulk(pc->pool, b, n);
	else
		for (size_t i = 0; i < n; i++)
			cbm_free(pc->pool, b[i]);
	budget_give(&pc->budget, n);
}

static void
consumer(struct run *run, struct prodcons *pc, unsigned index, struct rng *r)
{
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
		consume(run, pc, r, b, n, index + 1);
	}
}

static void
prodcons_worker(struct run *run, unsigned index, void *arg)
{
	struct prodcons *pc = arg;
	bool produces = index % (pc->producers_per_consumer + 1) != 0;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	if (run->cpus >= 2)
		pin_to_cpu(produces ? 0 : 1);
	if (produces)
		producer(run, pc, index, &r);
	else
		consumer(run, pc, index, &r);
}

static void
run_prodcons(struct run *run, const cbm_pool_config *cfg,
	     unsigned producers_per_consumer, size_t batch)
{
	static struct prodcons pc;

	if (cbm_pool_create(cfg, &pc.pool) != 0)
		abort();
	tracker_init(&pc.t, pc.pool);
	pthread_mutex_init(&pc.q.lock, NULL);
	pc.q.size = cbm_capacity(pc.pool);
	pc.q.slot = calloc(pc.q.size, sizeof(void *));
	pc.producers_per_consumer = producers_per_consumer;
	pc.batch = batch;
	atomic_store(&pc.budget.word, 0);
	pc.budget.limit = pc.q.size - 2;
	run_threads(run, run->opt.threads, prodcons_worker, &pc);
	/* Consumers may leave before a producer's last batch lands (the queue
	 * holds the whole pool, so producers never wait on consumers). */
	for (void *b[BATCH];;) {
		size_t n = dequeue(&pc.q, b, BATCH);

		if (n == 0)
			break;
		consume(run, &pc, NULL, b, n, 1);
	}
	print_pool("pool", pc.pool);
	check_capacity(run, pc.pool, 0);
	check_conserved(run, pc.pool, 0);
	tracker_fini(&pc.t);
	free(pc.q.slot);
	cbm_pool_destroy(pc.pool);
}

void
scenario_prodcons(struct run *run)
{
	cbm_pool_config cfg =
		pool_config(run, 64 * run->opt.threads, 0, 256, CBM_POOL_DEBUG);

	run_prodcons(run, &cfg, 1, BATCH);
}

void
scenario_dry(struct run *run)
{
	cbm_pool_config cfg = pool_config(run, 64, 4, 256, 0);

	run_prodcons(run, &cfg, 3, 2);
}
