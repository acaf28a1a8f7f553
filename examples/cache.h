/* SPDX-License-Identifier: MIT */
/*
 * The epoll server's response cache: one shared, ready-to-send 200
 * response, in a heap buffer of its own size, that workers rebuild under load.
 *
 * Synchronization:
 *
 *   call            who              with
 *   cache_current   any worker       inside cbm_read_lock/cbm_read_unlock
 *   cache_refresh   any worker       concurrently with itself and readers
 *   cache_init/fini one thread       no other call (before workers start,
 *                                    after they stop)
 *
 * Publication: a refresh fills a fresh buffer, then swaps it in with one
 * atomic exchange (release: the bytes are visible to whoever loads the new
 * pointer, which cache_current does with acquire), and hands the old entry
 * to bufs_retire. The old entry returns to the heap only after a grace
 * period, so a reader that loaded it inside its read-side section can
 * finish with it. Two refreshes may race: each retires what its own
 * exchange returned, so every entry is retired exactly once.
 *
 * A reader must be done with the entry when it leaves its section: it
 * sends from it (a non-blocking send, which never waits) or copies from it,
 * never keeps the pointer (epoll_server.c, send_cached).
 */
#ifndef EXAMPLES_CACHE_H
#define EXAMPLES_CACHE_H

#include <stdatomic.h>
#include <stdint.h>

#include "bufs.h"
#include "http.h"

struct cache_entry {
	struct bufs_rcu rcu; /* for bufs_retire */
	uint64_t generation; /* which build this is (X-Generation) */
	uint32_t head_len;   /* bytes of status line and headers */
	uint32_t len;	     /* head_len + body */
	char data[];	     /* the response */
};

struct cache {
	_Atomic(struct cache_entry *) current;
	_Atomic uint64_t generation; /* last generation built */
	_Atomic uint64_t refreshes;  /* entries swapped in by refresh */
	_Atomic uint64_t dry;	     /* refreshes skipped: no buffer */
	struct bufs *bufs;
	const char *server; /* the Server header */
	size_t body_size;
};

/* Room an entry takes before its response (opts.c sizes bodies by it). */
#define CACHE_ENTRY_HEAD 64
_Static_assert(sizeof(struct cache_entry) <= CACHE_ENTRY_HEAD,
	       "an entry's head outgrew CACHE_ENTRY_HEAD");

/* Build generation 1. Returns 0, or -ENOMEM when no buffer is free. */
int cache_init(struct cache *c, struct bufs *bufs, const char *server,
	       size_t body_size);

/*
 * The current entry. Caller contract: inside a cbm_read_lock section, and
 * done with the entry before cbm_read_unlock. Never NULL between
 * cache_init and cache_fini.
 */
static inline const struct cache_entry *
cache_current(struct cache *c)
{
	/* Pairs with the release in cache_refresh's exchange. */
	return atomic_load_explicit(&c->current, memory_order_acquire);
}

/* Build a new entry and retire the old one. Returns 0, or -ENOMEM (the
 * heap has no buffer to give; the current entry stays). Never blocks. */
int cache_refresh(struct cache *c);

/* Give the last entry back. Only when no reader is left. */
void cache_fini(struct cache *c);

#endif /* EXAMPLES_CACHE_H */
