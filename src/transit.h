/* SPDX-License-Identifier: MIT */
/*
 * Buffers in transit between the pool's places, and the stable view that
 * the NULL decision and the statistics are built on.
 *
 * The places a free buffer can be are the freelist, the depot's full
 * magazines and the CPU caches (and, for retired buffers, the retired list
 * and the batch in flight). A library call that moves buffers from one
 * place to another holds them for a while in none: a magazine taken from
 * the depot and not yet spilled, a refill copied into a held cache whose
 * word still reads what it read before, a drain whose buffers are already
 * in the depot while the cache's word is not yet released. A dry
 * allocation that looked only at the places would miss them, and give up
 * with buffers free (docs/design.md, "Capacity means capacity").
 *
 * Invariants:
 *  T1. Every move between places begins (cbm_transit_begin) before the
 *      first buffer leaves its source, and ends (cbm_transit_end) after the
 *      last one landed and its destination was published (a cache's word
 *      released). Moves between the application and one place (a pop, a
 *      push, a free straight onto the freelist) are not moves in this
 *      sense: the fast path never begins one and pays nothing.
 *  T2. The word: low 32 bits, moves in flight (bits 0-23 the
 *      application's calls', bits 24-31 the reclamation thread's); high 32
 *      bits, how many moves that moved something have ended. So two reads
 *      that return the same word with no move in flight bracket an interval
 *      in which no buffer was in transit and none went from one place to
 *      another (up to 2^32 moves between the reads).
 *  T3. A move that begins and then finds nothing to move ends without
 *      counting (cbm_transit_end with moved false): it changed nothing a
 *      reader can see, and dry allocations probing an empty pool then never
 *      disturb each other's views. Movers look before they begin, so on an
 *      empty pool they do not even do that.
 *  T4. The reclamation thread's moves never wait for anything while in
 *      flight (each begins after it took what it needs: a cache, the batch),
 *      so a reader may wait for them without a bound; the application's
 *      may last as long as their thread is preempted, so a reader that
 *      must not block (stats) only retries a few times around them. Which
 *      kind a move is comes from the thread that makes it (cbm_mover).
 *  T5. reclaimer_ended counts the reclamation thread's moves that ended,
 *      and is counted before the move's end is (release, pairs with the
 *      acquire in cbm_transit_reclaimer_ended). So a reader that read it
 *      before its first look at the word, and finds it unchanged and the
 *      word showing no reclaimer move in flight after its last look (its
 *      acquire load of the word, cbm_transit_reclaimer_since), knows that
 *      no move of that thread began after its first look and ended or was
 *      in flight by its last: a failed read that one did overlap is waited
 *      out, not counted as one of the few tries around the application's
 *      moves (T4). (A reading that began with an application move in
 *      flight skips read_end's fence and may count a try for a reclaimer
 *      move it saw part of: it is approximate anyway.)
 *
 * Memory order: begin is a relaxed increment followed by a release fence,
 * so a reader that sees any effect of the move (through an acquire of the
 * place, or an acquire fence after reading it) also sees the move in
 * flight when it reads the word again. End is a release increment that
 * pairs with the acquire load of a reader's first read: a reader that sees
 * the move ended sees where its buffers landed. Readers use
 * cbm_transit_read_begin / cbm_transit_read_end the way a seqlock's readers
 * do. (gcc does not let ThreadSanitizer builds use fences; there the fences
 * become seq_cst accesses of the word, which x86-64, the one machine TSan
 * builds run on, executes as it would the fenced ones. Everything the
 * readers read is atomic, so TSan has no data race to miss either way.)
 */
#ifndef CBM_TRANSIT_H
#define CBM_TRANSIT_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"
#include "compiler.h"
#include "contract.h"

struct cbm_transit {
	_Alignas(CBM_CACHELINE) cbm_atomic_u64 word; /* T2 */
	cbm_atomic_u64 reclaimer_ended;		     /* T5 */
};

#define CBM_TRANSIT_IN_FLIGHT 0xffffffffu
#define CBM_TRANSIT_BY_RECLAIMER 0xff000000u
#define CBM_TRANSIT_ENDED ((uint64_t)1 << 32)

/* What one move in flight adds to the word: 1 for the application's calls,
 * 1 << 24 on the reclamation thread (set there at its start, T4). */
extern _Thread_local uint32_t cbm_mover;
#define CBM_MOVER_APPLICATION 1u
#define CBM_MOVER_RECLAIMER (1u << 24)

static inline void
cbm_transit_init(struct cbm_transit *t)
{
	cbm_store_relaxed_u64(&t->word, 0);
	cbm_store_relaxed_u64(&t->reclaimer_ended, 0);
}

