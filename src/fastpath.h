/* SPDX-License-Identifier: MIT */
/*
 * The exported fast paths of rseq builds (x86-64, not TSan): cbm_alloc and
 * cbm_free are written in assembly (fastpath_x86_64.c), so that the pair
 * costs only what it must: the pointer check, the sequence, its commit.
 * This header is what the assembly and C agree on: the offsets it reads,
 * as plain numbers (the assembler cannot take offsetof), each checked
 * against the C layout in alloc.c, and the C slow paths it jumps to.
 *
 * The assembly jumps (a tail call: the arguments are untouched) to
 *  - cbm_alloc_slow / cbm_free_slow when the fast path cannot serve the
 *    call: a NULL pool, a pointer the check refused (NULL included), a
 *    cache that is empty, full or held, a pool whose fast table is all
 *    sentinel (portable mode, bookkeeping), a thread without rseq;
 *  - cbm_alloc_aborted / cbm_free_aborted from the abort handler, when
 *    the kernel restarted the sequence.
 */
#ifndef CBM_FASTPATH_H
#define CBM_FASTPATH_H

/* struct cbm_pool's hot line (pool.h). */
#define CBM_OFF_POOL_BASE 0
#define CBM_OFF_POOL_STRIDE_INV 8
#define CBM_OFF_POOL_FAST 24	    /* map.fast */
#define CBM_OFF_POOL_TABLE 4112	    /* CBM_POOL_FAST_AT + 8 x CBM_FAST_BEFORE */
#define CBM_OFF_POOL_RSEQ_OFFSET 32 /* map.rseq_offset */
#define CBM_OFF_POOL_SLOTS 44	    /* map.slots */
#define CBM_OFF_POOL_CAPACITY 48
#define CBM_OFF_POOL_STRIDE_SHIFT 56

/* struct cbm_cpu_cache (percpu.h): the word at 0, the slots at
 * CBM_CACHE_SLOTS_OFFSET. struct rseq (the kernel's ABI). */
#define CBM_OFF_RSEQ_CPU_ID 4
#define CBM_OFF_RSEQ_CS 8
#define CBM_FAST_RSEQ_SIG 0x53053053 /* glibc's RSEQ_SIG on x86 */

/* What the word's compares take (percpu.h): a pop's bound on count - 1,
 * and the slots' offset in a cache. */
#define CBM_FAST_COUNT_MAX 0x3ffffffe /* CBM_CACHE_COUNT_MASK - 1 */
#define CBM_FAST_SLOTS 64	      /* CBM_CACHE_SLOTS_OFFSET */

#ifndef __ASSEMBLER__
#include "cbm.h"

void *cbm_alloc_slow(cbm_pool *pool);
void *cbm_alloc_aborted(cbm_pool *pool);
void cbm_free_slow(cbm_pool *pool, void *buf);
void cbm_free_aborted(cbm_pool *pool, void *buf);
#endif

#endif /* CBM_FASTPATH_H */
