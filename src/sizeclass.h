/* SPDX-License-Identifier: MIT */
/*
 * Size classes of a heap (heap.c): which class serves a request, in a few
 * instructions and at most one branch past the first compare.
 *
 * The grid. With spacing s = 2^b classes per doubling, the sizes in
 * (2^k, 2^(k+1)] are 2^k + j x 2^(k-b) for j = 1 .. s (s = 4: 1280, 1536,
 * 1792, 2048), so a request just above one class gets the next, wasting
 * less than 2^(k-b) of at least 2^k + 2^(k-b): under 1/(s + 1) of the
 * buffer. Classes are multiples of 16 (malloc's alignment): in the
 * doublings whose step 2^(k-b) is below 16 (sizes up to 16 x s) the grid
 * points that are not are left out, and those few classes come from a
 * table instead.
 *
 * The index. For a request n above 16 x s (every step at least 16), with
 * k = floor(log2(n - 1)) (a leading-zero count), the grid position
 * pos(n) = k x s + ((n - 1) >> (k - b)) counts up by one from each grid
 * size to the next, including across doublings: n = 2^(k+1) gives
 * k x s + 2s - 1, and n = 2^(k+1) + 1 gives (k + 1) x s + s. So the class
 * is pos(n) - bias, one constant for the heap.
 *
 * Requests up to 4 KiB (most of a server's: headers, packets) come from a
 * table instead, one entry per 16 bytes (257 bytes, four cache lines):
 * a compare, an add, a shift and a load. It also covers the doublings
 * whose steps are below 16, and requests below the smallest class (which
 * above 4 KiB are raised to it, a conditional move, before the formula).
 */
#ifndef CBM_SIZECLASS_H
#define CBM_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "plant.h"

#define CBM_CLASSES_MAX 128
#define CBM_CLASS_ALIGN 16	 /* every class a multiple */
#define CBM_CLASS_ALIGN_MAX 4096 /* buffers aligned up to this */
#define CBM_CLASS_SIZE_MAX ((size_t)1 << 30)
#define CBM_CLASS_TABLE_MAX 4096 /* requests up to it: the table */

struct cbm_sizeclasses {
	/* The lookup (cbm_size_class), first. */
	size_t first;	/* the smallest class */
	int64_t bias;	/* class = pos(n) - bias above the table */
	unsigned shift; /* b = log2(spacing) */
	/* The class of every request up to CBM_CLASS_TABLE_MAX:
	 * small[(n + 15) >> 4]. */
	uint8_t small[CBM_CLASS_TABLE_MAX / CBM_CLASS_ALIGN + 1];
	unsigned n;		      /* classes */
	size_t size[CBM_CLASSES_MAX]; /* smallest first */
};

/*
 * Classes from the smallest grid size >= min_size to the smallest >=
 * max_size, spacing (1, 2 or 4) per doubling. Returns 0, or -EINVAL for a
 * spacing not 1, 2 or 4, min_size below 16 or above max_size, max_size
 * above CBM_CLASS_SIZE_MAX.
 */
int cbm_sizeclasses_init(struct cbm_sizeclasses *c, size_t min_size,
			 size_t max_size, unsigned spacing);

/* Alignment of a class's buffers: its size's largest power-of-two
 * divisor, at most 4096 (at least 16: classes are multiples of 16). */
static inline size_t
cbm_class_align(size_t size)
{
	size_t low = size & -size;

	return low < CBM_CLASS_ALIGN_MAX ? low : CBM_CLASS_ALIGN_MAX;
}

/* The class that serves a request of n bytes: the smallest whose size is
 * >= n. The caller has checked n against the heap's max_size, which is at
 * most the largest class. */
static inline unsigned
cbm_size_class(const struct cbm_sizeclasses *c, size_t n)
{
	unsigned k;

	if (CBM_PLANTED(CBM_PLANT_CLASS_TOO_SMALL)) /* the bug: plant.h */
		n = n > 2 * CBM_CLASS_ALIGN ? n - CBM_CLASS_ALIGN : n;
	if (__builtin_expect(n <= CBM_CLASS_TABLE_MAX, 1))
		return c->small[(n + CBM_CLASS_ALIGN - 1) / CBM_CLASS_ALIGN];
	n = n < c->first ? c->first : n;
	k = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
	return (unsigned)(((int64_t)k << c->shift) +
			  (int64_t)((n - 1) >> (k - c->shift)) - c->bias);
}

#endif /* CBM_SIZECLASS_H */
