/* SPDX-License-Identifier: MIT */
/* Shared machinery of the stress driver (stress.h). */
#include "stress.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool.h"

static const char *const invariant_names[INV_COUNT] = {
	"exclusivity", "conservation",	  "capacity", "grace",
	"isolation",   "misuse-reported", "released", "sized",
};

const char *
invariant_name(enum invariant inv)
{
	return invariant_names[inv];
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void
rng_seed(struct rng *r, uint64_t seed, unsigned stream)
{
	uint64_t x = seed ^ ((uint64_t)stream << 32);

	r->s = splitmix64(&x) | 1;
}

uint64_t
rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

/* VIOLATION lines printed per invariant. */
#define PRINTED_PER_INVARIANT 5

void
check(struct run *run, enum invariant inv, bool ok, const char *fmt, ...)
{
	static atomic_uint printed[INV_COUNT];
	char what[512];
	va_list ap;

	atomic_fetch_add_explicit(&run->checks[inv], 1, memory_order_relaxed);
	if (ok)
		return;
	atomic_fetch_add(&run->violations[inv], 1);
	/* A broken invariant tends to break again at once: stop the run and
	 * print the first few of each invariant (a fault that breaks several
	 * must still show each one: expect_violation.sh --expect), each line
	 * in one call, so that threads' lines do not interleave. */
	atomic_store(&run->stop, true);
	if (atomic_fetch_add(&printed[inv], 1) >= PRINTED_PER_INVARIANT)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "VIOLATION %s: %s\n", invariant_names[inv], what);
}

void
sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

void
run_sleep(struct run *run)
{
	unsigned ms = (unsigned)(run->opt.seconds * 1000);

	for (unsigned t = 0; t < ms && !atomic_load(&run->stop); t += 10)
		sleep_us(10000);
}

struct thread_arg {
	struct run *run;
	unsigned index;
	void (*fn)(struct run *run, unsigned index, void *arg);
	void *arg;
};

static void *
thread_main(void *p)
{
	struct thread_arg *a = p;

	a->fn(a->run, a->index, a->arg);
	return NULL;
}

void
run_threads(struct run *run, unsigned n,
	    void (*fn)(struct run *run, unsigned index, void *arg), void *arg)
{
	run_threads_until(run, n, fn, arg, NULL);
}

