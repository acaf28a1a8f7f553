/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness: every workload, for the one peer a binary is built
 * for (bench.cc), on Google Benchmark.
 *
 * Perf matrix (each cell is one Google Benchmark run, repeated; the report
 * takes medians over the repetitions):
 *
 *   workload   one item is                                   sizes (bytes)
 *   --------   -------------------------------------------   ---------------
 *   pair       alloc then free of one buffer (the hot path)  64, 2048, 65536
 *   depth32    one of 32 allocs, then the 32 frees           64, 2048, 65536
 *              (stays in per-CPU caches)
 *   depth512   one of 512 allocs, then the 512 frees         64, 2048, 65536
 *              (overflows them: depot and global tier)
 *   bulk32     one buffer of a 32-buffer bulk alloc and      64, 2048, 65536
 *              bulk free (peers without bulk calls loop)
 *   pc         one buffer allocated by one thread and freed  64, 2048, 65536
 *              by its partner, handed over 32 at a time
 *              through an SPSC ring (handoff.h)
 *   retire     alloc then cbm_retire (cbm only), plus        2048
 *              buffers per grace period
 *
 *   threads    1, 2, 4, ... up to 2 x the CPUs this process may run on,
 *              plus the CPU count itself and its double; pc uses the even
 *              counts (thread 2k produces, 2k + 1 consumes). A run with
 *              more threads than CPUs is labelled "oversubscribed".
 *   peers      cbm, glibc, jemalloc, mimalloc, tcmalloc (malloc/free),
 *              dpdk (rte_mempool, per-lcore cache), mutex (naive baseline);
 *              one binary each.
 *
 * What is measured. items_per_second is the aggregate over all threads,
 * over the wall time of the run (run_clock.h, which also explains why not
 * Google Benchmark's UseRealTime); items_per_thread is the same divided by
 * the thread count. A run that stalls past its time limit (--run_limit,
 * default 10 s) is cut short and reports cut=1. In the workloads above
 * buffers are not written: each allocator's own cost is what is compared
 * (malloc's may include writing its links into a freed block; cbm keeps
 * its links outside the buffers). Each also runs as WORKLOAD-touched
 * (touched<P>), which writes every buffer's first cache line as soon as it
 * has it, as a server writes a header: there where the buffers lie in
 * memory, and which cache sets their first lines share, is part of what is
 * measured. Pools are sized so that no workload runs them dry; running dry
 * is a harness bug and aborts.
 */
#ifndef BENCH_HARNESS_H
#define BENCH_HARNESS_H

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <dlfcn.h>
#include <sched.h>

#include <benchmark/benchmark.h>

#include "handoff.h"
#include "run_clock.h"

namespace bench
{

constexpr unsigned batch = 32;
constexpr unsigned deep = 512;
constexpr unsigned ring_slots = 1024;
constexpr std::size_t sizes[] = {64, 2048, 65536};
constexpr std::size_t retire_size = 2048;
/* The retire pool's capacity bounds how many buffers one grace period
 * can return: large enough that the batch, not the pool, is measured. */
constexpr std::size_t retire_capacity = 65536;

/* The CPUs this process may run on: what oversubscription is relative to. */
inline int
cpus_available()
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	return CPU_COUNT(&set);
}

inline int
cpus()
{
	static const int n = cpus_available();
	return n;
}

inline std::vector<int>
thread_counts()
{
	std::vector<int> t;

	for (int n = 1; n <= 2 * cpus(); n *= 2)
		t.push_back(n);
	t.push_back(cpus());
	t.push_back(2 * cpus());
	std::sort(t.begin(), t.end());
	t.erase(std::unique(t.begin(), t.end()), t.end());
	return t;
}

/* Enough for the deepest workload on every thread, the buffers in flight
 * in the rings, and what per-CPU or per-lcore caches may strand (DPDK's do
 * not give theirs up to a thread that runs dry). 2^q - 1 suits DPDK. */
inline std::size_t
pool_capacity()
{
	std::size_t t = static_cast<std::size_t>(2 * cpus());
	std::size_t need = t * deep + (t / 2) * ring_slots + (t + 2) * 384 +
			   static_cast<std::size_t>(cpus()) * 256 + 4096;
	std::size_t cap = 1;

	while (cap - 1 < need)
		cap *= 2;
	return cap - 1;
}

[[noreturn]] inline void
dry(const char *peer)
{
	std::fprintf(stderr,
		     "bench: %s: pool ran dry; the harness sizes pools so "
		     "that this cannot happen\n",
		     peer);
	std::abort();
}

/* Google Benchmark's index of the calling thread in the run under way, set
 * by start(): a peer adapter may key per-thread state by it (mixed.h's
 * size sequences), so that a thread asks the same of every peer. */
inline thread_local int thread_index = 0;

/* What a peer adds to a run's report on thread 0, if it has anything to
 * add (P::after_run(state)): detected, so that peers without it need not
 * say so. */
template <class P, class = void> struct has_after_run : std::false_type {
};
template <class P>
struct has_after_run<P, std::void_t<decltype(P::after_run(
				std::declval<benchmark::State &>()))>>
    : std::true_type {
};

/* Right before the loop: the peer's per-thread set-up, then the clock. */
template <class P>
void
start(benchmark::State &state)
{
	thread_index = state.thread_index();
	P::thread_init();
	run_clock_start(state);
}

/* Right after the loop. items: what the thread completed. */
template <class P>
void
finish(benchmark::State &state, std::uint64_t items)
{
	state.SetIterationTime(run_clock_stop());
	state.SetItemsProcessed(static_cast<std::int64_t>(items));
	state.counters["items_per_thread"] =
		benchmark::Counter(static_cast<double>(items),
				   benchmark::Counter::kAvgThreadsRate);
	if (state.thread_index() != 0)
		return;
	/* A counter, not the label: the aggregates keep a label only when
	 * every repetition has the same, but average the counter. */
	state.counters["cut"] = run_clock_was_cut() ? 1 : 0;
	if (state.threads() > cpus())
		state.SetLabel("oversubscribed");
	if constexpr (has_after_run<P>::value)
		P::after_run(state);
}

template <class P>
void
pair(benchmark::State &state, typename P::pool *pool)
{
	start<P>(state);
	for (auto _ : state) {
		void *buf = P::get(pool);

		if (buf == nullptr)
			dry(P::name);
		benchmark::DoNotOptimize(buf);
		P::put(pool, buf);
	}
	finish<P>(state, state.iterations());
}

template <class P, unsigned D>
void
depth(benchmark::State &state, typename P::pool *pool)
{
	void *bufs[D];
	std::uint64_t done = 0;

	start<P>(state);
	for (auto _ : state) {
		if (run_clock_over())
			continue;
		for (unsigned i = 0; i < D; i++) {
			bufs[i] = P::get(pool);
			if (bufs[i] == nullptr)
				dry(P::name);
		}
		benchmark::DoNotOptimize(bufs);
		for (unsigned i = 0; i < D; i++)
			P::put(pool, bufs[i]);
		done++;
	}
	finish<P>(state, done * D);
}

template <class P>
void
bulk(benchmark::State &state, typename P::pool *pool)
{
	void *bufs[batch];
	std::uint64_t done = 0;

	start<P>(state);
	for (auto _ : state) {
		if (run_clock_over())
			continue;
		if (!P::get_bulk(pool, bufs, batch))
			dry(P::name);
		benchmark::DoNotOptimize(bufs);
		P::put_bulk(pool, bufs, batch);
		done++;
	}
	finish<P>(state, done * batch);
}

/* What a touched workload writes of each buffer it gets: the first cache
 * line, as a server writes a header. No buffer is smaller. */
constexpr std::size_t touch_bytes = 64;
static_assert(touch_bytes <= sizes[0], "every buffer holds the line");

inline void
touch(void *buf)
{
	std::memset(buf, 0x5a, touch_bytes);
}

/* P, with every buffer it hands out touched (the WORKLOAD-touched runs). */
template <class P> struct touched : P {
	static void *get(typename P::pool *pool)
	{
		void *buf = P::get(pool);

		if (buf != nullptr)
			touch(buf);
		return buf;
	}

	static bool get_bulk(typename P::pool *pool, void **bufs, unsigned n)
	{
		if (!P::get_bulk(pool, bufs, n))
			return false;
		for (unsigned i = 0; i < n; i++)
			touch(bufs[i]);
		return true;
	}
};

/* Stands for a batch that says "no more": see producer_consumer. */
inline char stop_marker;

/*
 * Every thread runs the same number of iterations, so each consumer takes
 * exactly what its producer sent, and the rings are empty between runs.
 * When the run's time limit passes, only the producer decides: it sends one
 * batch of stop markers and idles through its remaining iterations; its
 * consumer idles through its own once it sees them. Each side thus stops at
 * a batch boundary the other agrees on, and the ring is left empty.
 */
template <class P>
void
producer_consumer(benchmark::State &state, typename P::pool *pool,
		  const std::vector<bench_handoff *> *rings)
{
	bench_handoff *ring = (*rings)[state.thread_index() / 2];
	bool producer = state.thread_index() % 2 == 0;
	bool stopped = false;
	std::uint64_t done = 0;
	void *bufs[batch];

	start<P>(state);
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
			for (unsigned i = 0; i < batch; i++) {
				bufs[i] = P::get(pool);
				if (bufs[i] == nullptr)
					dry(P::name);
			}
			bench_handoff_send(ring, bufs, batch);
		} else {
			bench_handoff_receive(ring, bufs, batch);
			if (bufs[0] == &stop_marker) {
				stopped = true;
				continue;
			}
			for (unsigned i = 0; i < batch; i++)
				P::put(pool, bufs[i]);
			done++;
		}
	}
	/* An item is a buffer that made the whole trip: count it once. */
	finish<P>(state, done * batch);
}

