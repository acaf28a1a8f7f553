/* SPDX-License-Identifier: MIT */
/* Planted faults and yield injection (plant.h); stress builds only. */
#include "plant.h"

#ifdef CBM_FAULT_INJECTION
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned cbm_planted;
unsigned cbm_yield_every;
_Atomic(cbm_site_hook) cbm_site_hook_installed;
/* Read and written by name from the bulk pushes' asm only (rseq.h): used,
 * so that no optimisation drops them as unreferenced. */
__attribute__((used)) atomic_int cbm_plant_push_gate;
__attribute__((used)) atomic_int cbm_plant_push_gated;

static const struct {
	const char *name;
	unsigned bit;
} faults[] = {
	{"no-tag", CBM_PLANT_NO_TAG},
	{"no-grace", CBM_PLANT_NO_GRACE},
	{"no-rcu-annotation", CBM_PLANT_NO_RCU_ANNOTATION},
	{"trim-no-lock", CBM_PLANT_TRIM_NO_LOCK},
	{"no-steal", CBM_PLANT_NO_STEAL},
	{"lose-buffer", CBM_PLANT_LOSE_BUFFER},
	{"links-in-buffers", CBM_PLANT_LINKS_IN_BUFFERS},
	{"no-debug-state", CBM_PLANT_NO_DEBUG_STATE},
	{"no-stable-view", CBM_PLANT_NO_STABLE_VIEW},
	{"no-thread", CBM_PLANT_NO_THREAD},
	{"grow-past-ceiling", CBM_PLANT_GROW_PAST_CEILING},
	{"release-published", CBM_PLANT_RELEASE_PUBLISHED},
	{"map-after-publish", CBM_PLANT_MAP_AFTER_PUBLISH},
	{"class-too-small", CBM_PLANT_CLASS_TOO_SMALL},
	{"unpaid-reuse", CBM_PLANT_UNPAID_REUSE},
	{"unpaid-growth", CBM_PLANT_UNPAID_GROWTH},
	{"no-giveback", CBM_PLANT_NO_GIVEBACK},
	{"drain-trusts-cas", CBM_PLANT_DRAIN_TRUSTS_CAS},
};

static void
read_environment(void)
{
	const char *plant = getenv("CBM_PLANT");
	const char *yield = getenv("CBM_YIELD");

	for (size_t i = 0; plant && i < sizeof(faults) / sizeof(faults[0]);
	     i++) {
		if (strstr(plant, faults[i].name) != NULL) {
			cbm_planted |= faults[i].bit;
			fprintf(stderr, "cbm: planted fault '%s'\n",
				faults[i].name);
		}
	}
	if (yield != NULL)
		cbm_yield_every = (unsigned)strtoul(yield, NULL, 10);
}

void
cbm_plant_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, read_environment);
}

void
cbm_site_hook_set(cbm_site_hook hook)
{
	/* Release: pairs with the acquire in cbm_site_reached, so a hook sees
	 * what the test set up before installing it. */
	atomic_store_explicit(&cbm_site_hook_installed, hook,
			      memory_order_release);
}

void
cbm_site_reached(enum cbm_site site)
{
	cbm_site_hook hook = atomic_load_explicit(&cbm_site_hook_installed,
						  memory_order_acquire);

	if (hook != NULL)
		hook(site);
}

void
cbm_yield_point_slow(void)
{
	/* A per-thread xorshift: no shared state, so it perturbs schedules
	 * without adding synchronization that could hide a race. */
	static _Thread_local unsigned x = 2463534242u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	if (x % cbm_yield_every == 0)
		sched_yield();
}

/* ---- failing allocations (plant.h) ---- */

static atomic_ulong fail_countdown, fail_reached;
static _Atomic(const char *) fail_named;

bool
cbm_fail_here(const char *site)
{
	unsigned long k;

	atomic_fetch_add(&fail_reached, 1);
	k = atomic_load(&fail_countdown);
	while (k != 0 &&
	       !atomic_compare_exchange_weak(&fail_countdown, &k, k - 1))
		;
	if (k != 1)
		return false;
	atomic_store(&fail_named, site);
	return true;
}

void
cbm_fail_countdown(unsigned long k)
{
	atomic_store(&fail_countdown, k);
}

unsigned long
cbm_fail_sites(void)
{
	return atomic_load(&fail_reached);
}

const char *
cbm_fail_last(void)
{
	return atomic_load(&fail_named);
}
#endif
