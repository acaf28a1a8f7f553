/* SPDX-License-Identifier: MIT */
/*
 * rseq mode: choosing it, and fencing a CPU (rseq.h).
 */
#include "rseq.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

static enum cbm_percpu_mode default_mode;
static pthread_once_t decide_once = PTHREAD_ONCE_INIT;

static long
membarrier(int cmd, unsigned flags, int cpu)
{
	return syscall(__NR_membarrier, cmd, flags, cpu);
}

static void
decide(void)
{
	const char *force = getenv("CBM_PERCPU");

	default_mode = CBM_MODE_PORTABLE;
#ifdef CBM_HAVE_RSEQ
	if (force != NULL && strcmp(force, "portable") == 0)
		return;
	/* glibc registers rseq for each thread unless it could not (or the
	 * glibc.pthread.rseq tunable said no): then the size is 0, and no
	 * thread's CPU number is ever in range. CBM_PERCPU=rseq asks for rseq
	 * mode anyway: every thread then takes the global path, which is
	 * safe, and a single-threaded harness that writes a CPU number into
	 * its own rseq area can count the fast path's instructions under
	 * valgrind, which has no rseq (bench/). Nothing restarts or fences
	 * such a harness's sequences, so it must keep its pool from being
	 * drained: idle trim off, never dry. */
	if (__rseq_size == 0) {
		if (force != NULL && strcmp(force, "rseq") == 0)
			default_mode = CBM_MODE_RSEQ;
		return;
	}
	/* Drains fence other CPUs' sequences; without the fence, no rseq. */
	if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) !=
	    0)
		return;
	default_mode = CBM_MODE_RSEQ;
#else
	(void)force;
#endif
}

enum cbm_percpu_mode
cbm_percpu_mode_default(void)
{
	pthread_once(&decide_once, decide);
	return default_mode;
}

void
cbm_rseq_fence(unsigned cpu)
{
	/* Registered in decide(); it cannot fail for a valid CPU, and a drain
	 * that went on without its fence could race a sequence: stop. (In
	 * rseq mode without registration, CBM_PERCPU=rseq, there is nothing
	 * to fence: no thread runs a sequence on a real CPU number.) */
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
		       MEMBARRIER_CMD_FLAG_CPU, (int)cpu) != 0 &&
	    __rseq_size != 0)
		abort();
}

ptrdiff_t
cbm_rseq_offset(void)
{
	return __rseq_offset;
}
