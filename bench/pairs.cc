/* SPDX-License-Identifier: MIT */
/*
 * Callgrind driver (callgrind.sh): a fixed number of calls of one peer,
 * outside Google Benchmark, whose own loop would pollute the counts.
 * meson.build compiles it once per peer, as bench.cc.
 *
 *   pairs_PEER [SIZE [PAIRS]]    defaults: 64 bytes, 1000000 pairs
 *
 * Three functions are the only ones callgrind collects in
 * (--toggle-collect=measured_*), each counted with what it calls:
 *  - measured_pairs: PAIRS alloc+free pairs of one buffer;
 *  - measured_bulk: PAIRS / BULK rounds of a bulk alloc of BULK buffers
 *    and a bulk free of them;
 *  - measured_loop: the loop of measured_pairs around no allocator at
 *    all (an opaque pointer stands for the buffer), so that its count is
 *    what the driver itself costs per pair, to take away.
 * None of start-up, the warm-up (a separate function, so that the
 * first-use paths of each allocator are behind us) or the pool's creation
 * is counted.
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

/* The buffers a bulk round moves: a receive burst. */
static constexpr unsigned BULK = 32;

extern "C" __attribute__((noipa)) void
measured_bulk(peer::pool *pool, long rounds)
{
	void *bufs[BULK];

	for (long i = 0; i < rounds; i++) {
		if (!peer::get_bulk(pool, bufs, BULK))
			std::abort();
		__asm__ volatile("" : : "r"(bufs) : "memory");
		peer::put_bulk(pool, bufs, BULK);
	}
}

/* measured_pairs with the allocator taken out: the same loop, the same
 * test of the pointer, the same barrier. */
extern "C" __attribute__((noipa)) void
measured_loop(void *opaque, long n)
{
	void *buf = opaque;

	for (long i = 0; i < n; i++) {
		/* Unknown to the compiler each time round, as a result. */
		__asm__ volatile("" : "+r"(buf));
		if (buf == nullptr)
			std::abort();
		__asm__ volatile("" : : "r"(buf) : "memory");
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

static __attribute__((noipa)) void
warm_bulk(peer::pool *pool, long rounds)
{
	void *bufs[BULK];

	for (long i = 0; i < rounds; i++) {
		if (!peer::get_bulk(pool, bufs, BULK))
			std::abort();
		__asm__ volatile("" : : "r"(bufs) : "memory");
		peer::put_bulk(pool, bufs, BULK);
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
	warm_bulk(pool, 100000 / BULK);
	measured_pairs(pool, pairs);
	measured_bulk(pool, pairs / BULK);
	measured_loop(pool, pairs);
	std::printf("%s size %zu: %ld pairs\n", peer::name, size, pairs);
	peer::destroy(pool);
	peer::fini();
	return 0;
}
