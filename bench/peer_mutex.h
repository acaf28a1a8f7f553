/* SPDX-License-Identifier: MIT */
/*
 * The naive baseline: one freelist of fixed-size buffers behind one
 * pthread mutex, what a pool looks like before anyone measures it. Every
 * call takes the lock, so every thread contends on one line.
 *
 * Deliberately plain: links live inside the free buffers, and buffers never
 * handed out yet are carved from the arena on demand (so creating a big
 * pool touches nothing, as with the other pools). A bulk call takes the
 * lock once, which is the one thing such a pool usually gets right.
 */
#ifndef BENCH_PEER_MUTEX_H
#define BENCH_PEER_MUTEX_H

#include <cstddef>
#include <cstdint>

#include <pthread.h>
#include <sys/mman.h>

struct peer_mutex {
	static constexpr const char *name = "mutex";
	static constexpr bool has_retire = false;

	struct pool {
		pthread_mutex_t lock;
		void *head;  /* free buffers, linked through their first word */
		char *fresh; /* next buffer never handed out */
		char *end;   /* end of the arena */
		std::size_t stride;
		char *base;
	};

	static bool init(std::size_t)
	{
		return true;
	}

	static void fini()
	{
	}

	static pool *create(std::size_t size, std::size_t capacity)
	{
		std::size_t stride = (size + 63) & ~std::size_t{63};
		void *mem =
			mmap(nullptr, stride * capacity, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (mem == MAP_FAILED)
			return nullptr;
		pool *p = new pool;
		pthread_mutex_init(&p->lock, nullptr);
		p->head = nullptr;
		p->base = static_cast<char *>(mem);
		p->fresh = p->base;
		p->end = p->base + stride * capacity;
		p->stride = stride;
		return p;
	}

	static void destroy(pool *p)
	{
		munmap(p->base, static_cast<std::size_t>(p->end - p->base));
		pthread_mutex_destroy(&p->lock);
		delete p;
	}

	/* Nothing to arrange before callgrind counts (pairs.cc). */
	static void before_counting()
	{
	}

	static void thread_init()
	{
	}

	/* Caller holds the lock. */
	static void *pop_locked(pool *p)
	{
		void *buf = p->head;

		if (buf != nullptr) {
			p->head = *static_cast<void **>(buf);
		} else if (p->fresh < p->end) {
			buf = p->fresh;
			p->fresh += p->stride;
		}
		return buf;
	}

	/* Caller holds the lock. */
	static void push_locked(pool *p, void *buf)
	{
		*static_cast<void **>(buf) = p->head;
		p->head = buf;
	}

	static void *get(pool *p)
	{
		pthread_mutex_lock(&p->lock);
		void *buf = pop_locked(p);
		pthread_mutex_unlock(&p->lock);
		return buf;
	}

	static void put(pool *p, void *buf)
	{
		pthread_mutex_lock(&p->lock);
		push_locked(p, buf);
		pthread_mutex_unlock(&p->lock);
	}

	/* All or nothing, as the other pools' bulk calls. */
	static bool get_bulk(pool *p, void **bufs, unsigned n)
	{
		unsigned got = 0;

		pthread_mutex_lock(&p->lock);
		while (got < n && (bufs[got] = pop_locked(p)) != nullptr)
			got++;
		bool all = got == n;
		while (!all && got > 0)
			push_locked(p, bufs[--got]);
		pthread_mutex_unlock(&p->lock);
		return all;
	}

	static void put_bulk(pool *p, void *const *bufs, unsigned n)
	{
		pthread_mutex_lock(&p->lock);
		for (unsigned i = 0; i < n; i++)
			push_locked(p, bufs[i]);
		pthread_mutex_unlock(&p->lock);
	}
};

#endif /* BENCH_PEER_MUTEX_H */
