/* SPDX-License-Identifier: MIT */
/*
 * A single-producer, single-consumer hand-off of buffer pointers between two
 * benchmark threads, over ck_ring (the house choice for hand-offs in bench/).
 *
 * It lives in C because ck_ring.h does not compile as C++. A call moves a
 * whole batch, so the C++ harness pays one out-of-line call per batch, and
 * every peer pays the same.
 *
 * Contract: exactly one thread calls bench_handoff_send and exactly one
 * other thread calls bench_handoff_receive on a given hand-off (ck's _spsc).
 */
#ifndef BENCH_HANDOFF_H
#define BENCH_HANDOFF_H

#ifdef __cplusplus
extern "C" {
#endif

struct bench_handoff;

/* slots: a power of two, at least 2; the ring holds slots - 1 pointers.
 * NULL when memory runs out. */
struct bench_handoff *bench_handoff_create(unsigned slots);
void bench_handoff_destroy(struct bench_handoff *h);

/* Enqueue bufs[0..n-1], waiting while the ring is full. Producer only. */
void bench_handoff_send(struct bench_handoff *h, void *const *bufs, unsigned n);

/* Dequeue exactly n pointers into bufs, waiting while the ring is empty.
 * Consumer only. */
void bench_handoff_receive(struct bench_handoff *h, void **bufs, unsigned n);

#ifdef __cplusplus
}
#endif

#endif /* BENCH_HANDOFF_H */