/* In a fork child: the threads whose moves were in flight do not exist
 * there, and their buffers stay out of the child's pool; nothing may wait
 * for those moves to end. */
static inline void
cbm_transit_fork_child(struct cbm_transit *t)
{
	uint64_t w = cbm_load_relaxed_u64(&t->word);

	cbm_store_relaxed_u64(&t->word,
			      (w + CBM_TRANSIT_ENDED) &
				      ~(uint64_t)CBM_TRANSIT_IN_FLIGHT);
}

/* T1: before the first buffer of a move leaves its source. */
static inline void
cbm_transit_begin(struct cbm_transit *t)
{
#ifdef CBM_TSAN
	atomic_fetch_add(&t->word, cbm_mover);
#else
	cbm_fetch_add_relaxed_u64(&t->word, cbm_mover);
	/* Release: pairs with the reader's acquire fence in read_end (the
	 * source's change is only seen with the move in flight). */
	atomic_thread_fence(memory_order_release);
#endif
}

/* T1: after the last buffer landed and its place was published; moved is
 * false when the move found nothing to take (T3). */
static inline void
cbm_transit_end(struct cbm_transit *t, bool moved)
{
	uint64_t old;

	/* T5, before the end itself; release: pairs with the acquire load of
	 * a reader's first look at it (cbm_transit_reclaimer_ended). */
	if (cbm_mover == CBM_MOVER_RECLAIMER)
		atomic_fetch_add_explicit(&t->reclaimer_ended, 1,
					  memory_order_release);
	/* Release: pairs with the acquire in read_begin (and the one in
	 * cbm_transit_reclaimer_since, which then sees the count above). */
	old = atomic_fetch_add_explicit(
		&t->word, (moved ? CBM_TRANSIT_ENDED : 0) - cbm_mover,
		memory_order_release);

	/* T1: only a move begun by a mover of this kind ends. */
	CBM_ASSERT(((uint32_t)old &
		    (cbm_mover == CBM_MOVER_RECLAIMER
			     ? CBM_TRANSIT_BY_RECLAIMER
			     : CBM_TRANSIT_IN_FLIGHT &
				       ~CBM_TRANSIT_BY_RECLAIMER)) >=
		   cbm_mover);
	(void)old;
}

static inline uint32_t
cbm_transit_in_flight(uint64_t word)
{
	return (uint32_t)word & CBM_TRANSIT_IN_FLIGHT;
}

/* Moves in flight on the reclamation thread (T4). */
static inline bool
cbm_transit_reclaimer_moving(uint64_t word)
{
	return ((uint32_t)word & CBM_TRANSIT_BY_RECLAIMER) != 0;
}

/* A reader's first look: the word, with acquire (pairs with end). */
static inline uint64_t
cbm_transit_read_begin(const struct cbm_transit *t)
{
	return cbm_load_acquire_u64(&t->word);
}

/*
 * A reader's last look: true when the word is what read_begin returned,
 * start. With nothing in flight in start (or only the reader's own moves),
 * nothing moved meanwhile, so that what the reader saw of the places in
 * between was one consistent state (T2).
 */
static inline bool
cbm_transit_read_end(const struct cbm_transit *t, uint64_t start)
{
	uint64_t now;

#ifdef CBM_TSAN
	now = atomic_load(&t->word);
#else
	/* Acquire: pairs with the release fence in begin. */
	atomic_thread_fence(memory_order_acquire);
	now = cbm_load_relaxed_u64(&t->word);
#endif
	return now == start;
}

/* T5: a reader's look at the reclamation thread's count, before its first
 * look at the word. Acquire: pairs with the release increment in end, so a
 * move counted here is also seen begun by the look at the word after it. */
static inline uint64_t
cbm_transit_reclaimer_ended(const struct cbm_transit *t)
{
	return cbm_load_acquire_u64(&t->reclaimer_ended);
}

/*
 * T5: after a read that failed, true when a move of the reclamation thread
 * overlapped it: one in flight now, or one that ended since ended_before
 * (cbm_transit_reclaimer_ended, read before the read's first look).
 */
static inline bool
cbm_transit_reclaimer_since(const struct cbm_transit *t, uint64_t ended_before)
{
	/* Acquire: pairs with end's release increment of the word (every
	 * change of the word is a read-modify-write, so a later one carries
	 * it), after which the count's increment is seen. */
	uint64_t now = cbm_load_acquire_u64(&t->word);

	return cbm_transit_reclaimer_moving(now) ||
	       cbm_load_relaxed_u64(&t->reclaimer_ended) != ended_before;
}

#endif /* CBM_TRANSIT_H */
