/* SPDX-License-Identifier: MIT */
/*
 * The mixed-size benchmarks: cbm_heap against the mallocs, every request
 * of a size drawn from a server-like mix (mixed_sizes.h), on Google
 * Benchmark, for the one allocator a binary is built for (mixed.cc).
 *
 *   workload   one item is                                   sizes
 *   --------   -------------------------------------------   -------------
 *   pair       alloc then free of one buffer                 the thread's
 *   depth32    one of 32 allocs, then the 32 frees           sequence, in
 *   depth512   one of 512 allocs, then the 512 frees         order, round
 *   pc         one buffer allocated by one thread and freed  and round
 *              by its partner, 32 at a time through an
 *              SPSC ring (handoff.h)
 *
 *   threads    as harness.h (1, 2, 4 on 2 CPUs; more threads than CPUs
 *              labelled "oversubscribed"); pc uses the even counts
 *   peers      cbm_heap (cbm_heap_alloc/cbm_heap_free on one heap that
 *              every thread shares, default config: classes 64 B to
 *              1 MiB), glibc, jemalloc, mimalloc, tcmalloc (malloc/free)
 *
 * Every buffer's first cache line is written as soon as it is allocated
 * (harness.h's touch(), as its WORKLOAD-touched runs do): with sizes spread
 * over many classes, what the allocator's layout costs the cache is part
 * of what a server pays.
 *
 * Each run also reports the process's resident memory when it ends
 * (rss_bytes, every buffer of the run given back by then). mixed.py runs
 * each workload of each allocator in a process of its own, so the last
 * run's figure is that allocator's after the whole workload, the same
 * sequence of runs for every allocator.
 *
 * The loops, timing, time limits and the oversubscription label are
 * harness.h's (run_clock.h, finish()), through the adapter sized<P> below.
 */
#ifndef BENCH_MIXED_H
#define BENCH_MIXED_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include "harness.h"
#include "mixed_sizes.h"

namespace bench
{
namespace mixed
{

static_assert(touch_bytes <= mixed_bands[0].lo,
	      "no request is smaller than what is written");

/* One sequence per thread index, made before any run. */
inline std::vector<std::vector<std::uint32_t>> &
sequences()
{
	static std::vector<std::vector<std::uint32_t>> s;
	return s;
}

[[noreturn]] inline void
out_of_memory(const char *peer, std::size_t size)
{
	std::fprintf(stderr,
		     "bench: %s: no buffer of %zu bytes; the live set is a "
		     "few tens of MiB, so this is a bug\n",
		     peer, size);
	std::abort();
}

inline double
rss_bytes()
{
	unsigned long size = 0, resident = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");

	if (f == nullptr)
		return 0;
	if (std::fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	std::fclose(f);
	return static_cast<double>(resident) *
	       static_cast<double>(sysconf(_SC_PAGESIZE));
}

/*
 * An allocator P (peer_heap.h, peer_malloc.h: heap_alloc(heap, size)) as
 * the single-size peer that harness.h's workloads drive: get() asks for
 * the next size of the calling thread's sequence, round and round, and
 * writes the buffer's first cache line. So the mixed runs are harness.h's
 * pair, depth and producer -> consumer loops, stop protocol included, and
 * differ from the single-size ones only in what each get asks for.
 */
template <class P> struct sized {
	static constexpr const char *name = P::name;
	using pool = typename P::heap;

	static inline thread_local const std::uint32_t *sequence;
	static inline thread_local std::size_t next;

	static void thread_init()
	{
		P::thread_init();
		sequence = sequences()[thread_index].data();
		next = 0;
	}

	static void *get(pool *heap)
	{
		std::size_t size = sequence[next];
		void *buf = P::heap_alloc(heap, size);

		next = (next + 1) % mixed_sequence_length;
		if (buf == nullptr)
			out_of_memory(P::name, size);
		touch(buf);
		return buf;
	}

	static void put(pool *heap, void *buf)
	{
		P::heap_free(heap, buf);
	}

	/*
	 * The memory figure (harness.h's finish(), thread 0). After the loop
	 * every thread has passed Google Benchmark's closing barrier, so
	 * every buffer of the run is back with the allocator.
	 */
	static void after_run(benchmark::State &state)
	{
		state.counters["rss_bytes"] = rss_bytes();
	}
};

template <class P> struct suite {
	typename P::heap *heap = nullptr;
	std::vector<bench_handoff *> rings;

	bool create()
	{
		for (int t = 0; t < thread_counts().back(); t++)
			sequences().push_back(
				mixed_sequence(static_cast<unsigned>(t)));
		heap = P::create_heap(false);
		if (heap == nullptr)
			return false;
		for (int i = 0; i < (thread_counts().back() + 1) / 2; i++) {
			rings.push_back(bench_handoff_create(ring_slots));
			if (rings.back() == nullptr)
				return false;
		}
		return true;
	}

	void destroy()
	{
		if (heap != nullptr)
			P::destroy_heap(heap);
		for (auto *r : rings)
			if (r != nullptr)
				bench_handoff_destroy(r);
	}

	template <class Fn, class... Args>
	void add(const char *workload, bool pairs_only, Fn fn, Args... args)
	{
		register_workload(std::string(workload) + "/" + P::name +
					  "/mixed",
				  pairs_only, fn, args...);
	}

	void register_all()
	{
		add("pair", false, bench::pair<sized<P>>, heap);
		add("depth32", false, bench::depth<sized<P>, batch>, heap);
		add("depth512", false, bench::depth<sized<P>, deep>, heap);
		add("pc", true, bench::producer_consumer<sized<P>>, heap,
		    &rings);
	}
};

/* The mean request of thread 0's sequence, for the JSON context. */
inline std::string
mean_size()
{
	double sum = 0;

	for (std::uint32_t s : sequences()[0])
		sum += s;
	return std::to_string(static_cast<long>(sum / mixed_sequence_length));
}

template <class P>
int
run(int argc, char **argv)
{
	suite<P> s;

	if (!take_flags(&argc, argv))
		return 2;
	if (!s.create()) {
		std::fprintf(stderr, "bench: %s: cannot create the heap\n",
			     P::name);
		s.destroy();
		return 1;
	}
	describe_run(P::name, ", mixed sizes");
	benchmark::AddCustomContext("sizes", mixed_description);
	benchmark::AddCustomContext("mean_size", mean_size());
	s.register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	s.destroy();
	return 0;
}

} // namespace mixed
} // namespace bench

#endif /* BENCH_MIXED_H */