template <class P>
void
retire(benchmark::State &state, typename P::pool *pool)
{
	std::uint64_t reclaimed0 = 0, graces0 = 0, retired = 0;

	if (state.thread_index() == 0)
		P::reclaim_counts(pool, &reclaimed0, &graces0);
	start<P>(state);
	for (auto _ : state) {
		void *buf = P::get(pool);

		/* Dry while buffers wait for their grace period: that is
		 * part of the cost, and only retired buffers count. */
		if (buf == nullptr)
			continue;
		P::retire(pool, buf);
		retired++;
	}
	finish<P>(state, retired);
	if (state.thread_index() == 0) {
		std::uint64_t reclaimed, graces;

		P::reclaim_counts(pool, &reclaimed, &graces);
		if (graces > graces0)
			state.counters["buffers_per_grace"] =
				static_cast<double>(reclaimed - reclaimed0) /
				static_cast<double>(graces - graces0);
		P::barrier(pool);
	}
}

/* Which library malloc resolved to: proof that an interposing allocator
 * is really in use, recorded in the JSON context. */
inline std::string
malloc_library()
{
	Dl_info info;
	void *(*fn)(std::size_t) = std::malloc;

	if (dladdr(reinterpret_cast<void *>(fn), &info) == 0 ||
	    info.dli_fname == nullptr)
		return "unknown";
	return info.dli_fname;
}

