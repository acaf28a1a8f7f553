/* SPDX-License-Identifier: MIT */
/*
 * The memory checkers that watch pool buffers: AddressSanitizer, whether
 * libcbm itself was built with it or only the program that links it, and
 * valgrind's memcheck. Each sees a pooled buffer as freed memory, so that
 * a program that touches a buffer after giving it back is caught at the
 * access, and memcheck also sees a buffer whose last pointer was lost as a
 * leak.
 *
 * Which checkers watch is a fact about the process, fixed before main
 * runs: ASan's runtime is in the process from its start or never (it must
 * come first in the library order), and so is valgrind. So it is read once,
 * by the first pool creation, into cbm_watchers, and a pool created while a
 * checker watches sends every call through the bookkeeping path (pool.h,
 * the fast word); other processes' fast paths never look at it. The hooks below run only
 * on the slow paths (hand out, give back, reclaim), where a process that
 * is not watched pays one load and a branch.
 *
 * ASan found at run time: the installed libcbm is not instrumented, but
 * the program's runtime exports its interface; a weak reference to
 * __asan_poison_memory_region is NULL unless that runtime is loaded. The
 * library's own accesses are not checked (it is not instrumented), which is
 * as it should be: it never reads or writes a pooled buffer (docs/design.md,
 * Isolation), except a debug pool's guard zone, which it writes while the
 * buffer is out.
 *
 * memcheck: each pool is a memcheck memory pool anchored at its arena's
 * base; a buffer handed out is a chunk of it (stride bytes: a debug pool's
 * guard zone is the library's, inside the chunk), a buffer given back is
 * freed from it (a second give-back is then memcheck's "illegal memory pool
 * address", in any pool), a chunk whose last pointer the application lost
 * is "definitely lost" at exit, and the pool's chunks go with it at
 * destroy, where cbm itself reports what is still held. Two copies of a
 * buffer's address the library keeps can make a lost one "still reachable"
 * instead: the pool's base address (the first buffer), and a per-CPU cache
 * slot that it was last taken from, until another buffer takes the slot. Only memcheck: under
 * callgrind or cachegrind pools keep their fast paths, so that instruction
 * counts are of the code that ships. A client request costs about six
 * instructions outside valgrind, but these sit only behind cbm_watchers.
 */
#ifndef CBM_WATCH_H
#define CBM_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "compiler.h"

#define CBM_WATCH_ASAN 1u
#define CBM_WATCH_MEMCHECK 2u

/* CBM_WATCH_*: set once by cbm_watch_start, then only read. Read only
 * where a pool exists: its creation ran cbm_watch_start, and whatever gave
 * the pool to this thread ordered that before. */
extern unsigned cbm_watchers;

/* Find the checkers (once per process; any thread) and return
 * cbm_watchers. */
unsigned cbm_watch_start(void);

static inline bool
cbm_watched(void)
{
	return cbm_unlikely(cbm_watchers != 0);
}

/* A new pool (memcheck: its memory pool, anchored at the arena's base). */
void cbm_watch_new_pool(const struct cbm_blocks *blocks);
/* n buffers from buf on, at the stride, come out of the frontier into the
 * pool for the first time: poisoned, or no access. */
void cbm_watch_fresh(const struct cbm_blocks *blocks, void *buf, uint32_t n);
/* Buffer buf leaves the pool for the application, or goes back to it. */
void cbm_watch_leave(const struct cbm_blocks *blocks, void *buf);
void cbm_watch_enter(const struct cbm_blocks *blocks, void *buf);
/*
 * A fork child's pool (reclaim.c's child handler, for each pool), of which
 * n buffers exist. Buffers that the parent's other threads held are lost
 * for good in the child (fork.c), and memcheck, which cannot tell them
 * from the child's own, would report each as a leak of the child: so under
 * memcheck the child keeps a reference to every buffer of the pool, and
 * its pool buffers are not leak-checked. Nothing otherwise.
 */
void cbm_watch_fork_child(const struct cbm_blocks *blocks, uint64_t n);

/* The arena, based at lo, is about to be unmapped (destroy, a create that
 * failed), of which [lo, lo + len) was used: leave no poisoned shadow and
 * no memory pool behind. */
void cbm_watch_drop(void *lo, size_t len);

#endif /* CBM_WATCH_H */
