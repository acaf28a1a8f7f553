/* SPDX-License-Identifier: MIT */
/*
 * Cache colouring of the arena's stride.
 *
 * A buffer's first cache line is where a server reads and writes headers,
 * and the cache set a line falls into is given by its address bits from 6
 * up (64-byte lines). With buffers stride bytes apart, the first lines of
 * consecutive buffers step through the sets stride / 64 at a time, so they
 * use only sets / gcd(stride / 64, sets) of them: with a 2 KiB stride two
 * of an L1's 64 sets, with 64 KiB one, and a burst of 32 buffers evicts
 * itself (8 ways per set). One line more makes stride / 64 odd, and the
 * first lines then step through every set. Bonwick's slab allocator
 * colours its slabs for the same reason; DPDK pads its objects.
 *
 * Only strides with at least 16 lines' worth of power of two (multiples of
 * 1024) are padded: below, they already reach a quarter of the sets or
 * more, and the line would cost more than 1/16 of the arena. An alignment
 * of 1024 or more fixes the low address bits whatever the stride: nothing
 * to gain, so nothing is padded. Nor are strides of 1 to 15 whole pages:
 * a free buffer's pages go back to the system only where they lie wholly
 * inside it (release.h), and a padded stride of k pages has only k - 1 of
 * them, which from 16 pages up costs at most 1/16 of what can go back,
 * and below it far more than the colour is worth. Below a page, a padded
 * stride lengthens the runs of buffers whose pages go back together (the
 * release groups, arena.h): pool.c colours only pools that keep their
 * memory (fixed, no background release). The pointer check stays
 * exact: it is computed from whatever stride the arena gets (arena.h).
 */
#ifndef CBM_COLOUR_H
#define CBM_COLOUR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CBM_COLOUR_PERIOD 1024 /* strides that are multiples get a line */
#define CBM_COLOUR_LINE 64

#define CBM_COLOUR_MIN_PAGES 16 /* page multiples padded from here on */

/* Pad *stride (a multiple of align, a power of two) as above, for pages of
 * page bytes; false when the padded stride would not fit a size_t. */
static inline bool
cbm_colour_stride(size_t *stride, size_t align, size_t page)
{
	size_t pad = align > CBM_COLOUR_LINE ? align : CBM_COLOUR_LINE;

	if (align >= CBM_COLOUR_PERIOD || *stride % CBM_COLOUR_PERIOD != 0)
		return true;
	if (*stride % page == 0 && *stride / page < CBM_COLOUR_MIN_PAGES)
		return true;
	if (*stride > SIZE_MAX - pad)
		return false;
	*stride += pad;
	return true;
}

#endif /* CBM_COLOUR_H */