/* One workload under its name, timed by the run's clock (run_clock.h), at
 * every thread count; pairs_only: the even ones (producer and consumer). */
template <class Fn, class... Args>
void
register_workload(const std::string &name, bool pairs_only, Fn fn, Args... args)
{
	auto *b = benchmark::RegisterBenchmark(name.c_str(), fn, args...);

	b->UseManualTime()->Setup(run_begin)->Teardown(run_end);
	for (int t : thread_counts())
		if (!pairs_only || t % 2 == 0)
			b->Threads(t);
}

template <class P> struct suite {
	std::vector<typename P::pool *> pools;
	typename P::pool *retire_pool = nullptr;
	std::vector<bench_handoff *> rings;

	bool create()
	{
		for (std::size_t size : sizes) {
			pools.push_back(P::create(size, pool_capacity()));
			if (pools.back() == nullptr)
				return false;
		}
		if constexpr (P::has_retire) {
			retire_pool = P::create(retire_size, retire_capacity);
			if (retire_pool == nullptr)
				return false;
		}
		for (int i = 0; i < cpus(); i++) {
			rings.push_back(bench_handoff_create(ring_slots));
			if (rings.back() == nullptr)
				return false;
		}
		return true;
	}

	void destroy()
	{
		for (auto *p : pools)
			if (p != nullptr)
				P::destroy(p);
		if (retire_pool != nullptr)
			P::destroy(retire_pool);
		for (auto *r : rings)
			bench_handoff_destroy(r);
	}

	template <class Fn, class... Args>
	void add(const char *workload, std::size_t size, bool pairs_only, Fn fn,
		 Args... args)
	{
		register_workload(std::string(workload) + "/" + P::name +
					  "/size:" + std::to_string(size),
				  pairs_only, fn, args...);
	}

	/* Every workload for peer Q (P or touched<P>), named with suffix. */
	template <class Q> void register_workloads(const std::string &suffix)
	{
		auto name = [&](const char *w) { return w + suffix; };

		for (std::size_t i = 0; i < pools.size(); i++) {
			add(name("pair").c_str(), sizes[i], false, pair<Q>,
			    pools[i]);
			add(name("depth32").c_str(), sizes[i], false,
			    depth<Q, batch>, pools[i]);
			add(name("depth512").c_str(), sizes[i], false,
			    depth<Q, deep>, pools[i]);
			add(name("bulk32").c_str(), sizes[i], false, bulk<Q>,
			    pools[i]);
			add(name("pc").c_str(), sizes[i], true,
			    producer_consumer<Q>, pools[i], &rings);
		}
	}

	void register_all()
	{
		register_workloads<P>("");
		register_workloads<touched<P>>("-touched");
		if constexpr (P::has_retire)
			add("retire", retire_size, false, retire<P>,
			    retire_pool);
	}
};

