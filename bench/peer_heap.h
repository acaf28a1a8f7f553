/* SPDX-License-Identifier: MIT */
/*
 * The subject of the mixed-size benchmarks (mixed.h, mixed_pairs.cc): one
 * cbm_heap that every thread shares, through the public C API only, with
 * its default configuration (classes from 64 B to 1 MiB, four per
 * doubling, no ceiling but the address space, each class an elastic pool
 * made on its first allocation).
 */
#ifndef BENCH_PEER_HEAP_H
#define BENCH_PEER_HEAP_H

#include <cstddef>

#include "cbm.h"
#include "peer_cbm.h"

struct peer_heap {
	static constexpr const char *name = "cbm_heap";
	using heap = cbm_heap;

	/*
	 * counting: for callgrind's driver, whose faked rseq registration
	 * (peer_cbm::before_counting) holds only while nothing drains a CPU
	 * cache: no background release and no idle trim then. Neither
	 * changes the fast path being counted.
	 */
	static heap *create_heap(bool counting)
	{
		cbm_heap_config cfg = {};
		cbm_heap *h;

		cfg.name = "bench";
		if (counting) {
			cfg.release_ms = CBM_RELEASE_OFF;
			cfg.idle_trim_ms = CBM_IDLE_TRIM_OFF;
		}
		return cbm_heap_create(&cfg, &h) == 0 ? h : nullptr;
	}

	static void destroy_heap(heap *h)
	{
		cbm_heap_destroy(h);
	}

	/* Per-CPU caches need no registration. */
	static void thread_init()
	{
	}

	static void before_counting()
	{
		peer_cbm::before_counting();
	}

	static void *heap_alloc(heap *h, std::size_t size)
	{
		return cbm_heap_alloc(h, size);
	}

	static void heap_free(heap *h, void *buf)
	{
		cbm_heap_free(h, buf);
	}
};

#endif /* BENCH_PEER_HEAP_H */
