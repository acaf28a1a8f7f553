/* SPDX-License-Identifier: MIT */
/*
 * One Google Benchmark binary per peer: meson.build compiles this file once
 * per peer, naming the peer's header and struct, because three of the
 * peers replace malloc for the whole process and cannot share one.
 */
#include BENCH_PEER_HEADER
#include "harness.h"

int
main(int argc, char **argv)
{
	return bench::run<BENCH_PEER>(argc, argv);
}
