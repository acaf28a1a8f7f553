/* SPDX-License-Identifier: MIT */
/*
 * Debug pools' buffer states and guard zones, and the memory checkers'
 * hooks that every pool calls (watch.h).
 *
 * A debug pool keeps a state per buffer (pooled, held, retired, dropped),
 * changed with a compare-and-swap from the state each transition expects,
 * and a guard zone after each buffer, filled when it is handed out and
 * checked when it comes back. A transition that finds another state is a
 * double free (or a broken pool), reported, and the buffer is kept out.
 */
#ifndef CBM_DEBUG_H
#define CBM_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "atomics.h"
#include "compiler.h"
#include "watch.h"

struct cbm_pool;

/* Where a debug pool's buffer is. */
enum cbm_block_state {
	CBM_BLOCK_POOLED = 0, /* freelist, depot or a CPU cache */
	CBM_BLOCK_HELD,	      /* handed to the application */
	CBM_BLOCK_RETIRED,    /* waiting for a grace period */
	CBM_BLOCK_DROPPED,    /* found damaged; never handed out again */
};

/* A debug pool's part: one state per buffer, and where each buffer was
 * last handed out. */
struct cbm_debug {
	cbm_atomic_u8 *state; /* NULL unless the pool is a debug pool */
	/* depth return addresses per buffer: the application's call, then
	 * with CBM_DEBUG=backtrace the frames below it (NULL-terminated when
	 * fewer). Written by the call that hands the buffer out, which owns
	 * it; read at destroy, which is ordered after every call. */
	void **sites;
	unsigned depth;
	const struct cbm_blocks *blocks;
	size_t block_size;	      /* the guard zone follows it */
	const struct cbm_pool *owner; /* named in reports */
};

/* Frames kept per buffer with CBM_DEBUG=backtrace. */
#define CBM_DEBUG_BACKTRACE 16

/*
 * What the environment asks of pools created now: 0 when CBM_DEBUG is
 * unset, empty or "0"; 1 (debug pools that keep the caller of each
 * allocation) for "1"; CBM_DEBUG_BACKTRACE (debug pools that keep a
 * backtrace of each) for "backtrace". Any other value is said on stderr,
 * once, and taken as "1": a user who asked for checks gets them.
 */
unsigned cbm_debug_env(void);

/* Room for a debug pool's allocation sites: depth frames (at least 1) for
 * each of max buffers, reserved (arena.h) and touched as buffers come into
 * use. 0 or -ENOMEM. cbm_debug_drop_sites gives it back (none: a no-op). */
int cbm_debug_keep_sites(struct cbm_debug *d, uint64_t max, unsigned depth);
void cbm_debug_drop_sites(struct cbm_debug *d, uint64_t max);

/* Buffer idx is being handed out to a call made from caller (a return
 * address); it must be POOLED. Arms its guard zone and keeps the caller.
 * Otherwise reports CBM_ERR_CORRUPT and returns false: the caller must not
 * hand it out (someone else holds it). */
bool cbm_debug_on_alloc(const struct cbm_debug *d, uint32_t idx, void *caller);

/* Where buffer idx was last handed out, for a human: " allocated at ADDR
 * (OBJECT+OFFSET)" and, with backtraces, the frames below it, "<- ...";
 * into out (n bytes, always terminated). */
void cbm_debug_describe_site(const struct cbm_debug *d, uint32_t idx, char *out,
			     size_t n);

/* The application gives buffer idx back (to POOLED, or to RETIRED). false,
 * after reporting, if it was not HELD or its guard zone was written; it
 * must then not be put in the pool. */
bool cbm_debug_on_release(const struct cbm_debug *d, uint32_t idx,
			  enum cbm_block_state to, const char *op);

/* The reclamation thread returns retired buffer idx to the pool; it must
 * be RETIRED. Otherwise reports CBM_ERR_CORRUPT and returns false: the
 * caller must leave it out. */
bool cbm_debug_on_reclaim(const struct cbm_debug *d, uint32_t idx);

/*
 * The memory checkers (watch.h): a pooled buffer is poisoned under ASan
 * and freed memory to memcheck, so that an application that touches a
 * buffer after giving it back is caught at the access. A process that no
 * checker watches pays a load and a branch, on slow paths only.
 */
static inline void
cbm_san_enter_pool(const struct cbm_blocks *blocks, void *buf)
{
	if (cbm_watched())
		cbm_watch_enter(blocks, buf);
}

static inline void
cbm_san_leave_pool(const struct cbm_blocks *blocks, void *buf)
{
	if (cbm_watched())
		cbm_watch_leave(blocks, buf);
}

/* At create, once the geometry is known (memcheck's pool). */
static inline void
cbm_san_new_pool(const struct cbm_blocks *blocks)
{
	if (cbm_watched())
		cbm_watch_new_pool(blocks);
}

/* n buffers, slots[0] first and the others after it at the stride, come
 * out of the frontier into the pool for the first time. */
static inline void
cbm_san_fresh(const struct cbm_blocks *blocks, void *const *slots, uint32_t n)
{
	if (cbm_watched() && n > 0)
		cbm_watch_fresh(blocks, slots[0], n);
}

/* Before the arena is unmapped, by destroy or by a create that failed,
 * with [lo, lo + len) what the pool used (lo: the arena's base): no
 * poisoned shadow (ASan does not clear it on munmap) and no memcheck pool
 * are left for whatever is mapped there next. */
static inline void
cbm_san_clear(void *lo, size_t len)
{
	if (cbm_watched())
		cbm_watch_drop(lo, len);
}

#endif /* CBM_DEBUG_H */
