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
 * Unlike harness.h's single-size runs, every buffer's first cache line is
 * written as soon as it is allocated (64 bytes, as a server writes a
 * header): with sizes spread over many classes, what the allocator's
 * layout costs the cache is part of what a server pays.
 *
 * Each run also reports the process's resident memory when it ends
 * (rss_bytes, every buffer of the run given back by then). mixed.py runs
 * each workload of each allocator in a process of its own, so the last
 * run's figure is that allocator's after the whole workload, the same
 * sequence of runs for every allocator.
 *
 * Timing, time limits and the oversubscription label are harness.h's
 * (run_clock.h, finish()).
 */
#ifndef BENCH_MIXED_H
#define BENCH_MIXED_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "harness.h"
#include "mixed_sizes.h"

namespace bench
{
namespace mixed
{

/* The bytes of each new buffer written: its first cache line. */
constexpr std::size_t touch_bytes = 64;
static_assert(touch_bytes <= mixed_bands[0].lo,
	      "no request is smaller than what is written");
static_assert(mixed_sequence_length % deep == 0 &&
		      mixed_sequence_length % batch == 0,
	      "a batch never wraps round the sequence");

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

template <class P>
inline void *
take(typename P::heap *heap, std::size_t size)
{
	void *buf = P::heap_alloc(heap, size);

	if (buf == nullptr)
		out_of_memory(P::name, size);
	std::memset(buf, 0x5a, touch_bytes);
	return buf;
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
 * finish(), and the memory figure. After the loop every thread has passed
 * Google Benchmark's closing barrier, so every buffer of the run is back
 * with the allocator. Counters are summed over threads: only thread 0
 * sets it.
 */
inline void
finish_mixed(benchmark::State &state, std::uint64_t items)
{
	finish(state, items);
	if (state.thread_index() != 0)
		return;
	state.counters["rss_bytes"] = rss_bytes();
}

template <class P>
void
pair(benchmark::State &state, typename P::heap *heap)
{
	const std::uint32_t *sizes = sequences()[state.thread_index()].data();
	std::size_t next = 0;

	P::thread_init();
	run_clock_start(state);
	for (auto _ : state) {
		void *buf = take<P>(heap, sizes[next]);

		next = (next + 1) % mixed_sequence_length;
		benchmark::DoNotOptimize(buf);
		P::heap_free(heap, buf);
	}
	finish_mixed(state, state.iterations());
}

template <class P, unsigned D>
void
depth(benchmark::State &state, typename P::heap *heap)
{
	const std::uint32_t *sizes = sequences()[state.thread_index()].data();
	std::size_t next = 0;
	void *bufs[D];
	std::uint64_t done = 0;

	P::thread_init();
	run_clock_start(state);
	for (auto _ : state) {
		if (run_clock_over())
			continue;
		for (unsigned i = 0; i < D; i++)
			bufs[i] = take<P>(heap, sizes[next + i]);
		next = (next + D) % mixed_sequence_length;
		benchmark::DoNotOptimize(bufs);
		for (unsigned i = 0; i < D; i++)
			P::heap_free(heap, bufs[i]);
		done++;
	}
	finish_mixed(state, done * D);
}

/* harness.h's producer_consumer, stop protocol included, with sizes. */
template <class P>
void
producer_consumer(benchmark::State &state, typename P::heap *heap,
		  const std::vector<bench_handoff *> *rings)
{
	const std::uint32_t *sizes = sequences()[state.thread_index()].data();
	std::size_t next = 0;
	bench_handoff *ring = (*rings)[state.thread_index() / 2];
	bool producer = state.thread_index() % 2 == 0;
	bool stopped = false;
	std::uint64_t done = 0;
	void *bufs[batch];

	P::thread_init();
	run_clock_start(state);
	for (auto _ : state) {
		if (stopped)
			continue;
		if (producer) {
			if (run_clock_over()) {
				for (unsigned i = 0; i < batch; i++)
					bufs[i] = &stop_marker;
				bench_handoff_send(ring, bufs, batch);
				stopped = true;
				continue;
			}
			for (unsigned i = 0; i < batch; i++)
				bufs[i] = take<P>(heap, sizes[next + i]);
			next = (next + batch) % mixed_sequence_length;
			bench_handoff_send(ring, bufs, batch);
		} else {
			bench_handoff_receive(ring, bufs, batch);
			if (bufs[0] == &stop_marker) {
				stopped = true;
				continue;
			}
			for (unsigned i = 0; i < batch; i++)
				P::heap_free(heap, bufs[i]);
			done++;
		}
	}
	finish_mixed(state, done * batch);
}

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
		std::string name =
			std::string(workload) + "/" + P::name + "/mixed";
		auto *b =
			benchmark::RegisterBenchmark(name.c_str(), fn, args...);

		b->UseManualTime()->Setup(run_begin)->Teardown(run_end);
		for (int t : thread_counts())
			if (!pairs_only || t % 2 == 0)
				b->Threads(t);
	}

	void register_all()
	{
		add("pair", false, pair<P>, heap);
		add("depth32", false, depth<P, batch>, heap);
		add("depth512", false, depth<P, deep>, heap);
		add("pc", true, producer_consumer<P>, heap, &rings);
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

	if (!take_own_flags(&argc, argv))
		return 2;
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	if (!s.create()) {
		std::fprintf(stderr, "bench: %s: cannot create the heap\n",
			     P::name);
		s.destroy();
		return 1;
	}
	std::fprintf(stderr,
		     "bench: %s, mixed sizes, %d CPUs available: runs with "
		     "more threads are labelled oversubscribed\n",
		     P::name, cpus());
	benchmark::AddCustomContext("peer", P::name);
	benchmark::AddCustomContext("cpus_available", std::to_string(cpus()));
	benchmark::AddCustomContext("malloc_from", malloc_library());
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
