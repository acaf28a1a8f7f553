/* SPDX-License-Identifier: MIT */
/*
 * General-purpose allocators as peers: glibc, jemalloc, mimalloc, tcmalloc.
 *
 * The same source serves all four. jemalloc, mimalloc and tcmalloc replace
 * malloc and free when a binary links them, so each gets a binary of its
 * own (meson.build), named by BENCH_MALLOC_NAME; the harness records in the
 * JSON context which library malloc really resolved to.
 *
 * They have no bulk calls: bulk32 loops over malloc and free, as a user of
 * them would.
 *
 * The mixed-size benchmarks (mixed.h) call malloc(size) and free, through
 * heap_alloc and heap_free: the process's one heap is the handle.
 */
#ifndef BENCH_PEER_MALLOC_H
#define BENCH_PEER_MALLOC_H

#include <cstddef>
#include <cstdlib>

#ifndef BENCH_MALLOC_NAME
#define BENCH_MALLOC_NAME "glibc"
#endif

struct peer_malloc {
	static constexpr const char *name = BENCH_MALLOC_NAME;
	static constexpr bool has_retire = false;
	/* malloc has no pool: the size class is all it needs. */
	struct pool {
		std::size_t size;
	};

	static bool init(std::size_t)
	{
		return true;
	}

	static void fini()
	{
	}

	static pool *create(std::size_t size, std::size_t)
	{
		return new pool{size};
	}

	static void destroy(pool *p)
	{
		delete p;
	}

	/* Nothing to arrange before callgrind counts (pairs.cc). */
	static void before_counting()
	{
	}

	static void thread_init()
	{
	}

	static void *get(pool *p)
	{
		return std::malloc(p->size);
	}

	static void put(pool *, void *buf)
	{
		std::free(buf);
	}

	static bool get_bulk(pool *p, void **bufs, unsigned n)
	{
		for (unsigned i = 0; i < n; i++) {
			bufs[i] = std::malloc(p->size);
			if (bufs[i] == nullptr) {
				put_bulk(p, bufs, i);
				return false;
			}
		}
		return true;
	}

	static void put_bulk(pool *, void *const *bufs, unsigned n)
	{
		for (unsigned i = 0; i < n; i++)
			std::free(bufs[i]);
	}

	/* The mixed-size peer's calls (mixed.h). */
	struct heap {
	};

	static heap *create_heap(bool)
	{
		return new heap;
	}

	static void destroy_heap(heap *h)
	{
		delete h;
	}

	static void *heap_alloc(heap *, std::size_t size)
	{
		return std::malloc(size);
	}

	static void heap_free(heap *, void *buf)
	{
		std::free(buf);
	}
};

#endif /* BENCH_PEER_MALLOC_H */
