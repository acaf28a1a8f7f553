/* SPDX-License-Identifier: MIT */
/*
 * Which CPU the calling thread is on, cheaply.
 *
 * glibc (2.35 and later) registers a struct rseq for every thread and
 * exports where it lives (__rseq_offset from the thread pointer) and how big
 * it is (__rseq_size, 0 when registration failed or was disabled with the
 * glibc.pthread.rseq tunable). The kernel keeps its cpu_id field current, so
 * reading it is one load. Without it, sched_getcpu() (a vDSO call).
 *
 * The answer is a hint: the thread may migrate right after reading it. In
 * portable mode the per-CPU lock makes a stale answer harmless (two threads
 * may then use the same CPU's cache, one after the other).
 */
#ifndef CBM_CPU_H
#define CBM_CPU_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/rseq.h>

#include "compiler.h"

#if defined(__x86_64__)
static inline struct rseq *
cbm_rseq_area(void)
{
	char *tp;

	/* The x86-64 TCB starts with a pointer to itself. */
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (struct rseq *)(tp + __rseq_offset);
}
#define CBM_HAVE_RSEQ_AREA 1
#elif defined(__aarch64__)
static inline struct rseq *
cbm_rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() +
			       __rseq_offset);
}
#define CBM_HAVE_RSEQ_AREA 1
#endif

static inline unsigned
cbm_current_cpu(void)
{
	int cpu;

#ifdef CBM_HAVE_RSEQ_AREA
	if (cbm_likely(__rseq_size != 0)) {
		/* Written by the kernel; a relaxed atomic load is the
		 * single-copy-atomic read the rseq ABI asks for. */
		int32_t id = (int32_t)__atomic_load_n(&cbm_rseq_area()->cpu_id,
						      __ATOMIC_RELAXED);
		if (cbm_likely(id >= 0))
			return (unsigned)id;
	}
#endif
	cpu = sched_getcpu();
	return cpu < 0 ? 0 : (unsigned)cpu;
}

/*
 * The rseq area's cpu_id as it stands, given __rseq_offset (a copy the
 * caller keeps at hand), with no fallback: negative where glibc registered
 * no area for the thread (it writes RSEQ_CPU_ID_REGISTRATION_FAILED then),
 * so the field alone says whether it can be trusted, with no look at
 * __rseq_size. cbm_current_cpu_at falls back to sched_getcpu().
 */
static inline int32_t
cbm_rseq_cpu_id(ptrdiff_t rseq_offset)
{
#if defined(__x86_64__)
	int32_t id;

	/* One load, relative to the thread pointer; written by the kernel
	 * (single-copy atomic, as the ABI asks of a 32-bit load). */
	__asm__("movl %%fs:%c1(%2), %0"
		: "=r"(id)
		: "i"(offsetof(struct rseq, cpu_id)), "r"(rseq_offset));
	return id;
#elif defined(CBM_HAVE_RSEQ_AREA)
	return (int32_t)__atomic_load_n(
		&((struct rseq *)((char *)__builtin_thread_pointer() +
				  rseq_offset))
			 ->cpu_id,
		__ATOMIC_RELAXED);
#else
	(void)rseq_offset;
	return -1;
#endif
}

static inline unsigned
cbm_current_cpu_at(ptrdiff_t rseq_offset)
{
	int32_t id = cbm_rseq_cpu_id(rseq_offset);
	int cpu;

	if (cbm_likely(id >= 0))
		return (unsigned)id;
	cpu = sched_getcpu();
	return cpu < 0 ? 0 : (unsigned)cpu;
}

#endif /* CBM_CPU_H */
