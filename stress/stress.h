/* SPDX-License-Identifier: MIT */
/*
 * The stress driver's shared machinery: options, per-thread random streams,
 * invariant accounting, buffer ownership tracking, and the checks every
 * scenario ends with.
 *
 * Reproducibility: each thread draws its operations from its own stream,
 * seeded from (--seed, thread index), so a seed replays the same sequence of
 * operations per thread; the interleaving is the scheduler's, which is why
 * runs are long and threads outnumber CPUs.
 */
#ifndef CBM_STRESS_H
#define CBM_STRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbm.h"

/* The invariants of docs/design.md, plus the API promises stress can check. */
enum invariant {
	INV_EXCLUSIVITY,  /* no buffer held by two holders at once */
	INV_CONSERVATION, /* every buffer accounted for, exactly once */
	INV_CAPACITY,	  /* capacity - k allocations succeed, k held */
	INV_GRACE,	  /* no retired buffer reused under a reader */
	INV_ISOLATION,	  /* writes into free buffers harm nothing */
	INV_MISUSE,	  /* every misuse reported, once */
	INV_RELEASED,	  /* no page released under a held buffer */
	INV_SIZED,	  /* a heap's buffer is its size's class, aligned */
	INV_COUNT,
};

const char *invariant_name(enum invariant inv);

struct options {
	const char *scenario;
	unsigned threads;
	double seconds;
	uint64_t seed;
	size_t capacity;   /* 0: the scenario's default */
	unsigned magazine; /* 0: the scenario's default */
	size_t block;	   /* 0: the scenario's default */
	const char *plant; /* planted fault (CBM_PLANT), fault builds only */
	unsigned flags;	   /* CBM_POOL_* added to a correct scenario's pools */
};

struct run {
	struct options opt;
	atomic_bool stop;
	atomic_ulong ops;
	atomic_ulong empty; /* allocations that found the pool dry */
	atomic_ulong checks[INV_COUNT];
	atomic_ulong violations[INV_COUNT];
	unsigned cpus;
};

/* Per-thread random stream (xorshift64*, seeded through splitmix64). */
struct rng {
	uint64_t s;
};

void rng_seed(struct rng *r, uint64_t seed, unsigned stream);
uint64_t rng_next(struct rng *r);
static inline unsigned
rng_below(struct rng *r, unsigned n)
{
	return (unsigned)(rng_next(r) % n);
}

/* Count one check of inv; count and report a violation when !ok. */
void check(struct run *run, enum invariant inv, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Run fn(run, index, arg) on n threads for the run's length (or until a
 * violation sets stop), then set stop and join them. */
void run_threads(struct run *run, unsigned n,
		 void (*fn)(struct run *run, unsigned index, void *arg),
		 void *arg);
/* The same, and past the run's length (up to 4 x) until enough(arg). */
void run_threads_until(struct run *run, unsigned n,
		       void (*fn)(struct run *run, unsigned index, void *arg),
		       void *arg, bool (*enough)(void *arg));
/* Sleep for the run's length, waking early if stop is set. */
void run_sleep(struct run *run);
void sleep_us(unsigned us);

/*
 * Ownership of a pool's buffers: an owner word per buffer, claimed with a
 * CAS from 0 (a second claimant sees the first), and a stamp in the buffer
 * (holder and serial at both ends) that a co-holder would overwrite.
 */
struct tracker {
	cbm_pool *pool;
	char *base;
	size_t stride;
	size_t block;
	uint32_t capacity;
	_Atomic uint32_t *owner;
};

void tracker_init(struct tracker *t, cbm_pool *pool);
void tracker_fini(struct tracker *t);
uint32_t tracker_index(const struct tracker *t, const void *buf);
/* holder != 0 */
void tracker_claim(struct run *run, struct tracker *t, void *buf,
		   uint32_t holder, uint64_t serial);
void tracker_release(struct run *run, struct tracker *t, void *buf,
		     uint32_t holder);
/* Hand a held buffer from one holder to another without a gap. */
void tracker_pass(struct run *run, struct tracker *t, void *buf, uint32_t from,
		  uint32_t to);

/*
 * The application's own count of the buffers it holds or is asking for,
 * against which a NULL (or -ENOMEM) is judged: "NULL only when the
 * application holds every buffer not retired" (docs/design.md). A thread
 * reserves n before it asks for n buffers and gives the reservation back
 * after it gave the buffers back (or the call failed), so at every instant
 * the buffers the application holds, inside its calls included, number at
 * most what is reserved. The word: low 32 bits reserved now, high 32 bits
 * how many were ever reserved.
 */
struct budget {
	_Atomic uint64_t word;
	size_t limit; /* budget_try: never reserve more (0: no limit) */
};

/* Reserve n if that keeps the reservation within the limit. */
bool budget_try(struct budget *b, size_t n);
/* Reserve n whatever the limit; returns the word as it was after. */
uint64_t budget_take(struct budget *b, size_t n);
void budget_give(struct budget *b, size_t n);
/*
 * A call that asked for buffers under the reservation `after` (from
 * budget_take) failed. It could fail rightly only if at some instant during
 * it every one of the pool's cap buffers was held: at most the reservation
 * then, minus the one this call still lacked, and the reservation never
 * exceeded what it was plus what others reserved meanwhile. When even that
 * bound is below cap, the failure broke capacity.
 */
void budget_check_failure(struct run *run, struct budget *b, uint64_t after,
			  size_t cap, const char *call);

/* Pin the calling thread to one CPU. */
void pin_to_cpu(unsigned cpu);

/* Conservation on a quiescent pool: the stats add up, verify passes, and
 * with nothing held, trim and barrier bring everything back to free.
 * (After check_capacity: its trim would hide a missing steal.) */
void check_conserved(struct run *run, cbm_pool *pool, size_t held);
/* Capacity means capacity: after a barrier has brought back every buffer
 * retired before the call, one thread gets every buffer not held. */
void check_capacity(struct run *run, cbm_pool *pool, size_t held);

/* A pool config with the run's overrides applied over the defaults. */
cbm_pool_config pool_config(const struct run *run, size_t capacity,
			    unsigned magazine, size_t block, unsigned flags);

/* Print what the pool did (its counters). */
void print_pool(const char *label, cbm_pool *pool);

/* The scenarios; each returns after the run and its end checks. */
void scenario_mix(struct run *run);
void scenario_prodcons(struct run *run);
void scenario_dry(struct run *run);
void scenario_exhaust(struct run *run);
void scenario_retire(struct run *run);
void scenario_trim(struct run *run);
void scenario_migrate(struct run *run);
void scenario_elastic(struct run *run);
void scenario_lifecycle(struct run *run);
void scenario_misuse(struct run *run);
void scenario_sizes(struct run *run);

#endif /* CBM_STRESS_H */
