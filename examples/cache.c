/* SPDX-License-Identifier: MIT */
/* The response cache (cache.h): build, publish, retire. */
#include "cache.h"

#include <errno.h>
#include <string.h>

#include "http.h"

static struct cache_entry *
build(struct cache *c)
{
	/* The entry's own size: a heap gives a small class, a pool (whose
	 * buffers opts.c checked it fits) a whole buffer. */
	struct cache_entry *e = bufs_get_size(
		c->bufs, CACHE_ENTRY_HEAD + RESPONSE_HEAD_MAX + c->body_size,
		NULL);
	uint64_t gen;

	if (e == NULL)
		return NULL;
	gen = atomic_fetch_add_explicit(&c->generation, 1,
					memory_order_relaxed) +
	      1;
	e->generation = gen;
	e->head_len =
		(uint32_t)http_ok_head(e->data, c->server, c->body_size, gen);
	http_fill_body(e->data + e->head_len, c->body_size);
	e->len = e->head_len + (uint32_t)c->body_size;
	return e;
}

int
cache_init(struct cache *c, struct bufs *bufs, const char *server,
	   size_t body_size)
{
	struct cache_entry *e;

	memset(c, 0, sizeof(*c));
	c->bufs = bufs;
	c->server = server;
	c->body_size = body_size;
	e = build(c);
	if (e == NULL)
		return -ENOMEM;
	atomic_store_explicit(&c->current, e, memory_order_release);
	return 0;
}

int
cache_refresh(struct cache *c)
{
	struct cache_entry *fresh = build(c), *old;

	if (fresh == NULL) {
		atomic_fetch_add_explicit(&c->dry, 1, memory_order_relaxed);
		return -ENOMEM;
	}
	/*
	 * Release: fresh's bytes before the pointer (pairs with the acquire
	 * in cache_current). Acquire: old's bytes were written by whoever
	 * published it, and we are about to give old back.
	 */
	old = atomic_exchange_explicit(&c->current, fresh,
				       memory_order_acq_rel);
	/* Readers that loaded old may still be sending from it: it comes
	 * back after they have all left their sections. */
	bufs_retire(c->bufs, &old->rcu);
	atomic_fetch_add_explicit(&c->refreshes, 1, memory_order_relaxed);
	return 0;
}

void
cache_fini(struct cache *c)
{
	struct cache_entry *e = atomic_exchange_explicit(&c->current, NULL,
							 memory_order_acq_rel);

	/* No reader is left (caller contract): no grace period needed. */
	bufs_put(c->bufs, e);
}
