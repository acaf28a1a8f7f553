/* SPDX-License-Identifier: MIT */
/*
 * The arena: the memory of a pool's buffers, one mapping per pool, and its
 * geometry: buffer i lives at base + i * stride, and a pointer is turned
 * back into its index with no division.
 *
 * The pointer check costs a subtraction, a multiply, a rotate and a
 * compare. The arena is contiguous and its stride is d = odd x 2^k. With
 * off = ptr - base (wrapping below base) and q = ror(off x inverse(odd) mod
 * 2^64, k): ptr is buffer q exactly when q < capacity. If 2^k does not
 * divide off, the product's low k bits are not all zero (multiplying by an
 * odd number keeps the lowest set bit), the rotation moves them to the top,
 * and q >= 2^(64-k) > capacity. If it does, q = (off >> k) x inverse(odd)
 * mod 2^(64-k), which is (off >> k) / odd when odd divides it, and
 * otherwise exceeds (2^(64-k) - 1) / odd, because the multiples of odd
 * below 2^(64-k) are exactly the images of 0 .. (2^(64-k) - 1) / odd. Both
 * bounds are >= capacity because capacity x d < 2^64 (pool.c checks it).
 * So one compare rejects foreign and interior pointers alike (the exact
 * division test of Granlund and Montgomery), and only the cold path tells
 * them apart.
 */
#ifndef CBM_ARENA_H
#define CBM_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cbm_arena_pages {
	CBM_PAGES_NORMAL = 0,
	CBM_PAGES_HUGETLB = 1, /* explicit huge pages (MAP_HUGETLB) */
	CBM_PAGES_THP = 2,     /* transparent huge pages asked with madvise */
};

struct cbm_arena {
	char *base; /* aligned start of the buffers */
	void *map;  /* what to munmap */
	size_t map_bytes;
	enum cbm_arena_pages pages;
};

/* Where the buffers are (read-only after create). */
struct cbm_blocks {
	char *base;
	size_t stride;	       /* bytes from one buffer to the next */
	uint64_t stride_inv;   /* inverse of stride's odd part, mod 2^64 */
	uint64_t capacity;     /* 64 bits: compared with 64 */
	unsigned stride_shift; /* trailing zero bits of stride */
};

static inline uint64_t
cbm_ror64(uint64_t x, unsigned k)
{
	return (x >> k) | (x << ((64 - k) & 63));
}

/* The buffer number ptr would be; >= capacity when it is not one. Takes
 * the fields one by one so that the pool's fast path can pass the copies
 * on its hot line (pool.h). */
static inline uint64_t
cbm_quotient(const char *base, uint64_t stride_inv, unsigned stride_shift,
	     const void *ptr)
{
	uintptr_t off = (uintptr_t)ptr - (uintptr_t)base;

	return cbm_ror64(off * stride_inv, stride_shift);
}

static inline void *
cbm_blocks_ptr(const struct cbm_blocks *b, uint32_t idx)
{
	return b->base + (size_t)idx * b->stride;
}

/* Index of a pointer the library itself handed out or holds. */
static inline uint32_t
cbm_blocks_index(const struct cbm_blocks *b, const void *ptr)
{
	return (uint32_t)cbm_quotient(b->base, b->stride_inv, b->stride_shift,
				      ptr);
}

/* Geometry for capacity buffers stride bytes apart from base. */
void cbm_blocks_init(struct cbm_blocks *b, char *base, size_t stride,
		     uint64_t capacity);

/*
 * Map bytes of zeroed memory whose start is aligned to align (a power of
 * two). With huge, try explicit huge pages, then transparent ones. Returns 0
 * or -ENOMEM.
 */
int cbm_arena_map(struct cbm_arena *a, size_t bytes, size_t align, bool huge);
void cbm_arena_unmap(struct cbm_arena *a);

#endif /* CBM_ARENA_H */
