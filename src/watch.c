/* SPDX-License-Identifier: MIT */
/*
 * The memory checkers' hooks (watch.h).
 */
#include "watch.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef CBM_HAVE_MEMCHECK
#include <memcheck.h>
#endif

#ifdef CBM_ASAN
#include <sanitizer/asan_interface.h>
#else
/* ASan's interface (sanitizer/asan_interface.h), weak: NULL unless the
 * program runs with ASan's runtime. */
void __asan_poison_memory_region(void const volatile *addr, size_t size)
	__attribute__((weak));
void __asan_unpoison_memory_region(void const volatile *addr, size_t size)
	__attribute__((weak));
#endif

unsigned cbm_watchers;

static bool
memcheck_runs(void)
{
#ifdef CBM_HAVE_MEMCHECK
	unsigned char byte = 0, vbits;

	/* Any tool answers RUNNING_ON_VALGRIND; only memcheck answers
	 * GET_VBITS (1: done), the others give the default, 0. */
	return RUNNING_ON_VALGRIND && VALGRIND_GET_VBITS(&byte, &vbits, 1) == 1;
#else
	return false;
#endif
}

static void
find_watchers(void)
{
	unsigned w = 0;

#ifdef CBM_ASAN
	w |= CBM_WATCH_ASAN;
#else
	if (__asan_poison_memory_region != NULL &&
	    __asan_unpoison_memory_region != NULL)
		w |= CBM_WATCH_ASAN;
#endif
	if (memcheck_runs())
		w |= CBM_WATCH_MEMCHECK;
	cbm_watchers = w;
}

unsigned
cbm_watch_start(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, find_watchers);
	return cbm_watchers;
}

/*
 * ASan keeps one shadow byte per 8-byte granule, and a shadow byte can only
 * say "the first k bytes are addressable". When the stride is not a
 * multiple of 8, two neighbouring buffers share a granule, whose shadow
 * byte no poisoning of one buffer can set without reading and rewriting
 * the other's part: two threads (or a thread and the reclamation thread)
 * doing so at once lose one update, and a held buffer is left poisoned.
 * And no value of that byte says "the first buffer's bytes are poisoned,
 * the second's are not". So only the granules wholly inside a buffer are
 * ever poisoned or unpoisoned; a granule shared with a neighbour (or with
 * the arena's tail) is never written and stays addressable, as
 * cbm_watch_fresh leaves it when the buffer first comes into the pool. No shadow byte then belongs to two buffers, and a buffer
 * whose own granules are unpoisoned is addressable from end to end. The
 * price: up to 7 bytes at each end of a pooled buffer go unwatched, and
 * only when the stride is not a multiple of 8. Rounding the stride up to 8
 * under ASan would watch them, but pools would then be laid out as no
 * other process lays them out, and ASan builds would stop testing the
 * packed layout (align 1) and the odd-stride pointer check.
 */
#define GRANULE ((uintptr_t)8) /* ASan's shadow scale is 3 everywhere */

static char *
own_granules(const struct cbm_blocks *blocks, void *buf, size_t *len)
{
	uintptr_t lo = ((uintptr_t)buf + GRANULE - 1) & ~(GRANULE - 1);
	uintptr_t hi = ((uintptr_t)buf + blocks->stride) & ~(GRANULE - 1);

	*len = hi > lo ? (size_t)(hi - lo) : 0;
	return (char *)lo;
}

void
cbm_watch_new_pool(const struct cbm_blocks *blocks)
{
#ifdef CBM_HAVE_MEMCHECK
	/* is_zeroed: a buffer handed out reads as defined (what its last
	 * holder left, or zeros), not as uninitialised: cbm_alloc's contents
	 * are unspecified, not undefined, and programs (tests/test_elastic.c
	 * among them) may look at them. */
	if (cbm_watchers & CBM_WATCH_MEMCHECK)
		VALGRIND_CREATE_MEMPOOL(blocks->base, 0, 1);
#else
	(void)blocks;
#endif
}

void
cbm_watch_fresh(const struct cbm_blocks *blocks, void *buf, uint32_t n)
{
	size_t bytes = (size_t)n * blocks->stride;

	if (cbm_watchers & CBM_WATCH_ASAN) {
		/* The reservation may inherit shadow that someone left
		 * poisoned there; the granules buffers share must start
		 * addressable. */
		__asan_unpoison_memory_region(buf, bytes);
		for (uint32_t i = 0; i < n; i++) {
			size_t len;
			char *own = own_granules(
				blocks,
				(char *)buf + (size_t)i * blocks->stride, &len);

			__asan_poison_memory_region(own, len);
		}
	}
#ifdef CBM_HAVE_MEMCHECK
	/* Not chunks yet: no access until handed out. */
	if (cbm_watchers & CBM_WATCH_MEMCHECK)
		VALGRIND_MAKE_MEM_NOACCESS(buf, bytes);
#endif
}

void
cbm_watch_leave(const struct cbm_blocks *blocks, void *buf)
{
	if (cbm_watchers & CBM_WATCH_ASAN) {
		size_t len;
		char *own = own_granules(blocks, buf, &len);

		__asan_unpoison_memory_region(own, len);
	}
#ifdef CBM_HAVE_MEMCHECK
	if (cbm_watchers & CBM_WATCH_MEMCHECK)
		VALGRIND_MEMPOOL_ALLOC(blocks->base, buf, blocks->stride);
#endif
}

void
cbm_watch_enter(const struct cbm_blocks *blocks, void *buf)
{
	if (cbm_watchers & CBM_WATCH_ASAN) {
		size_t len;
		char *own = own_granules(blocks, buf, &len);

		__asan_poison_memory_region(own, len);
	}
#ifdef CBM_HAVE_MEMCHECK
	if (cbm_watchers & CBM_WATCH_MEMCHECK)
		VALGRIND_MEMPOOL_FREE(blocks->base, buf);
#endif
}

void
cbm_watch_drop(void *lo, size_t len)
{
	if (lo == NULL)
		return;
	/* ASan does not clear the shadow on munmap. */
	if ((cbm_watchers & CBM_WATCH_ASAN) && len > 0)
		__asan_unpoison_memory_region(lo, len);
#ifdef CBM_HAVE_MEMCHECK
	if ((cbm_watchers & CBM_WATCH_MEMCHECK) && VALGRIND_MEMPOOL_EXISTS(lo))
		VALGRIND_DESTROY_MEMPOOL(lo);
#endif
}

/* What fork children keep, reachable from here for memcheck's leak check:
 * one pointer to the start of each buffer of each pool at the fork. */
struct kept {
	struct kept *next;
	void *bufs[];
};

static struct kept *kept_at_fork;

void
cbm_watch_fork_child(const struct cbm_blocks *blocks, uint64_t n)
{
	struct kept *k;

	if (!(cbm_watchers & CBM_WATCH_MEMCHECK))
		return;
	k = malloc(sizeof(*k) + n * sizeof(k->bufs[0]));
	if (k == NULL)
		return; /* memcheck may then report them; nothing worse */
	for (uint64_t i = 0; i < n; i++)
		k->bufs[i] = cbm_blocks_ptr(blocks, (uint32_t)i);
	k->next = kept_at_fork;
	kept_at_fork = k;
}
