/* SPDX-License-Identifier: MIT */
/*
 * Building a heap's size classes (sizeclass.h, where the grid and the
 * index are argued).
 */
#include "sizeclass.h"

#include <errno.h>

#include "contract.h"

/* The grid sizes in order, from 16 up, multiples of 16 only: fills out
 * with those up to limit (and the first above it) and returns how many;
 * 0 past CBM_CLASSES_MAX. */
static unsigned
grid(size_t *out, size_t from, size_t limit, unsigned shift)
{
	unsigned n = 0;

	/* 16 itself, then each doubling (2^k, 2^(k+1)] from k = 4. */
	if (CBM_CLASS_ALIGN >= from) {
		out[n++] = CBM_CLASS_ALIGN;
		if (CBM_CLASS_ALIGN >= limit)
			return n;
	}
	for (unsigned k = 4; k < 8 * sizeof(size_t) - 1; k++) {
		size_t base = (size_t)1 << k;
		size_t step = base >> shift;

		for (size_t j = 1; j <= ((size_t)1 << shift); j++) {
			size_t size = base + j * step;

			if (size % CBM_CLASS_ALIGN != 0 || size < from)
				continue;
			if (n == CBM_CLASSES_MAX)
				return 0;
			out[n++] = size;
			if (size >= limit)
				return n;
		}
	}
	return 0;
}

static int64_t
position(size_t n, unsigned shift)
{
	unsigned k =
		63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));

	return ((int64_t)k << shift) + (int64_t)((n - 1) >> (k - shift));
}

int
cbm_sizeclasses_init(struct cbm_sizeclasses *c, size_t min_size,
		     size_t max_size, unsigned spacing)
{
	unsigned shift = spacing == 1 ? 0 : spacing == 2 ? 1 : 2;

	if ((spacing != 1 && spacing != 2 && spacing != 4) ||
	    min_size < CBM_CLASS_ALIGN || min_size > max_size ||
	    max_size > CBM_CLASS_SIZE_MAX)
		return -EINVAL;
	c->shift = shift;
	c->n = grid(c->size, min_size, max_size, shift);
	if (c->n == 0)
		return -EINVAL; /* more classes than a heap holds */
	c->first = c->size[0];
	/* The table: for each n <= CBM_CLASS_TABLE_MAX, the smallest class
	 * >= n (the largest, past max_size: never asked). */
	for (size_t i = 0, cls = 0; i < sizeof(c->small); i++) {
		while (cls + 1 < c->n && c->size[cls] < i * CBM_CLASS_ALIGN)
			cls++;
		c->small[i] = (uint8_t)cls;
	}
	/* The bias from a class above the table, where every step is at
	 * least 16 (its grid positions are consecutive: sizeclass.h); the
	 * first such one. */
	c->bias = 0;
	for (unsigned i = 0; i < c->n; i++)
		if (c->size[i] > CBM_CLASS_TABLE_MAX) {
			c->bias = position(c->size[i], shift) - (int64_t)i;
			break;
		}
	/* Check the argument on this heap's own classes: every class, and
	 * the size just above each, land where they must. */
	for (unsigned i = 0;
	     i < c->n && !CBM_PLANTED(CBM_PLANT_CLASS_TOO_SMALL); i++) {
		CBM_ASSERT(cbm_size_class(c, c->size[i]) == i);
		if (i + 1 < c->n)
			CBM_ASSERT(cbm_size_class(c, c->size[i] + 1) == i + 1);
	}
	return 0;
}
