/* SPDX-License-Identifier: MIT */
/*
 * Callgrind driver for mixed sizes (callgrind.sh): alloc+free pairs of one
 * allocator, each of the next size of thread 0's mixed sequence
 * (mixed_sizes.h), outside Google Benchmark. meson.build compiles it for
 * cbm_heap and once per malloc, as mixed.cc.
 *
 *   mixed_pairs_PEER [PAIRS]    default: 1000000 pairs
 *
 * Two functions are the only ones callgrind collects in
 * (--toggle-collect=measured_*), each counted with what it calls:
 *  - measured_mixed_pairs: PAIRS pairs, sizes in the sequence's order;
 *  - measured_mixed_loop: the same loop, reading the same sizes, around no
 *    allocator at all, so that its count is what the driver itself costs
 *    per pair, to take away.
 * Buffers are not written: the count is the allocator's. Before them, and
 * not counted, the warm-up goes round the whole sequence several times, so
 * that every class the sequence asks for exists and every path it takes
 * has run.
 */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include BENCH_PEER_HEADER
#include "mixed_sizes.h"

using peer = BENCH_PEER;
using bench::mixed_sequence_length;

/* The sequence goes round and round. */
static inline std::uint32_t
nth(const std::uint32_t *sizes, long i)
{
	return sizes[static_cast<std::size_t>(i) % mixed_sequence_length];
}

extern "C" __attribute__((noipa)) void
measured_mixed_pairs(peer::heap *heap, const std::uint32_t *sizes, long n)
{
	for (long i = 0; i < n; i++) {
		void *buf = peer::heap_alloc(heap, nth(sizes, i));

		if (buf == nullptr)
			std::abort();
		/* Keeps the pair from being optimised away. */
		__asm__ volatile("" : : "r"(buf) : "memory");
		peer::heap_free(heap, buf);
	}
}

/* measured_mixed_pairs with the allocator taken out: the same loop, the
 * same load of the size, the same test of the pointer, the same barrier. */
extern "C" __attribute__((noipa)) void
measured_mixed_loop(void *opaque, const std::uint32_t *sizes, long n)
{
	void *buf = opaque;

	for (long i = 0; i < n; i++) {
		std::uint32_t size = nth(sizes, i);

		/* The size is used and the pointer unknown to the compiler
		 * each time round, as a result. */
		__asm__ volatile("" : "+r"(buf) : "r"(size));
		if (buf == nullptr)
			std::abort();
		__asm__ volatile("" : : "r"(buf) : "memory");
	}
}

static __attribute__((noipa)) void
warm_mixed_pairs(peer::heap *heap, const std::uint32_t *sizes, long n)
{
	for (long i = 0; i < n; i++) {
		void *buf = peer::heap_alloc(heap, nth(sizes, i));

		if (buf == nullptr)
			std::abort();
		__asm__ volatile("" : : "r"(buf) : "memory");
		peer::heap_free(heap, buf);
	}
}

int
main(int argc, char **argv)
{
	long pairs = argc > 1 ? std::strtol(argv[1], nullptr, 0) : 1000000;

	if (pairs < 0 || argc > 2) {
		std::fprintf(stderr, "usage: %s [PAIRS]\n", argv[0]);
		return 2;
	}
	std::vector<std::uint32_t> sizes = bench::mixed_sequence(0);
	peer::heap *heap = peer::create_heap(true);
	if (heap == nullptr) {
		std::fprintf(stderr, "mixed_pairs: %s: cannot create a heap\n",
			     peer::name);
		return 1;
	}
	peer::thread_init();
	/* Once round first: it makes every class, and with the first class
	 * cbm starts its reclamation thread, which before_counting must
	 * follow (peer_cbm.h). */
	warm_mixed_pairs(heap, sizes.data(), mixed_sequence_length);
	peer::before_counting();
	warm_mixed_pairs(heap, sizes.data(), 4 * mixed_sequence_length);
	measured_mixed_pairs(heap, sizes.data(), pairs);
	measured_mixed_loop(heap, sizes.data(), pairs);
	std::printf("%s mixed sizes: %ld pairs\n", peer::name, pairs);
	peer::destroy_heap(heap);
	return 0;
}