void
run_threads_until(struct run *run, unsigned n,
		  void (*fn)(struct run *run, unsigned index, void *arg),
		  void *arg, bool (*enough)(void *arg))
{
	pthread_t *t = calloc(n, sizeof(*t));
	struct thread_arg *a = calloc(n, sizeof(*a));

	for (unsigned i = 0; i < n; i++) {
		a[i] = (struct thread_arg){run, i, fn, arg};
		if (pthread_create(&t[i], NULL, thread_main, &a[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(2);
		}
	}
	run_sleep(run);
	/* A loaded machine may need longer to reach what the scenario is
	 * about; give it up to four times the run, then stop anyway. */
	for (unsigned ms = 0;
	     enough != NULL && !enough(arg) && !atomic_load(&run->stop) &&
	     ms < 3000 * run->opt.seconds;
	     ms += 10)
		sleep_us(10000);
	atomic_store(&run->stop, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	free(a);
}

/* ---- ownership --------------------------------------------------------- */

void
tracker_init(struct tracker *t, cbm_pool *pool)
{
	t->pool = pool;
	t->base = pool->base;
	t->stride = pool->blocks.stride;
	t->block = cbm_block_size(pool);
	t->capacity = (uint32_t)cbm_max_capacity(pool);
	t->owner = calloc(t->capacity, sizeof(*t->owner));
}

void
tracker_fini(struct tracker *t)
{
	free(t->owner);
}

uint32_t
tracker_index(const struct tracker *t, const void *buf)
{
	return (uint32_t)(((const char *)buf - t->base) / t->stride);
}

/* A pool whose invariants broke can hand out anything: check a pointer is
 * a buffer before touching it. */
static bool
is_buffer(struct run *run, const struct tracker *t, const void *buf)
{
	uintptr_t off = (uintptr_t)buf - (uintptr_t)t->base;
	bool ok = off < (uintptr_t)t->capacity * t->stride &&
		  off % t->stride == 0;

	check(run, INV_EXCLUSIVITY, ok, "the pool handed out %p, not a buffer",
	      buf);
	return ok;
}

static void
stamp_write(const struct tracker *t, void *buf, uint32_t holder,
	    uint64_t serial)
{
	char *b = buf;

	memcpy(b, &holder, sizeof(holder));
	if (t->block >= 16)
		memcpy(b + 8, &serial, sizeof(serial));
	if (t->block >= 32) {
		uint64_t tail = ~serial ^ holder;

		memcpy(b + t->block - 8, &tail, sizeof(tail));
	}
}

static bool
stamp_intact(const struct tracker *t, const void *buf, uint32_t holder)
{
	const char *b = buf;
	uint32_t h;
	uint64_t serial, tail;

	memcpy(&h, b, sizeof(h));
	if (h != holder)
		return false;
	if (t->block < 32)
		return true;
	memcpy(&serial, b + 8, sizeof(serial));
	memcpy(&tail, b + t->block - 8, sizeof(tail));
	return tail == (~serial ^ holder);
}

void
tracker_claim(struct run *run, struct tracker *t, void *buf, uint32_t holder,
	      uint64_t serial)
{
	uint32_t idx = tracker_index(t, buf), expect = 0;
	bool ok;

	if (!is_buffer(run, t, buf))
		return;
	ok = atomic_compare_exchange_strong(&t->owner[idx], &expect, holder);

	check(run, INV_EXCLUSIVITY, ok,
	      "buffer %u handed to holder %u while holder %u has it", idx,
	      holder, expect);
	if (ok)
		stamp_write(t, buf, holder, serial);
}

void
tracker_release(struct run *run, struct tracker *t, void *buf, uint32_t holder)
{
	uint32_t idx = tracker_index(t, buf);

	if (!is_buffer(run, t, buf))
		return;
	check(run, INV_EXCLUSIVITY, stamp_intact(t, buf, holder),
	      "buffer %u held by %u was written by another holder", idx,
	      holder);
	check(run, INV_EXCLUSIVITY,
	      atomic_exchange(&t->owner[idx], 0) == holder,
	      "buffer %u released by %u but owned by another", idx, holder);
}

void
tracker_pass(struct run *run, struct tracker *t, void *buf, uint32_t from,
	     uint32_t to)
{
	uint32_t idx = tracker_index(t, buf), expect = from;

	if (!is_buffer(run, t, buf))
		return;
	check(run, INV_EXCLUSIVITY, stamp_intact(t, buf, from),
	      "buffer %u in transit from %u was overwritten", idx, from);
	check(run, INV_EXCLUSIVITY,
	      atomic_compare_exchange_strong(&t->owner[idx], &expect, to),
	      "buffer %u passed from %u to %u but owned by %u", idx, from, to,
	      expect);
	stamp_write(t, buf, to, 0);
}

/* ---- end checks -------------------------------------------------------- */

void
check_conserved(struct run *run, cbm_pool *pool, size_t held)
{
	cbm_stats st;

	cbm_barrier(pool);
	cbm_pool_stats(pool, &st);
	check(run, INV_CONSERVATION,
	      st.free + st.cached + st.retired + st.in_use == st.capacity,
	      "free %zu + cached %zu + retired %zu + in use %zu != %zu",
	      st.free, st.cached, st.retired, st.in_use, st.capacity);
	check(run, INV_CONSERVATION, st.in_use == held,
	      "%zu in use, but the threads hold %zu", st.in_use, held);
	check(run, INV_CONSERVATION, cbm_pool_verify(pool) == 0,
	      "cbm_pool_verify failed (its report is above)");
	if (held == 0) {
		cbm_pool_trim(pool);
		cbm_pool_stats(pool, &st);
		check(run, INV_CONSERVATION, st.free == st.capacity,
		      "after trim and barrier, free %zu of %zu", st.free,
		      st.capacity);
	}
}

struct parked {
	cbm_pool *pool;
	unsigned cpu;
};

void
pin_to_cpu(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

#define BUDGET_TAKEN ((uint64_t)1 << 32)

bool
budget_try(struct budget *b, size_t n)
{
	uint64_t w = atomic_load(&b->word);

	do {
		if (b->limit != 0 && (uint32_t)w + n > b->limit)
			return false;
	} while (!atomic_compare_exchange_weak(&b->word, &w,
					       w + n * (BUDGET_TAKEN + 1)));
	return true;
}

uint64_t
budget_take(struct budget *b, size_t n)
{
	return atomic_fetch_add(&b->word, n * (BUDGET_TAKEN + 1)) +
	       n * (BUDGET_TAKEN + 1);
}

void
budget_give(struct budget *b, size_t n)
{
	atomic_fetch_sub(&b->word, n);
}

void
budget_check_failure(struct run *run, struct budget *b, uint64_t after,
		     size_t cap, const char *call)
{
	uint64_t now = atomic_load(&b->word);
	/* Modulo 2^32: a call sees fewer than 2^32 reservations. */
	uint64_t others = (uint32_t)((now >> 32) - (after >> 32));
	uint64_t most_held = (uint32_t)after - 1 + others;

	check(run, INV_CAPACITY, most_held >= cap,
	      "%s failed, but the application held at most %llu of %zu "
	      "buffers meanwhile",
	      call, (unsigned long long)most_held, cap);
}

/* Leave a few buffers in one CPU's cache: allocate and free them there. */
static void *
park_buffers(void *arg)
{
	struct parked *p = arg;
	void *b[4];
	int n = 0;

	pin_to_cpu(p->cpu);
	while (n < 4 && (b[n] = cbm_alloc(p->pool)) != NULL)
		n++;
	cbm_free_bulk(p->pool, b, (size_t)n);
	return NULL;
}

void
check_capacity(struct run *run, cbm_pool *pool, size_t held)
{
	size_t cap = cbm_max_capacity(pool), got = 0;
	void **b = calloc(cap + 1, sizeof(void *));
	cpu_set_t mine;
	int cpu[2] = {-1, -1}, n = 0;

	/* Capacity counts every buffer not held, and a buffer retired by the
	 * run's last operations (lifecycle's hot workers retire to the end)
	 * may still wait for its grace period: the count would come up short
	 * by it. The barrier brings those back; it trims no cache, so the
	 * steal below is still what is checked. */
	cbm_barrier(pool);
	/* On two CPUs or more: park buffers in one CPU's cache and count from
	 * another, so the steal is what is checked, every time. */
	sched_getaffinity(0, sizeof(mine), &mine);
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &mine))
			cpu[n++] = c;
	if (n == 2) {
		struct parked p = {pool, (unsigned)cpu[1]};
		pthread_t t;

		pthread_create(&t, NULL, park_buffers, &p);
		pthread_join(t, NULL);
		pin_to_cpu((unsigned)cpu[0]);
	}
	while (got <= cap && (b[got] = cbm_alloc(pool)) != NULL)
		got++;
	check(run, INV_CAPACITY, got == cap - held,
	      "one thread got %zu buffers in a row; %zu of %zu are free", got,
	      cap - held, cap);
	cbm_free_bulk(pool, b, got);
	sched_setaffinity(0, sizeof(mine), &mine);
	free(b);
}

cbm_pool_config
pool_config(const struct run *run, size_t capacity, unsigned magazine,
	    size_t block, unsigned flags)
{
	cbm_pool_config cfg = {
		.capacity = run->opt.capacity ? run->opt.capacity : capacity,
		.magazine_size =
			run->opt.magazine ? run->opt.magazine : magazine,
		.block_size = run->opt.block ? run->opt.block : block,
		/* --flags: only scenarios that give back just what they hold
		 * take it (CBM_POOL_TRUST_BULK_FREES); misuse's pools are
		 * debug pools, which check whatever their flags say. */
		.flags = flags | run->opt.flags,
		.name = run->opt.scenario,
	};

	/* Small power-of-two blocks are packed at their own size (a 4-byte
	 * block has a 4-byte stride: the links-in-buffers plant needs it). */
	if (cfg.block_size < 64 && (cfg.block_size & (cfg.block_size - 1)) == 0)
		cfg.align = cfg.block_size;
	return cfg;
}

void
print_pool(const char *label, cbm_pool *pool)
{
	cbm_stats st;

	cbm_pool_stats(pool, &st);
	printf("  %s (%s mode): allocs %lu, frees %lu, failures %lu,\n"
	       "    depot exchanges %lu, freelist refills %lu, spills %lu, "
	       "busy fallbacks %lu,\n    steals %lu, trims %lu, idle drains "
	       "%lu, reclaimed %lu in %lu grace periods,\n"
	       "    rseq sequences aborted and restarted %lu\n",
	       label, st.percpu_mode == CBM_PERCPU_RSEQ ? "rseq" : "portable",
	       (unsigned long)st.allocs, (unsigned long)st.frees,
	       (unsigned long)st.alloc_failures,
	       (unsigned long)st.depot_exchanges, (unsigned long)st.global_pops,
	       (unsigned long)st.global_pushes,
	       (unsigned long)st.busy_fallbacks, (unsigned long)st.steals,
	       (unsigned long)st.trims, (unsigned long)st.idle_drains,
	       (unsigned long)st.reclaimed, (unsigned long)st.grace_periods,
	       (unsigned long)st.rseq_aborts);
}
