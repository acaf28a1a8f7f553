/* SPDX-License-Identifier: MIT */
/*
 * Tagged-index Treiber stacks (cbm_istack) and push/take-all lists
 * (cbm_ilist). See istack.h for the contracts.
 *
 * Invariants of cbm_istack:
 *
 *  I1. Every successful CAS on head increments the tag (high 32 bits). So if
 *      a thread reads head == H and later CASes successfully from H, no other
 *      CAS succeeded in between (up to a wrap of the 32-bit tag: 2^32
 *      successful operations while one thread sits between its load and its
 *      CAS; the index must then also match).
 *  I2. The link of an entry that is on the stack is written only by the
 *      thread that pushes it, before the push's CAS; once on the stack, an
 *      entry's link changes only after it has been popped, and popping it
 *      changes head. Together with I1: a pop whose CAS succeeds read the links
 *      of a chain that nobody changed meanwhile, so pop_chain may walk up to
 *      max links before its CAS.
 *  I3. Links only ever hold a valid index or CBM_NIL, so a walk that races
 *      with other threads (and whose CAS will then fail) reads garbage-free
 *      indices; it is bounded by max, so it cannot loop.
 *  I4. count is raised before the pushing CAS and lowered after the popping
 *      CAS, so it never falls below the true number of entries; with no
 *      operation in flight it is exact.
 *
 * Memory order: the pushing CAS is a release and pairs with the acquire load
 * of head in pop (and with the acquire on a failed CAS, which reloads head):
 * what the pusher wrote before the push (the links, and the user's writes to
 * the buffer being freed) is visible to whoever pops the entry. Entries deeper
 * than the head were pushed by earlier CASes on the same word; every CAS is a
 * read-modify-write, so they are in the release sequence the acquire reads
 * from.
 */
#include "istack.h"

#include <ck_backoff.h>

#include "contract.h"
#include "plant.h"

static inline uint64_t
pack(uint32_t hi, uint32_t idx)
{
	return (uint64_t)hi << 32 | idx;
}

static inline uint32_t
head_index(uint64_t h)
{
	return (uint32_t)h;
}

static inline uint32_t
head_high(uint64_t h)
{
	return (uint32_t)(h >> 32);
}

/* I1. (A stress build can plant the ABA bug in a stack by leaving its tag
 * alone: plant.h, no-tag.) */
static inline uint32_t
next_tag(const struct cbm_istack *s, uint64_t h)
{
#ifdef CBM_FAULT_INJECTION
	if (s->plant_untagged)
		return head_high(h);
#else
	(void)s;
#endif
	return head_high(h) + 1;
}

void
cbm_istack_init(struct cbm_istack *s)
{
	cbm_store_relaxed_u64(&s->head, pack(0, CBM_NIL));
	cbm_store_relaxed_u64(&s->count, 0);
#ifdef CBM_FAULT_INJECTION
	s->plant_untagged = false;
#endif
}

void
cbm_istack_push_chain(struct cbm_istack *s, cbm_atomic_u32 *links,
		      uint32_t first, uint32_t last, uint32_t n)
{
	/* ck_backoff spins with compiler barriers only: it touches no shared
	 * memory, so TSan sees nothing of it, and it keeps a CAS loop under
	 * contention from hammering the line. */
	ck_backoff_t backoff = CK_BACKOFF_INITIALIZER;
	uint64_t old = cbm_load_relaxed_u64(&s->head);
	uint64_t next;

	/* I3: only indices are ever linked, and a chain has an end. */
	CBM_ASSERT(first != CBM_NIL && last != CBM_NIL && n > 0);
	cbm_fetch_add_relaxed_u64(&s->count, n); /* I4: before the CAS */
	for (;;) {
		cbm_store_relaxed_u32(&links[last], head_index(old));
		CBM_YIELD_POINT();
		next = pack(next_tag(s, old), first);
		/* Release: pairs with the acquire load of head in pop and
		 * pop_chain (I2: the link above is published with it). */
		if (cbm_cas_weak_acq_rel_u64(&s->head, &old, next))
			return;
		ck_backoff_eb(&backoff);
	}
}

uint32_t
cbm_istack_pop(struct cbm_istack *s, cbm_atomic_u32 *links)
{
	uint32_t n;

	return cbm_istack_pop_chain(s, links, 1, &n);
}

uint32_t
cbm_istack_pop_chain(struct cbm_istack *s, cbm_atomic_u32 *links, uint32_t max,
		     uint32_t *n)
{
	ck_backoff_t backoff = CK_BACKOFF_INITIALIZER;
	/* Acquire: pairs with the release CAS in push_chain. */
	uint64_t old = cbm_load_acquire_u64(&s->head);

	for (;;) {
		uint32_t first = head_index(old);
		uint32_t rest = first;
		uint32_t taken = 0;

		if (first == CBM_NIL) {
			*n = 0;
			return CBM_NIL;
		}
		/* I2/I3: the walk is only trusted if the CAS below succeeds. */
		while (taken < max && rest != CBM_NIL) {
			rest = cbm_load_relaxed_u32(&links[rest]);
			taken++;
		}
		CBM_YIELD_POINT(); /* widen the ABA window (I1) */
		if (cbm_cas_weak_acq_rel_u64(&s->head, &old,
					     pack(next_tag(s, old), rest))) {
			cbm_fetch_sub_relaxed_u64(&s->count, taken); /* I4 */
			*n = taken;
			return first;
		}
		ck_backoff_eb(&backoff);
	}
}

/*
 * Invariants of cbm_ilist: entries leave only all at once, by exchanging the
 * head with the empty list, so an entry's link is never read by anyone but
 * the thread that took the list, after it took it: no ABA exists, and the
 * high half of head can count entries, exactly, in the same CAS that links
 * them.
 */
void
cbm_ilist_init(struct cbm_ilist *l)
{
	cbm_store_relaxed_u64(&l->head, pack(0, CBM_NIL));
}

void
cbm_ilist_push(struct cbm_ilist *l, cbm_atomic_u32 *links, uint32_t idx)
{
	ck_backoff_t backoff = CK_BACKOFF_INITIALIZER;
	uint64_t old = cbm_load_relaxed_u64(&l->head);

	for (;;) {
		cbm_store_relaxed_u32(&links[idx], head_index(old));
		/* Release: pairs with the acquire of take_all's exchange.
		 * seq_cst: the pusher's next step may be a Dekker-style
		 * handshake with the consumer (reclaim.c, R4). */
		if (cbm_cas_weak_seq_cst_u64(&l->head, &old,
					     pack(head_high(old) + 1, idx)))
			return;
		ck_backoff_eb(&backoff);
	}
}

uint32_t
cbm_ilist_take_all(struct cbm_ilist *l, uint32_t *n)
{
	/* Acquire: pairs with the release CAS of every push (they form one
	 * release sequence on head). */
	uint64_t old = cbm_xchg_acq_rel_u64(&l->head, pack(0, CBM_NIL));

	*n = head_high(old);
	return head_index(old);
}
