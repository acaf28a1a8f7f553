/* SPDX-License-Identifier: MIT */
/*
 * How the harness times one run (one Google Benchmark run of k threads),
 * and how it stops a run that stalls.
 *
 * Wall time. Google Benchmark's UseRealTime averages per-thread timers, and
 * a thread's timer starts only once that thread gets a CPU: with more
 * threads than CPUs, threads that run one after another each see a short
 * time, and the aggregate comes out inflated (measured here: glibc pairs at
 * 4 threads on 2 CPUs, 92 M/s in 10 ms runs against 59 M/s in 200 ms runs
 * and from cbm_demo's wall clock). So a run is timed once, from the moment
 * its last thread is ready to the moment its first thread leaves the
 * closing barrier, and every thread reports that time (UseManualTime).
 *
 * Time limit. A pool whose shared tier spins on a preempted thread (DPDK's
 * ring is not preemption-safe) can take minutes over one oversubscribed
 * run. A watchdog notes when a run passes its limit; the workloads that can
 * reach a shared tier ask run_clock_over() once per batch, and skip the
 * rest of their iterations once it says so. The run then reports the items
 * it did complete over the time it took, and is marked cut (finish() in
 * harness.h). The single-pair workload does not ask: its loop is the hot
 * path being measured, and no peer leaves its per-thread or per-CPU cache
 * there.
 */
#ifndef BENCH_RUN_CLOCK_H
#define BENCH_RUN_CLOCK_H

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include <time.h>

#include <benchmark/benchmark.h>

namespace bench
{

struct run_clock {
	std::atomic<int> ready{0};
	std::atomic<std::int64_t> start{0};
	std::atomic<std::int64_t> end{0};
	std::atomic<bool> expired{false};
	std::atomic<bool> cut{false};
	double limit_s = 10;

	std::mutex lock;
	std::condition_variable over;
	bool done = false; /* under lock */
	std::thread watchdog;
};

inline run_clock &
the_clock()
{
	static run_clock c;
	return c;
}

inline std::int64_t
now_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline void
set_run_limit(double seconds)
{
	the_clock().limit_s = seconds;
}

inline double
run_limit()
{
	return the_clock().limit_s;
}

/* Setup callback: once before each run, while none of its threads runs. */
inline void
run_begin(const benchmark::State &)
{
	run_clock &c = the_clock();

	c.ready = 0;
	c.start = 0;
	c.end = 0;
	c.expired = false;
	c.cut = false;
	c.done = false;
	c.watchdog = std::thread([&c] {
		std::unique_lock<std::mutex> l(c.lock);
		auto limit = std::chrono::duration<double>(c.limit_s);

		if (!c.over.wait_for(l, limit, [&c] { return c.done; }))
			c.expired = true;
	});
}

/* Teardown callback: once after each run, when its threads are gone. */
inline void
run_end(const benchmark::State &)
{
	run_clock &c = the_clock();

	{
		std::lock_guard<std::mutex> l(c.lock);
		c.done = true;
	}
	c.over.notify_all();
	c.watchdog.join();
}

/* Right before the loop: the last thread ready starts the clock, and it
 * then passes Google Benchmark's starting barrier at once. */
inline void
run_clock_start(const benchmark::State &state)
{
	run_clock &c = the_clock();

	if (c.ready.fetch_add(1) + 1 == state.threads())
		c.start = now_ns();
}

/* Right after the loop, where every thread has finished its iterations:
 * the run's wall time in seconds, the same for every thread. */
inline double
run_clock_stop()
{
	run_clock &c = the_clock();
	std::int64_t unset = 0;

	c.end.compare_exchange_strong(unset, now_ns());
	return static_cast<double>(c.end - c.start) * 1e-9;
}

/* Whether the run is past its limit; a caller that is told so must skip
 * the rest of its work, which marks the run cut. */
inline bool
run_clock_over()
{
	run_clock &c = the_clock();

	if (!c.expired.load(std::memory_order_relaxed))
		return false;
	c.cut.store(true, std::memory_order_relaxed);
	return true;
}

/* After the loop: whether some thread cut its work short. Every thread
 * has passed Google Benchmark's closing barrier, which orders their
 * stores before this load. */
inline bool
run_clock_was_cut()
{
	return the_clock().cut.load(std::memory_order_relaxed);
}

} // namespace bench

#endif /* BENCH_RUN_CLOCK_H */
