/* SPDX-License-Identifier: MIT */
/*
 * The library's only door to memory shared between threads.
 *
 * Every shared word is a C11 atomic, read and written through these helpers,
 * whose names carry the memory order. Nothing shared is read or written with
 * plain or volatile accesses: ThreadSanitizer checks C11 atomics, and so the
 * code it checks is the code that ships (docs/design.md, "Debug pools and sanitizers").
 *
 * Each caller that uses an acquire or a release names, in a comment, the
 * operation it pairs with.
 */
#ifndef CBM_ATOMICS_H
#define CBM_ATOMICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef _Atomic uint64_t cbm_atomic_u64;
typedef _Atomic uint32_t cbm_atomic_u32;
typedef _Atomic uint8_t cbm_atomic_u8;

static inline uint64_t
cbm_load_relaxed_u64(const cbm_atomic_u64 *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline uint64_t
cbm_load_acquire_u64(const cbm_atomic_u64 *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

static inline void
cbm_store_relaxed_u64(cbm_atomic_u64 *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline void
cbm_store_release_u64(cbm_atomic_u64 *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_release);
}

/* On failure *expected is reloaded with acquire. */
static inline bool
cbm_cas_weak_acq_rel_u64(cbm_atomic_u64 *p, uint64_t *expected,
			 uint64_t desired)
{
	return atomic_compare_exchange_weak_explicit(p, expected, desired,
						     memory_order_acq_rel,
						     memory_order_acquire);
}

/* Relaxed: for claims of a number that publishes no data (frontier.h). */
static inline bool
cbm_cas_weak_relaxed_u64(cbm_atomic_u64 *p, uint64_t *expected,
			 uint64_t desired)
{
	return atomic_compare_exchange_weak_explicit(p, expected, desired,
						     memory_order_relaxed,
						     memory_order_relaxed);
}

static inline bool
cbm_cas_weak_relaxed_u32(cbm_atomic_u32 *p, uint32_t *expected,
			 uint32_t desired)
{
	return atomic_compare_exchange_weak_explicit(p, expected, desired,
						     memory_order_relaxed,
						     memory_order_relaxed);
}

/* Sequentially consistent: for the rare places that need a single total
 * order with other seq_cst operations (a Dekker-style handshake). */
static inline bool
cbm_cas_weak_seq_cst_u64(cbm_atomic_u64 *p, uint64_t *expected,
			 uint64_t desired)
{
	return atomic_compare_exchange_weak(p, expected, desired);
}

static inline uint64_t
cbm_load_seq_cst_u64(const cbm_atomic_u64 *p)
{
	return atomic_load(p);
}

static inline uint64_t
cbm_xchg_acq_rel_u64(cbm_atomic_u64 *p, uint64_t v)
{
	return atomic_exchange_explicit(p, v, memory_order_acq_rel);
}

static inline uint64_t
cbm_fetch_add_relaxed_u64(cbm_atomic_u64 *p, uint64_t v)
{
	return atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

static inline uint64_t
cbm_fetch_sub_relaxed_u64(cbm_atomic_u64 *p, uint64_t v)
{
	return atomic_fetch_sub_explicit(p, v, memory_order_relaxed);
}

/*
 * A counter with a single writer at a time (the writer holds a lock, or owns
 * the counter's CPU): a relaxed load and store, no read-modify-write, so it
 * costs what a plain increment costs, while readers elsewhere (statistics)
 * read it without a data race.
 */
static inline void
cbm_counter_add_owned(cbm_atomic_u64 *p, uint64_t v)
{
	cbm_store_relaxed_u64(p, cbm_load_relaxed_u64(p) + v);
}

static inline uint32_t
cbm_load_relaxed_u32(const cbm_atomic_u32 *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline void
cbm_store_relaxed_u32(cbm_atomic_u32 *p, uint32_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline void
cbm_store_release_u32(cbm_atomic_u32 *p, uint32_t v)
{
	atomic_store_explicit(p, v, memory_order_release);
}

static inline uint32_t
cbm_xchg_acquire_u32(cbm_atomic_u32 *p, uint32_t v)
{
	return atomic_exchange_explicit(p, v, memory_order_acquire);
}

static inline uint32_t
cbm_load_seq_cst_u32(const cbm_atomic_u32 *p)
{
	return atomic_load(p);
}

static inline void
cbm_store_seq_cst_u32(cbm_atomic_u32 *p, uint32_t v)
{
	atomic_store(p, v);
}

static inline uint32_t
cbm_xchg_seq_cst_u32(cbm_atomic_u32 *p, uint32_t v)
{
	return atomic_exchange(p, v);
}

static inline uint32_t
cbm_fetch_add_relaxed_u32(cbm_atomic_u32 *p, uint32_t v)
{
	return atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

static inline uint8_t
cbm_load_relaxed_u8(const cbm_atomic_u8 *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline void
cbm_store_relaxed_u8(cbm_atomic_u8 *p, uint8_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline bool
cbm_cas_strong_relaxed_u8(cbm_atomic_u8 *p, uint8_t *expected, uint8_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired,
						       memory_order_relaxed,
						       memory_order_relaxed);
}

#endif /* CBM_ATOMICS_H */
