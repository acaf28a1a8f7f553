/*
 * The arena: the memory of a pool's buffers, one mapping per pool.
 *
 * Buffer i lives at base + i * stride. Membership and alignment of a pointer
 * are checked with one subtraction, a compare and an exact-division test
 * (check.h), so the arena must be one contiguous range.
 */
#ifndef CBM_ARENA_H
#define CBM_ARENA_H

#include <stdbool.h>
#include <stddef.h>

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

/*
 * Map bytes of zeroed memory whose start is aligned to align (a power of
 * two). With huge, try explicit huge pages, then transparent ones. Returns 0
 * or -ENOMEM.
 */
int cbm_arena_map(struct cbm_arena *a, size_t bytes, size_t align, bool huge);
void cbm_arena_unmap(struct cbm_arena *a);

#endif /* CBM_ARENA_H */
