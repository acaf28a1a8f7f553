/* SPDX-License-Identifier: MIT */
/*
 * DPDK's rte_mempool with its per-lcore cache, the pool most packet
 * processing code uses.
 *
 * Set-up that makes it a fair peer on an ordinary machine:
 *  - EAL without huge pages or PCI, and without shared config: no files,
 *    so parallel runs do not collide (--in-memory would say the same, but
 *    refuses --no-huge); on lcore 0 only, with just enough memory for the
 *    pools (init's argument).
 *  - The per-lcore cache works only for threads that have an lcore id.
 *    Benchmark threads are not EAL threads, so each registers
 *    (rte_thread_register) before it runs, and gives the id back when it
 *    exits. DPDK has RTE_MAX_LCORE ids; a thread that gets none runs
 *    uncached, which is what DPDK does to such threads.
 *  - EAL pins the main thread to lcore 0's CPU, and every thread created
 *    afterwards would inherit that. The main thread is given all CPUs back
 *    after rte_eal_init, and each registered thread after registering
 *    (22.11 leaves a registering thread's affinity alone, as checked here,
 *    but nothing promises that), so the scheduler places them as it places
 *    the other peers' threads.
 *  - Cache size 256 (l3fwd's): a run of 32 stays in the cache, a run of
 *    512 overflows it (its flush threshold is 1.5 x 256), as with cbm's
 *    magazines.
 */
#ifndef BENCH_PEER_DPDK_H
#define BENCH_PEER_DPDK_H

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include <pthread.h>
#include <sched.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

struct peer_dpdk {
	static constexpr const char *name = "dpdk";
	static constexpr bool has_retire = false;
	static constexpr unsigned cache_size = 256;
	using pool = struct rte_mempool;

	/* The CPUs the process may use, before EAL narrows them. */
	static cpu_set_t &all_cpus()
	{
		static cpu_set_t set;
		return set;
	}

	static void unpin()
	{
		pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t),
				       &all_cpus());
	}

	/* bytes: what the pools will need, objects' headers excluded. */
	static bool init(std::size_t bytes)
	{
		/* Headers, alignment and EAL's own needs, generously. */
		std::size_t mib = bytes / (1u << 20) * 5 / 4 + 256;
		std::vector<std::string> args = {
			"bench_dpdk",
			"--no-huge",
			"--no-pci",
			"--no-shconf",
			"--file-prefix=cbm-bench",
			"--no-telemetry",
			"-l",
			"0",
			"-m",
			std::to_string(mib),
			"--log-level=error",
		};
		std::vector<char *> argv;

		sched_getaffinity(0, sizeof(cpu_set_t), &all_cpus());
		for (auto &a : args)
			argv.push_back(&a[0]);
		if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) <
		    0) {
			std::fprintf(stderr, "bench: dpdk: rte_eal_init: %s\n",
				     rte_strerror(rte_errno));
			return false;
		}
		unpin();
		return true;
	}

	static void fini()
	{
		rte_eal_cleanup();
	}

	static pool *create(std::size_t size, std::size_t capacity)
	{
		static unsigned serial;
		std::string name = "bench" + std::to_string(serial++);
		pool *p = rte_mempool_create(
			name.c_str(), static_cast<unsigned>(capacity),
			static_cast<unsigned>(size), cache_size, 0, nullptr,
			nullptr, nullptr, nullptr, SOCKET_ID_ANY, 0);

		if (p == nullptr)
			std::fprintf(stderr,
				     "bench: dpdk: rte_mempool_create: %s\n",
				     rte_strerror(rte_errno));
		return p;
	}

	static void destroy(pool *p)
	{
		rte_mempool_free(p);
	}

	struct registration {
		bool registered = false;

		registration()
		{
			if (rte_lcore_id() != LCORE_ID_ANY)
				return; /* the main thread: lcore 0 */
			registered = rte_thread_register() == 0;
			if (!registered || rte_lcore_id() == LCORE_ID_ANY)
				std::fprintf(stderr,
					     "bench: dpdk: no lcore id for a "
					     "thread: it runs uncached\n");
			unpin();
		}

		~registration()
		{
			if (registered)
				rte_thread_unregister();
		}
	};

	/* Nothing to arrange before callgrind counts (pairs.cc). */
	static void before_counting()
	{
	}

	static void thread_init()
	{
		static thread_local registration r;
		(void)r;
	}

	static void *get(pool *p)
	{
		void *buf;

		return rte_mempool_get(p, &buf) == 0 ? buf : nullptr;
	}

	static void put(pool *p, void *buf)
	{
		rte_mempool_put(p, buf);
	}

	static bool get_bulk(pool *p, void **bufs, unsigned n)
	{
		return rte_mempool_get_bulk(p, bufs, n) == 0;
	}

	static void put_bulk(pool *p, void *const *bufs, unsigned n)
	{
		rte_mempool_put_bulk(p, bufs, n);
	}
};

#endif /* BENCH_PEER_DPDK_H */
