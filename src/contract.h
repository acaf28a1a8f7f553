/* SPDX-License-Identifier: MIT */
/*
 * Assertions that check the contracts the comments state, in two tiers as
 * mimalloc and liburcu have them:
 *
 *   CBM_ASSERT(x)            cheap: a contract at a function's entry (the
 *                            caller holds the cache, an index is below
 *                            capacity, a full magazine is full)
 *   CBM_ASSERT_EXPENSIVE(x)  walks something (every slot of a run)
 *
 * Both are on in debug and fault-injection builds and compiled out in
 * release builds (NDEBUG without CBM_FAULT_INJECTION): the fast paths carry
 * none, and release builds pay nothing. A failed one prints the condition
 * and where, then aborts: a broken contract is a bug in the library, not
 * the application's misuse (that goes to the error handler).
 *
 * The witness (a light version of jemalloc's lock witness): a thread-local
 * count of the caches the thread holds, so that "no report, no registry
 * lock and no wait for another cache while a cache is held" (percpu.h, P4)
 * is checked where it matters.
 */
#ifndef CBM_CONTRACT_H
#define CBM_CONTRACT_H

#include "compiler.h"

#if !defined(NDEBUG) || defined(CBM_FAULT_INJECTION)
#define CBM_ASSERTS 1
#endif

#ifdef CBM_ASSERTS
CBM_COLD void cbm_assert_failed(const char *what, const char *file, int line);

#define CBM_ASSERT(x)                                                          \
	do {                                                                   \
		if (cbm_unlikely(!(x)))                                        \
			cbm_assert_failed(#x, __FILE__, __LINE__);             \
	} while (0)
#define CBM_ASSERT_EXPENSIVE(x) CBM_ASSERT(x)

/* Caches the calling thread holds (percpu.c keeps it). */
extern _Thread_local int cbm_witness_caches;
#define CBM_WITNESS_HOLD() (cbm_witness_caches++)
#define CBM_WITNESS_DROP() (cbm_witness_caches--)
#define CBM_ASSERT_NO_CACHE_HELD() CBM_ASSERT(cbm_witness_caches == 0)
#else
#define CBM_ASSERT(x)                                                          \
	do {                                                                   \
	} while (0)
#define CBM_ASSERT_EXPENSIVE(x) CBM_ASSERT(x)
#define CBM_WITNESS_HOLD()                                                     \
	do {                                                                   \
	} while (0)
#define CBM_WITNESS_DROP() CBM_WITNESS_HOLD()
#define CBM_ASSERT_NO_CACHE_HELD() CBM_WITNESS_HOLD()
#endif

#endif /* CBM_CONTRACT_H */
