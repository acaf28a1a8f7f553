/* SPDX-License-Identifier: MIT */
/*
 * Lock-free stacks of 32-bit indices whose links live in a side array.
 *
 * Two shapes, named by their concurrency contract:
 *
 *  cbm_istack: push and pop from any number of threads at once (mpmc). The
 *  head word is one 64-bit value, index in the low half and a generation tag
 *  in the high half, so a single 64-bit CAS is ABA-safe.
 *
 *  cbm_ilist: push from any number of threads, and take the whole list at
 *  once (one consumer at a time, or several: take_all is one exchange). No
 *  single pop exists, so there is no ABA to guard against and the high half
 *  of the head counts the entries instead.
 *
 * Neither writes into the objects the indices name: links live in `links`,
 * an array of the caller's with one word per index, shared by every stack
 * whose entries cannot be on two stacks at once.
 *
 * Synchronization table (what needs outside exclusion):
 *
 *   istack:  push     pop     push_chain  pop_chain
 *   push     -        -       -           -
 *   pop      -        -       -           -       ("-": safe concurrently)
 *
 *   ilist:   push     take_all
 *   push     -        -
 *   take_all -        -
 */
#ifndef CBM_ISTACK_H
#define CBM_ISTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "compiler.h"

#define CBM_NIL UINT32_MAX /* the end of a chain; never a valid index */

struct cbm_istack {
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 head; /* tag << 32 | index */
	cbm_atomic_u64 count; /* entries; exact when no operation runs */
#ifdef CBM_FAULT_INJECTION
	bool plant_untagged; /* plant.h, no-tag: this stack keeps its tag */
#endif
};

struct cbm_ilist {
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 head; /* count << 32 | index */
};

void cbm_istack_init(struct cbm_istack *s);

/*
 * Push the chain first -> ... -> last, already linked through links, of n
 * entries. The caller owns every entry of the chain. One CAS.
 */
void cbm_istack_push_chain(struct cbm_istack *s, cbm_atomic_u32 *links,
			   uint32_t first, uint32_t last, uint32_t n);

static inline void
cbm_istack_push(struct cbm_istack *s, cbm_atomic_u32 *links, uint32_t idx)
{
	cbm_istack_push_chain(s, links, idx, idx, 1);
}

/* Pop one entry, or CBM_NIL when empty. */
uint32_t cbm_istack_pop(struct cbm_istack *s, cbm_atomic_u32 *links);

/*
 * Pop up to max entries with one CAS. Returns the first index (CBM_NIL when
 * empty) and sets *n; the entries are linked through links from the first,
 * and the caller owns all n of them. Cost O(max) link reads.
 */
uint32_t cbm_istack_pop_chain(struct cbm_istack *s, cbm_atomic_u32 *links,
			      uint32_t max, uint32_t *n);

static inline uint64_t
cbm_istack_count(const struct cbm_istack *s)
{
	return cbm_load_relaxed_u64(&s->count);
}

/* The top entry, for audits of a stack nobody is using (quiescent). */
static inline uint32_t
cbm_istack_top_quiescent(const struct cbm_istack *s)
{
	return (uint32_t)cbm_load_relaxed_u64(&s->head);
}

void cbm_ilist_init(struct cbm_ilist *l);

/* Push one entry the caller owns. One CAS, sequentially consistent. */
void cbm_ilist_push(struct cbm_ilist *l, cbm_atomic_u32 *links, uint32_t idx);

/*
 * Take every entry with one exchange. Returns the first index (CBM_NIL when
 * empty) and sets *n to the count; the caller owns the chain.
 */
uint32_t cbm_ilist_take_all(struct cbm_ilist *l, uint32_t *n);

static inline uint32_t
cbm_ilist_count(const struct cbm_ilist *l)
{
	return (uint32_t)(cbm_load_relaxed_u64(&l->head) >> 32);
}

/* The count, read with a seq_cst load (for handshakes). */
static inline uint32_t
cbm_ilist_count_seq_cst(const struct cbm_ilist *l)
{
	return (uint32_t)(cbm_load_seq_cst_u64(&l->head) >> 32);
}

/* The first entry, for audits of a list nobody is using (quiescent). */
static inline uint32_t
cbm_ilist_first_quiescent(const struct cbm_ilist *l)
{
	return (uint32_t)cbm_load_relaxed_u64(&l->head);
}

#endif /* CBM_ISTACK_H */
