/* SPDX-License-Identifier: MIT */
/*
 * The request sizes of the mixed-size benchmarks (mixed.h, mixed_pairs.cc):
 * a server-like mix, drawn once per thread from a fixed seed, so that every
 * allocator is asked for the same sizes in the same order.
 *
 *   share   sizes (bytes, both ends included)   what it stands for
 *   -----   ---------------------------------   -------------------------
 *   60%     64 - 512                            requests, headers, small
 *                                               objects
 *   30%     512 - 16384                         packets, TLS records
 *   10%     16384 - 262144                      file chunks, big bodies
 *
 * Within a band every octave (64-128, 128-256, ...) is equally likely and
 * sizes are uniform within an octave: roughly log-uniform, as object sizes
 * are. The mean request is about 10.7 KiB. Integer arithmetic only, on
 * splitmix64, so the sequence is the same whatever the C++ library (the
 * standard distributions' output is not specified).
 */
#ifndef BENCH_MIXED_SIZES_H
#define BENCH_MIXED_SIZES_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bench
{

/* Sizes a thread cycles through: a multiple of every batch it takes. */
constexpr std::size_t mixed_sequence_length = 1u << 14;
constexpr std::uint64_t mixed_seed = 0x5e4ea11c47e5u;
constexpr const char *mixed_description =
	"60% 64-512 B, 30% 512 B-16 KiB, 10% 16-256 KiB; each octave of a "
	"band equally likely, uniform within it";

struct mixed_band {
	unsigned percent;
	std::uint32_t lo; /* a power of two */
	unsigned octaves; /* hi = lo << octaves */
};

constexpr mixed_band mixed_bands[] = {
	{60, 64, 3},	/* 64 - 512 */
	{30, 512, 5},	/* 512 - 16384 */
	{10, 16384, 4}, /* 16384 - 262144 */
};

inline std::uint64_t
splitmix64(std::uint64_t *state)
{
	std::uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Thread index's sequence: the same on every run and in every binary. */
inline std::vector<std::uint32_t>
mixed_sequence(unsigned thread_index)
{
	std::uint64_t state = mixed_seed + thread_index;
	std::vector<std::uint32_t> sizes(mixed_sequence_length);

	for (std::uint32_t &size : sizes) {
		unsigned pick = static_cast<unsigned>(splitmix64(&state) % 100);
		const mixed_band *b = mixed_bands;

		while (pick >= b->percent) {
			pick -= b->percent;
			b++;
		}
		std::uint32_t base = b->lo << (splitmix64(&state) % b->octaves);
		size = base + static_cast<std::uint32_t>(splitmix64(&state) %
							 (base + 1));
	}
	return sizes;
}

} // namespace bench

#endif /* BENCH_MIXED_SIZES_H */
