/* SPDX-License-Identifier: MIT */
/*
 * A size-class heap (cbm.h, cbm_heap): one elastic pool per size class,
 * each at a fixed slot of one reservation, and one byte budget for all.
 *
 * The address map. The reservation is nclasses slots of 2^slot_shift
 * bytes, no access until a class's pool places its arena at its slot
 * (arena.h, cbm_arena_place). A buffer of class c lies in slot c, so the
 * class of a pointer p is (p - base) >> slot_shift: a pointer whose
 * quotient is nclasses or more (or below base: the subtraction wraps) is
 * in no class; one in a slot is then checked by that class's pool exactly
 * as cbm_free checks any pointer (foreign past its buffers, interior).
 *
 * Invariants:
 *  H1. pools[c] goes from NULL to a pool once, under the class lock, and
 *      never changes again until destroy; the pool's arena is slot c.
 *  H2. Every class pool charges the heap's budget for its memory
 *      (budget.h, B1-B2), so the bytes all classes hold from the OS never
 *      exceed max_bytes, and cbm_heap_bytes reads them in O(1).
 *  H3. A slot holds its class's ceiling: max_capacity x stride <= 2^
 *      slot_shift (create sizes slots by the classes' strides, which
 *      CBM_DEBUG in the environment lengthens too).
 *
 * Capacity under the ceiling. A class pool that finds itself dry calls
 * its ceiling hook (heap.c, at_ceiling), which trims and releases every
 * other class, and looks again; a second time after the others' moves in
 * flight ended (a background release pass holds the free buffers it gives
 * back, and their charge, until it ends); so cbm_heap_alloc gives NULL at the
 * ceiling only when the memory the others could give back did not make
 * room. A class grows in whole release groups (frontier.h, F6; at most 7
 * pages at spacing 4), so every group can go back whole and a class fills
 * the ceiling rounded down to its groups. What no release can give back
 * stays charged: pages a free buffer shares with a held one (buffers below
 * a page). A charge in flight in another class (a
 * growth between its charge and its publication; a taker of a released
 * group racing another for the last one, whose charge goes back) reads as
 * spent for that moment, which the NULL decision cannot tell from memory
 * held: one more reason the hook looks again.
 *
 * Ordering: the store of pools[c] is a release, paired with the acquire
 * load of every call that finds it (the allocation path and the control
 * calls), so the pool's contents are seen whole. The free path reads it
 * relaxed: it frees a buffer that some allocation of class c handed out
 * after loading pools[c], and reached the freeing thread through the
 * application's own synchronization, so that load happens before this one
 * and read-read coherence gives this one the same pointer (the pool's
 * contents come along the same happens-before chain).
 */
#ifndef CBM_HEAP_H
#define CBM_HEAP_H

#include <stdatomic.h>
#include <stdint.h>

#include "budget.h"
#include "cbm.h"
#include "compiler.h"
#include "sizeclass.h"

struct cbm_heap {
	/* Read by every call: one line (with the lookup's first fields). */
	_Alignas(CBM_CACHELINE) uintptr_t base; /* the reservation */
	unsigned slot_shift;
	unsigned nclasses;
	size_t limit; /* max_size: the largest request */
	struct cbm_sizeclasses classes;

	/* H1: each class's pool, NULL until its first allocation. */
	_Alignas(CBM_CACHELINE) cbm_pool *_Atomic pools[CBM_CLASSES_MAX];

	/* H2: max_bytes, or no limit but the address space. */
	_Alignas(CBM_CACHELINE) struct cbm_budget budget;

	/* Cold: what making a class needs. */
	size_t reserved_bytes;		      /* nclasses << slot_shift */
	size_t max_capacity[CBM_CLASSES_MAX]; /* per class: H3 */
	size_t stride[CBM_CLASSES_MAX];	      /* per class: its pool's */
	size_t magazine_bytes; /* about what a class's magazine holds */
	unsigned flags, release_ms, idle_trim_ms;
	char name[64];
};

#endif /* CBM_HEAP_H */
