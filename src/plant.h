/* SPDX-License-Identifier: MIT */
/*
 * Planted faults and injected yields, for the stress suite only.
 *
 * A build configured with -Dfault_injection=true compiles these hooks in;
 * every other build compiles them to nothing, so the library users link
 * has none of it. In such a build, the environment variable CBM_PLANT names
 * faults to plant (comma-separated, read once at the first pool creation):
 *
 *   no-tag           the buffer freelist's pushes and pops leave the
 *                    generation tag alone (ABA-unsafe)     [exclusivity]
 *   no-grace         the reclamation thread skips the grace period [grace]
 *   no-rcu-annotation  the TSan model of grace periods is left out
 *                    (TSan must then report the reader/reuse race)
 *   trim-no-lock     draining a cache does not take its lock  [exclusivity]
 *   no-steal         an allocation that finds the global tier empty gives
 *                    up without draining other CPUs' caches    [capacity]
 *   lose-buffer      spilling a magazine to the freelist drops one buffer
 *                                                         [conservation]
 *   links-in-buffers a pool whose stride is 4 bytes keeps its freelist
 *                    links inside the buffers                 [isolation]
 *   no-debug-state   debug pools accept a release of a buffer that is not
 *                    held                                 [misuse reported]
 *   no-stable-view   a dry allocation gives up after one look at every
 *                    place, ignoring buffers in transit (transit.h)
 *                                                             [capacity]
 *   grow-past-ceiling  the frontier grows with an add after looking,
 *                    so a grower that looked before another grew takes
 *                    the pool past its max_capacity            [ceiling]
 *   release-published  a release pass puts the buffers it gives back where
 *                    allocations find them before their pages go
 *                    (madvise after publishing)           [released data]
 *   map-after-publish  a growth with region callbacks makes the new
 *                    buffers exist before it calls on_map, so a thread
 *                    can take one of them unmapped      [mapped before use]
 *   class-too-small  a size-class heap serves a request up to 16 bytes
 *                    above a class with that class, one too small
 *                                              [exclusivity, isolation]
 *   unpaid-reuse     a released group taken back is not charged to its
 *                    heap's budget, so the classes together can hold
 *                    more than max_bytes                   [heap ceiling]
 *   unpaid-growth    a heap's class grows without charging the budget
 *                                                          [heap ceiling]
 *   no-giveback      a heap's class at the ceiling does not ask the
 *                    other classes for memory         [heap capacity]
 *   drain-trusts-cas a drainer on another CPU takes the cache's word as
 *                    its CAS left it, not as it reads after its fence, so
 *                    a push that committed in between is lost
 *                                                         [conservation]
 *   no-thread        the reclamation thread cannot be started, as when
 *                    pthread_create fails: the first pool's create fails
 *                    with -EAGAIN (a unit test of that path, not stress)
 *
 * and CBM_YIELD=N makes about one in N yield points call sched_yield(), to
 * shake schedules at the places most likely to expose a race.
 *
 * Each stress scenario shows that it catches the fault its invariant is
 * about (stress/README).
 */
#ifndef CBM_PLANT_H
#define CBM_PLANT_H

enum cbm_plant {
	CBM_PLANT_NO_TAG = 1u << 0,
	CBM_PLANT_NO_GRACE = 1u << 1,
	CBM_PLANT_NO_RCU_ANNOTATION = 1u << 2,
	CBM_PLANT_TRIM_NO_LOCK = 1u << 3,
	CBM_PLANT_NO_STEAL = 1u << 4,
	CBM_PLANT_LOSE_BUFFER = 1u << 5,
	CBM_PLANT_LINKS_IN_BUFFERS = 1u << 6,
	CBM_PLANT_NO_DEBUG_STATE = 1u << 7,
	CBM_PLANT_NO_STABLE_VIEW = 1u << 8,
	CBM_PLANT_NO_THREAD = 1u << 9,
	CBM_PLANT_GROW_PAST_CEILING = 1u << 10,
	CBM_PLANT_RELEASE_PUBLISHED = 1u << 11,
	CBM_PLANT_MAP_AFTER_PUBLISH = 1u << 12,
	CBM_PLANT_CLASS_TOO_SMALL = 1u << 13,
	CBM_PLANT_UNPAID_REUSE = 1u << 14,
	CBM_PLANT_UNPAID_GROWTH = 1u << 15,
	CBM_PLANT_NO_GIVEBACK = 1u << 16,
	CBM_PLANT_DRAIN_TRUSTS_CAS = 1u << 17,
};

/*
 * Named yield points: the windows a test may want to hold a thread in, so
 * that other threads run through it every time rather than once in a
 * thousand runs. A test installs a hook (cbm_site_hook_set) that is called
 * with the site each time any thread passes one; it may block there.
 */
