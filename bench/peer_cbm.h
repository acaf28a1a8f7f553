/* SPDX-License-Identifier: MIT */
/*
 * The subject: a cbm pool, through the public C API only, as a user links
 * it. Peers are structs of static inline functions so that each binary
 * calls its allocator directly, with no indirection the others lack.
 */
#ifndef BENCH_PEER_CBM_H
#define BENCH_PEER_CBM_H

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <sys/rseq.h>

#include "cbm.h"

/* Built with BENCH_CBM_TRUSTED: the same peer, whose pools trust their
 * bulk frees (CBM_POOL_TRUST_BULK_FREES), for the bulk rows. With
 * BENCH_CBM_EXACT: buffers exactly their size apart (CBM_POOL_EXACT_STRIDE),
 * the layout before cache colouring (src/colour.h), beside the default.
 * With CBM_INLINE: the default pools, their calls inline (cbm/inline.h). */
#if defined(BENCH_CBM_TRUSTED)
#define BENCH_CBM_NAME "cbm_trusted"
#define BENCH_CBM_FLAGS CBM_POOL_TRUST_BULK_FREES
#elif defined(BENCH_CBM_EXACT)
#define BENCH_CBM_NAME "cbm_exact"
#define BENCH_CBM_FLAGS CBM_POOL_EXACT_STRIDE
#elif defined(CBM_INLINE)
#define BENCH_CBM_NAME "cbm_inline"
#define BENCH_CBM_FLAGS 0u
#else
#define BENCH_CBM_NAME "cbm"
#define BENCH_CBM_FLAGS 0u
#endif

struct peer_cbm {
	static constexpr const char *name = BENCH_CBM_NAME;
	/* Only cbm has cbm_retire: the retire workload is registered for it
	 * alone. */
	static constexpr bool has_retire = true;
	using pool = cbm_pool;

	static bool init(std::size_t)
	{
		return true;
	}

	static void fini()
	{
	}

	static pool *create(std::size_t size, std::size_t capacity)
	{
		cbm_pool_config cfg = {};
		cbm_pool *p;

		cfg.block_size = size;
		cfg.capacity = capacity;
		cfg.flags = BENCH_CBM_FLAGS;
		cfg.name = "bench";
		return cbm_pool_create(&cfg, &p) == 0 ? p : nullptr;
	}

	static void destroy(pool *p)
	{
		cbm_pool_destroy(p);
	}

	/* Per-CPU caches need no registration. */
	static void thread_init()
	{
	}

	/*
	 * Under valgrind, which has no rseq, with CBM_PERCPU=rseq: stand in
	 * for the kernel by writing CPU 0 into this thread's rseq area, so
	 * that the restartable sequences run as they do natively
	 * (callgrind.sh). Only for this single-threaded driver, after the
	 * last thread start (glibc checks the field when it starts one), and
	 * only while its pool is never drained: nothing fences or restarts
	 * these sequences. With CBM_PERCPU=portable the same write lets
	 * portable mode read its CPU hint from the area, as it does natively
	 * where glibc registered one (src/cpu.h), instead of calling
	 * sched_getcpu.
	 */
	static void before_counting()
	{
		const char *mode = std::getenv("CBM_PERCPU");
		char *tp;

		if (__rseq_size != 0 || mode == nullptr ||
		    (std::strcmp(mode, "rseq") != 0 &&
		     std::strcmp(mode, "portable") != 0))
			return;
		__asm__("mov %%fs:0, %0" : "=r"(tp));
		reinterpret_cast<struct rseq *>(tp + __rseq_offset)->cpu_id = 0;
	}

	static void *get(pool *p)
	{
		return cbm_alloc(p);
	}

	static void put(pool *p, void *buf)
	{
		cbm_free(p, buf);
	}

	static bool get_bulk(pool *p, void **bufs, unsigned n)
	{
		return cbm_alloc_bulk(p, bufs, n) == 0;
	}

	static void put_bulk(pool *p, void *const *bufs, unsigned n)
	{
		cbm_free_bulk(p, bufs, n);
	}

	static void retire(pool *p, void *buf)
	{
		cbm_retire(p, buf);
	}

	/* Wait until every retired buffer is back, so that the next run
	 * starts from a full pool. */
	static void barrier(pool *p)
	{
		cbm_barrier(p);
	}

	/* Buffers reclaimed and grace periods waited, so far. */
	static void reclaim_counts(const pool *p, std::uint64_t *reclaimed,
				   std::uint64_t *grace_periods)
	{
		cbm_stats s;

		cbm_pool_stats(p, &s);
		*reclaimed = s.reclaimed;
		*grace_periods = s.grace_periods;
	}
};

#endif /* BENCH_PEER_CBM_H */
