/* SPDX-License-Identifier: MIT */
/*
 * Fork safety: what each layer holds across fork(), and how a child gets
 * usable pools (the reclamation thread does not exist there; no lock may be
 * left owned by a thread that does not exist there either).
 *
 * The child's first slow path (refill, spill, steal), retire or barrier
 * restarts the reclamation thread.
 *
 * Not covered, as with liburcu itself, which has no fork handlers for its
 * own locks: a fork while some thread is inside an RCU read-side section
 * (the prepare handler waits for the pass in flight, whose grace period
 * may wait for that reader), registering or unregistering with liburcu (a
 * thread's first cbm_read_lock, or its exit), or in the application's own
 * synchronize_rcu.
 */
#include <pthread.h>

#include "fork.h"
#include "reclaim.h"
#include "report.h"

/*
 * Order: the registry and caches first, the error handler's lock last.
 * Preparing the registry waits for the pass in flight, whose grace period
 * may wait for a reader that is about to report an error; holding the
 * handler's lock while waiting would deadlock against it. Nothing that
 * holds the handler's lock waits for the registry or a cache.
 */
static void
prepare(void)
{
	cbm_reclaim_fork_prepare();
	cbm_report_fork_prepare();
}

static void
parent(void)
{
	cbm_report_fork_parent();
	cbm_reclaim_fork_parent();
}

static void
child(void)
{
	cbm_report_fork_child();
	cbm_reclaim_fork_child();
}

static void
install(void)
{
	pthread_atfork(prepare, parent, child);
}

void
cbm_fork_handlers_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install);
}
