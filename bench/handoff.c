/* SPDX-License-Identifier: MIT */
/*
 * SPSC hand-off over ck_ring; see handoff.h for the contract.
 *
 * A waiting side spins briefly, then yields: when threads outnumber CPUs,
 * the partner it waits for may be runnable on this very CPU, and spinning
 * through the time slice would measure the scheduler, not the pool.
 */
#include <sched.h>
#include <stdlib.h>

#include <ck_pr.h>
#include <ck_ring.h>

#include "handoff.h"

#define SPINS_BEFORE_YIELD 128

struct bench_handoff {
	struct ck_ring ring;
	struct ck_ring_buffer *slots;
};

/* aligned_alloc wants a multiple of the alignment. */
static size_t
lines(size_t bytes)
{
	return (bytes + CK_MD_CACHELINE - 1) & ~(size_t)(CK_MD_CACHELINE - 1);
}

struct bench_handoff *
bench_handoff_create(unsigned slots)
{
	struct bench_handoff *h;

	if (slots < 2 || (slots & (slots - 1)) != 0)
		return NULL;
	h = aligned_alloc(CK_MD_CACHELINE, lines(sizeof(*h)));
	if (h == NULL)
		return NULL;
	/* The slots get lines of their own: the ring's indices are
	 * written by both sides, each slot by one side at a time. */
	h->slots = aligned_alloc(CK_MD_CACHELINE,
				 lines(slots * sizeof(struct ck_ring_buffer)));
	if (h->slots == NULL) {
		free(h);
		return NULL;
	}
	ck_ring_init(&h->ring, slots);
	return h;
}

void
bench_handoff_destroy(struct bench_handoff *h)
{
	if (h == NULL)
		return;
	free(h->slots);
	free(h);
}

static void
wait_a_little(unsigned *spins)
{
	if (++*spins < SPINS_BEFORE_YIELD) {
		ck_pr_stall();
		return;
	}
	*spins = 0;
	sched_yield();
}

void
bench_handoff_send(struct bench_handoff *h, void *const *bufs, unsigned n)
{
	unsigned spins = 0;

	for (unsigned i = 0; i < n;) {
		if (ck_ring_enqueue_spsc(&h->ring, h->slots, bufs[i]))
			i++;
		else
			wait_a_little(&spins);
	}
}

void
bench_handoff_receive(struct bench_handoff *h, void **bufs, unsigned n)
{
	unsigned spins = 0;

	for (unsigned i = 0; i < n;) {
		if (ck_ring_dequeue_spsc(&h->ring, h->slots, &bufs[i]))
			i++;
		else
			wait_a_little(&spins);
	}
}
