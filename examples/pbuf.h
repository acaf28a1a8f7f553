/* SPDX-License-Identifier: MIT */
/*
 * A provided-buffer ring (io_uring, Linux 5.19+) that a cbm heap (or
 * pool) keeps full: the kernel picks a first buffer (bufs_get) for each
 * receive, the application takes it from the ring when the completion
 * names it, and the ring gets a fresh one in its place at once. The buffer
 * taken goes back to the heap when the application is done with it, which
 * may be much later (a request that arrives in pieces): the ring never
 * waits for it.
 *
 * Buffer ids: the ring has `entries` slots, and a slot's id (bid) is what
 * the kernel reports. slot[bid] is the buffer the ring holds under bid;
 * once the kernel has used it, bid waits on the empty list for a
 * replacement. Each bid is in the ring at most once, so the ring never
 * holds more than `entries` buffers and never overflows.
 *
 * Single-threaded: one ring per worker, used only by its worker, which
 * must also be the only thread that submits to the io_uring the ring is
 * registered with.
 */
#ifndef EXAMPLES_PBUF_H
#define EXAMPLES_PBUF_H

#include <liburing.h>
#include <stdint.h>

#include "bufs.h"

struct pbuf_ring {
	struct io_uring_buf_ring *br;
	size_t map_len;
	struct bufs *bufs;
	void **slot;	 /* slot[bid]: in the ring under bid, or NULL */
	uint16_t *empty; /* bids waiting for a buffer */
	unsigned nempty;
	unsigned entries; /* a power of two */
	uint16_t bgid;
	uint64_t dry; /* refills cut short by an empty heap or pool */
};

/*
 * Register a ring of entries buffers (a power of two, <= 32768) as buffer
 * group bgid of ring, and fill it from b. Returns 0, or a negative errno:
 * -EINVAL when the kernel has no provided-buffer rings, -ENOMEM.
 */
int pbuf_ring_init(struct pbuf_ring *r, struct io_uring *ring, struct bufs *b,
		   unsigned entries, uint16_t bgid);

/*
 * A completion said the kernel put data in buffer bid: it is the caller's
 * now (give it back with bufs_put), and bid waits for a replacement.
 */
void *pbuf_ring_take(struct pbuf_ring *r, unsigned bid);

/*
 * Give every empty bid a fresh first buffer, as far as the heap allows, and
 * show them to the kernel. Returns how many buffers the ring holds.
 */
unsigned pbuf_ring_refill(struct pbuf_ring *r);

/* Unregister, and give every buffer the ring holds back. */
void pbuf_ring_fini(struct pbuf_ring *r, struct io_uring *ring);

#endif /* EXAMPLES_PBUF_H */
