/* SPDX-License-Identifier: MIT */
/*
 * RCU read-side wrappers and grace periods (rcu.h).
 *
 * Registration: a thread is registered with the memb flavor on its first
 * cbm_read_lock, and a pthread key's destructor unregisters it when the
 * thread exits, so short-lived reader threads leave no registration behind
 * (liburcu keeps one per registered thread, and synchronize_rcu visits them
 * all).
 */
#include "rcu.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* urcu-memb.h first: it maps flavor.h's generic names onto memb's. */
#include <urcu/urcu-memb.h>

#include <urcu/flavor.h>

#include "atomics.h"
#include "cbm.h"
#include "compiler.h"
#include "plant.h"

#ifdef CBM_TSAN
#include <sanitizer/tsan_interface.h>

/* The address every read-side exit releases and every grace period
 * acquires (rcu.h). */
static char grace_token;
#endif

/* Readers registered by cbm_read_lock and not yet unregistered (tests). */
cbm_atomic_u32 cbm_rcu_registered_readers;

static pthread_key_t reader_key;
static pthread_once_t reader_key_once = PTHREAD_ONCE_INIT;
static _Thread_local bool reader_registered;

const struct rcu_flavor_struct *
cbm_rcu_default_flavor(void)
{
	return &urcu_memb_flavor;
}

void
cbm_rcu_synchronize(const struct rcu_flavor_struct *flavor)
{
	flavor->update_synchronize_rcu();
#ifdef CBM_TSAN
	/* Pairs with the release in cbm_read_unlock (rcu.h). */
	if (!CBM_PLANTED(CBM_PLANT_NO_RCU_ANNOTATION))
		__tsan_acquire(&grace_token);
#endif
}

static void
unregister_reader(void *unused)
{
	(void)unused;
	urcu_memb_unregister_thread();
	cbm_fetch_add_relaxed_u32(&cbm_rcu_registered_readers, (uint32_t)-1);
}

static void
make_reader_key(void)
{
	pthread_key_create(&reader_key, unregister_reader);
}

static CBM_COLD void
register_reader(void)
{
	pthread_once(&reader_key_once, make_reader_key);
	urcu_memb_register_thread();
	cbm_fetch_add_relaxed_u32(&cbm_rcu_registered_readers, 1);
	/* Any non-NULL value makes the destructor run at thread exit. */
	pthread_setspecific(reader_key, &reader_key);
	reader_registered = true;
}

void
cbm_read_lock(void)
{
	if (cbm_unlikely(!reader_registered))
		register_reader();
	urcu_memb_read_lock();
}

void
cbm_read_unlock(void)
{
#ifdef CBM_TSAN
	/* Pairs with the acquire after the grace period (rcu.h). */
	if (!CBM_PLANTED(CBM_PLANT_NO_RCU_ANNOTATION))
		__tsan_release(&grace_token);
#endif
	urcu_memb_read_unlock();
}
