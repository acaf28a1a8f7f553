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
 * bounds are >= capacity because capacity x d < 2^64 (pool.c checks it for
 * the ceiling, max, which bounds every capacity the pool grows to).
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
	bool placed; /* at an address its caller reserved (cbm_arena_place) */
};

/*
 * Where the buffers are (read-only after create). The arena is reserved
 * for max buffers at create; how many of them exist at a moment is the
 * global tier's frontier (frontier.h), never more than max.
 *
 * Release groups: the smallest runs of buffers whose memory is whole pages.
 * Group g is buffers [g x group, (g + 1) x group), the last one cut short
 * by max when max is not a multiple of group (cbm_blocks_group_size). A
 * pool with region callbacks makes its groups its regions (pool.c). For a stride below the
 * page size, group x stride is the least common multiple of the two, so a
 * group is exactly a run of whole pages (the base is page aligned); for a
 * larger stride too when that is at most CBM_GROUP_MAX_LARGE buffers
 * (a stride of 5120: 4 buffers, 20 KiB); beyond, a group is one buffer,
 * and its pages are those wholly inside it (a page shared with a
 * neighbour is never given back).
 */
#define CBM_GROUP_MAX_LARGE 16
struct cbm_blocks {
	char *base;
	size_t stride;	       /* bytes from one buffer to the next */
	uint64_t stride_inv;   /* inverse of stride's odd part, mod 2^64 */
	uint64_t max;	       /* buffers the arena is reserved for */
	unsigned stride_shift; /* trailing zero bits of stride */
	uint32_t group;	       /* buffers per release group */
	size_t page;	       /* the OS page size */
};

static inline uint64_t
cbm_ror64(uint64_t x, unsigned k)
{
	return (x >> k) | (x << ((64 - k) & 63));
}

/* The buffer number ptr would be; >= max when it is not one. Takes
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

/* Buffers in release group g: group, fewer for a last one cut by max. */
static inline uint32_t
cbm_blocks_group_size(const struct cbm_blocks *b, uint32_t g)
{
	uint64_t first = (uint64_t)g * b->group;

	return b->max - first < b->group ? (uint32_t)(b->max - first)
					 : b->group;
}

/* Geometry for max buffers stride bytes apart from base (page aligned). */
void cbm_blocks_init(struct cbm_blocks *b, char *base, size_t stride,
		     uint64_t max);

/* The pages of release group g that may be given back: [*lo, *hi), empty
 * (lo == hi) when the group has no whole page. */
void cbm_blocks_group_pages(const struct cbm_blocks *b, uint32_t g, char **lo,
			    char **hi);

/*
 * Reserve bytes of address space, zeroed, that the OS backs page by page as
 * it is first touched (MAP_NORESERVE: nothing is committed up front, so a
 * reservation for a ceiling costs nothing resident). NULL when the address
 * space is short. cbm_unreserve takes the same bytes.
 */
void *cbm_reserve(size_t bytes);
void cbm_unreserve(void *p, size_t bytes);

/* Give the pages [lo, hi) (page aligned) back to the OS; they read as zero
 * when next touched, and the process's resident set falls at once
 * (MADV_DONTNEED; MADV_FREE would leave RSS up until the machine runs short,
 * which a user watching RSS reads as a leak). */
void cbm_pages_release(char *lo, char *hi);

/*
 * Reserve bytes of zeroed memory whose start is aligned to align (a power
 * of two) and to the page. With huge, try explicit huge pages (not for an
 * elastic pool: a reservation of huge pages would be charged up front, and a
 * fault past the huge page pool is a SIGBUS), then transparent ones.
 * Returns 0 or -ENOMEM.
 */
int cbm_arena_map(struct cbm_arena *a, size_t bytes, size_t align, bool huge,
		  bool elastic);
/*
 * The arena at a given address instead: bytes at at (page aligned, inside
 * address space the caller reserved and keeps, a size-class heap's slot),
 * mapped fresh and zeroed over what was there; with huge, transparent huge
 * pages asked for. Returns 0 or -ENOMEM. Unmapping a placed arena leaves
 * the range reserved again (no access, no pages) for its caller, never a
 * hole another mapping could take.
 */
int cbm_arena_place(struct cbm_arena *a, void *at, size_t bytes, bool huge);
void cbm_arena_unmap(struct cbm_arena *a);

/* Reserve bytes of address space with no access at all (a heap's range,
 * which arenas are then placed in); NULL when it cannot be had. */
void *cbm_reserve_range(size_t bytes);

#endif /* CBM_ARENA_H */
