/* SPDX-License-Identifier: MIT */
/* A provided-buffer ring fed by a cbm heap or pool (pbuf.h). */
#include "pbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int
pbuf_ring_init(struct pbuf_ring *r, struct io_uring *ring, struct bufs *b,
	       unsigned entries, uint16_t bgid)
{
	struct io_uring_buf_reg reg = {0};
	int rc;

	memset(r, 0, sizeof(*r));
	r->bufs = b;
	r->entries = entries;
	r->bgid = bgid;
	r->map_len = entries * sizeof(struct io_uring_buf);
	r->slot = calloc(entries, sizeof(*r->slot));
	r->empty = calloc(entries, sizeof(*r->empty));
	/* The kernel wants the ring page-aligned. */
	r->br = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->br == MAP_FAILED)
		r->br = NULL;
	if (r->slot == NULL || r->empty == NULL || r->br == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	io_uring_buf_ring_init(r->br);
	reg.ring_addr = (uint64_t)(uintptr_t)r->br;
	reg.ring_entries = entries;
	reg.bgid = bgid;
	rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc)
		goto fail;
	for (unsigned i = 0; i < entries; i++)
		r->empty[r->nempty++] = (uint16_t)(entries - 1 - i);
	pbuf_ring_refill(r);
	return 0;
fail:
	if (r->br)
		munmap(r->br, r->map_len);
	free(r->slot);
	free(r->empty);
	memset(r, 0, sizeof(*r));
	return rc;
}

void *
pbuf_ring_take(struct pbuf_ring *r, unsigned bid)
{
	void *p = r->slot[bid];

	r->slot[bid] = NULL;
	r->empty[r->nempty++] = (uint16_t)bid;
	return p;
}

unsigned
pbuf_ring_refill(struct pbuf_ring *r)
{
	int mask = io_uring_buf_ring_mask(r->entries);
	int added = 0;

	while (r->nempty > 0) {
		uint16_t bid = r->empty[r->nempty - 1];
		void *p = bufs_get(r->bufs);

		if (p == NULL) {
			r->dry++;
			break;
		}
		r->nempty--;
		r->slot[bid] = p;
		io_uring_buf_ring_add(r->br, p, (unsigned)r->bufs->size, bid,
				      mask, added++);
	}
	/* A release store of the tail: the entries above before the kernel
	 * sees them. */
	if (added)
		io_uring_buf_ring_advance(r->br, added);
	return r->entries - r->nempty;
}

void
pbuf_ring_fini(struct pbuf_ring *r, struct io_uring *ring)
{
	if (r->br == NULL)
		return;
	/* After this the kernel uses none of them. */
	io_uring_unregister_buf_ring(ring, r->bgid);
	for (unsigned i = 0; i < r->entries; i++)
		bufs_put(r->bufs, r->slot[i]);
	munmap(r->br, r->map_len);
	free(r->slot);
	free(r->empty);
	memset(r, 0, sizeof(*r));
}
