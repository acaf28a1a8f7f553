/*
 * Fork safety: what each layer holds across fork(), and how a child gets
 * usable pools (the reclamation thread does not exist there; no lock may be
 * left owned by a thread that does not exist there either).
 *
 * The handlers run in a fixed order: the error handler's lock, then the
 * registry and caches (reclaim.c). The child's first retire or barrier
 * restarts the reclamation thread.
 *
 * Not covered, as with liburcu itself: a fork while some thread is inside
 * an RCU read-side section (the prepare handler waits for the pass in
 * flight, whose grace period may wait for that reader).
 */
#include <pthread.h>

#include "check.h"
#include "reclaim.h"

static void
prepare(void)
{
	cbm_report_fork_prepare();
	cbm_reclaim_fork_prepare();
}

static void
parent(void)
{
	cbm_reclaim_fork_parent();
	cbm_report_fork_parent();
}

static void
child(void)
{
	cbm_reclaim_fork_child();
	cbm_report_fork_child();
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
