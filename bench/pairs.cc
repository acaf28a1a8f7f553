/* SPDX-License-Identifier: MIT */
/*
 * Callgrind driver (callgrind.sh): a fixed number of alloc+free pairs of
 * one peer, outside Google Benchmark, whose own loop would pollute the
 * counts. meson.build compiles it once per peer, as bench.cc.
 *
 *   pairs_PEER [SIZE [PAIRS]]    defaults: 64 bytes, 1000000 pairs
 *
 * measured_pairs is the only function callgrind collects in
 * (--toggle-collect), so what it reports is the pairs, the loop around
 * them included, and nothing else: not start-up, not the warm-up (a
 * separate function, so the first-use paths of each allocator are behind
 * us), not the pool's creation.
 */
#include <cstdio>
#include <cstdlib>

#include BENCH_PEER_HEADER

using peer = BENCH_PEER;

/* noipa: neither inlined nor merged with warm_pairs, so that its name
 * stands for exactly the measured loop. */
extern "C" __attribute__((noipa)) void
measured_pairs(peer::pool *pool, long n)
{
	for (long i = 0; i < n; i++) {
		void *buf = peer::get(pool);

		if (buf == nullptr)
			std::abort();
		/* Keeps the pair from being optimised away. */
		__asm__ volatile("" : : "r"(buf) : "memory");
		peer::put(pool, buf);
	}
}

static __attribute__((noipa)) void
warm_pairs(peer::pool *pool, long n)
{
	for (long i = 0; i < n; i++) {
		void *buf = peer::get(pool);

		if (buf == nullptr)
			std::abort();
		__asm__ volatile("" : : "r"(buf) : "memory");
		peer::put(pool, buf);
	}
}

int
main(int argc, char **argv)
{
	std::size_t size = argc > 1 ? std::strtoul(argv[1], nullptr, 0) : 64;
	long pairs = argc > 2 ? std::strtol(argv[2], nullptr, 0) : 1000000;
	const std::size_t capacity = 4095;

	if (size == 0 || pairs < 0) {
		std::fprintf(stderr, "usage: %s [SIZE [PAIRS]]\n", argv[0]);
		return 2;
	}
	if (!peer::init(size * capacity)) {
		std::fprintf(stderr, "pairs: %s could not start: skipped\n",
			     peer::name);
		return 77;
	}
	peer::pool *pool = peer::create(size, capacity);
	if (pool == nullptr) {
		std::fprintf(stderr, "pairs: %s: cannot create a pool\n",
			     peer::name);
		return 1;
	}
	peer::thread_init();
	peer::before_counting();
	warm_pairs(pool, 100000);
	measured_pairs(pool, pairs);
	std::printf("%s size %zu: %ld pairs\n", peer::name, size, pairs);
	peer::destroy(pool);
	peer::fini();
	return 0;
}
