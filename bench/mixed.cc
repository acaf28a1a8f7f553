/* SPDX-License-Identifier: MIT */
/*
 * One mixed-size Google Benchmark binary per allocator (mixed.h):
 * meson.build compiles this file once for cbm_heap and once per malloc,
 * since three of the mallocs replace malloc for the whole process.
 */
#include BENCH_PEER_HEADER
#include "mixed.h"

int
main(int argc, char **argv)
{
	return bench::mixed::run<BENCH_PEER>(argc, argv);
}