enum cbm_site {
	CBM_SITE_MAG_IN_HAND,	     /* global.c: a full magazine taken from
				       the depot, not yet spilled */
	CBM_SITE_REFILL_UNCOMMITTED, /* percpu.c: a refill copied into a held
					cache, its word not yet released */
	CBM_SITE_DRAIN_BEFORE_TAKE,  /* percpu.c: a drain saw buffers in a
				       cache and is about to take it */
	CBM_SITE_DRAIN_UNRELEASED,   /* percpu.c: a drain moved a cache's
				       buffers out, its word not yet released */
	CBM_SITE_BULK_GATHERING,     /* alloc.c: a bulk allocation holds part
					of what it asked for and looks for the
					rest */
	CBM_SITE_BULK_GIVING_BACK,   /* alloc.c: a bulk allocation that did
					not get all is about to give back */
	CBM_SITE_GROWING,	     /* frontier.c: every existing buffer was
					taken; about to make more exist */
	CBM_SITE_RELEASING,	     /* release.c: free buffers taken out of
					the global tier, their pages not yet
					given back */
	CBM_SITE_MAPPING,	     /* frontier.c: a grower holds the growth
					lock and is about to call the map hook
					(frontier.h, F5) */
	CBM_SITE_CLASS_MAKING,	     /* heap.c: a heap's class lock held, the
					class's pool made, not yet published */
	CBM_SITE_STATS_READING,	     /* stats.c: a snapshot looked at the
					transit word, and is about to read
					the tiers */
	CBM_SITE_RECLAIM_SPLICED,    /* reclaim.c: a reclaimed batch is on the
					freelist and still counted in flight */
	CBM_SITE_VERIFY_QUIESCING,   /* verify.c: an audit about to wait for
					the reclamation thread */
	CBM_SITE_DRAIN_FENCING,	     /* percpu.c: a drainer set REMOTE_LOCK
					and has not fenced the cache's CPU */
};

/*
 * The bulk push gate: a hold inside a restartable sequence, where no
 * function may be called (the kernel would not restart a sequence
 * preempted outside its range). While cbm_plant_push_gate is nonzero, a
 * bulk push's sequence (rseq.h), its slots written and about to commit,
 * sets cbm_plant_push_gated and spins until the gate is 0 again; an abort
 * (preemption, migration, signal) meanwhile restarts it as always. For
 * tests (tests/test_percpu.c); 0 otherwise.
 */
#ifdef CBM_FAULT_INJECTION
#include <stdatomic.h>

extern atomic_int cbm_plant_push_gate;
extern atomic_int cbm_plant_push_gated;
#endif

typedef void (*cbm_site_hook)(enum cbm_site site);

/*
 * Failing allocations: each allocation and thread start of
 * cbm_pool_create is a failure site (CBM_FAIL_HERE(name) in front of it).
 * cbm_fail_countdown(k) makes the k-th site reached from then on fail,
 * once (0: none); cbm_fail_sites() counts the sites reached so far, and
 * cbm_fail_last() names the one that failed last. For the create fault
 * tests (tests/test_create_faults.c); nothing else sets a countdown.
 */
#ifdef CBM_FAULT_INJECTION
#include <stdbool.h>

bool cbm_fail_here(const char *site);
void cbm_fail_countdown(unsigned long k);
unsigned long cbm_fail_sites(void);
const char *cbm_fail_last(void);
#define CBM_FAIL_HERE(site) cbm_unlikely(cbm_fail_here(site))
#else
#define CBM_FAIL_HERE(site) 0
#endif

#ifdef CBM_FAULT_INJECTION
#include "compiler.h"

extern unsigned cbm_planted;
extern unsigned cbm_yield_every;

/* Read CBM_PLANT and CBM_YIELD (once). */
void cbm_plant_init(void);
void cbm_yield_point_slow(void);

extern _Atomic(cbm_site_hook) cbm_site_hook_installed;

/* Install (or with NULL remove) the hook named sites call. For tests. */
void cbm_site_hook_set(cbm_site_hook hook);
void cbm_site_reached(enum cbm_site site);

#define CBM_PLANTED(fault) cbm_unlikely(cbm_planted &(fault))
#define CBM_YIELD_POINT()                                                      \
	do {                                                                   \
		if (cbm_unlikely(cbm_yield_every != 0))                        \
			cbm_yield_point_slow();                                \
	} while (0)
#define CBM_YIELD_AT(site)                                                     \
	do {                                                                   \
		cbm_site_reached(site);                                        \
		CBM_YIELD_POINT();                                             \
	} while (0)
#else
#define CBM_PLANTED(fault) 0
#define CBM_YIELD_POINT()                                                      \
	do {                                                                   \
	} while (0)
#define CBM_YIELD_AT(site)                                                     \
	do {                                                                   \
		(void)(site);                                                  \
	} while (0)
static inline void
cbm_plant_init(void)
{
}
#endif

#endif /* CBM_PLANT_H */