/* What the pools will need in bytes: DPDK reserves its memory up front. */
template <class P>
std::size_t
pool_bytes()
{
	std::size_t bytes = 0;

	for (std::size_t size : sizes)
		bytes += size * pool_capacity();
	if (P::has_retire)
		bytes += retire_size * retire_capacity;
	return bytes;
}

/* Take the harness's own flag, --run_limit=SECONDS (each run's time
 * limit, run_clock.h), out of argv before Google Benchmark sees it. */
inline bool
take_own_flags(int *argc, char **argv)
{
	const std::string flag = "--run_limit=";
	int kept = 1;

	for (int i = 1; i < *argc; i++) {
		std::string arg = argv[i];

		if (arg.compare(0, flag.size(), flag) != 0) {
			argv[kept++] = argv[i];
			continue;
		}
		char *end;
		double s = std::strtod(arg.c_str() + flag.size(), &end);
		if (*end != '\0' || !(s > 0)) {
			std::fprintf(stderr, "bench: bad %s\n", argv[i]);
			return false;
		}
		set_run_limit(s);
	}
	*argc = kept;
	argv[kept] = nullptr;
	return true;
}

/* The start of a binary's main: the harness's flags, then Google
 * Benchmark's; false (exit 2) on one that neither knows. */
inline bool
take_flags(int *argc, char **argv)
{
	if (!take_own_flags(argc, argv))
		return false;
	benchmark::Initialize(argc, argv);
	return !benchmark::ReportUnrecognizedArguments(*argc, argv);
}

/* What every binary says of its run, on stderr and in the JSON context;
 * what: a few words on the runs, after the peer's name ("" for none). */
inline void
describe_run(const char *peer, const char *what)
{
	std::fprintf(stderr,
		     "bench: %s%s, %d CPUs available: runs with more threads "
		     "are labelled oversubscribed\n",
		     peer, what, cpus());
	benchmark::AddCustomContext("peer", peer);
	benchmark::AddCustomContext("cpus_available", std::to_string(cpus()));
	benchmark::AddCustomContext("malloc_from", malloc_library());
}

template <class P>
int
run(int argc, char **argv)
{
	suite<P> s;

	if (!take_flags(&argc, argv))
		return 2;
	(void)cpus(); /* before a peer's init can narrow the affinity */
	if (!P::init(pool_bytes<P>())) {
		std::fprintf(stderr, "bench: %s could not start: skipped\n",
			     P::name);
		return 77;
	}
	if (!s.create()) {
		std::fprintf(stderr, "bench: %s: cannot create the pools\n",
			     P::name);
		s.destroy();
		P::fini();
		return 1;
	}
	describe_run(P::name, "");
	benchmark::AddCustomContext("pool_capacity",
				    std::to_string(pool_capacity()));
	s.register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	s.destroy();
	P::fini();
	return 0;
}

} // namespace bench

#endif /* BENCH_HARNESS_H */
