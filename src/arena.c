/* SPDX-License-Identifier: MIT */
/*
 * Arena mapping. Alignments above the page size are had by mapping align
 * bytes more than needed and unmapping the misaligned head and the tail.
 */
#include "arena.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "contract.h"
#include "plant.h"

#define HUGE_PAGE_BYTES ((size_t)2 << 20)

/* Inverse of an odd number modulo 2^64, by Newton's iteration: each step
 * doubles the number of correct low bits, from 3 (d * d == 1 mod 8). */
static uint64_t
inverse_odd(uint64_t d)
{
	uint64_t x = d;

	for (int i = 0; i < 5; i++)
		x *= 2 - d * x;
	return x;
}

static size_t
round_up(size_t x, size_t to)
{
	return (x + to - 1) & ~(to - 1);
}

static size_t
gcd(size_t a, size_t b)
{
	while (b != 0) {
		size_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

void
cbm_blocks_init(struct cbm_blocks *b, char *base, size_t stride, uint64_t max)
{
	b->base = base;
	b->stride = stride;
	b->max = max;
	b->stride_shift = (unsigned)__builtin_ctzll(stride);
	b->stride_inv = inverse_odd(stride >> b->stride_shift);
	b->page = (size_t)sysconf(_SC_PAGESIZE);
	/* lcm(stride, page) / stride = page / gcd: at most page buffers, so
	 * a group is whole pages. Above a page too when that is a few
	 * buffers (5120-byte buffers: 4 of them, 20 KiB): one buffer a group
	 * would leave the pages it shares with its neighbours resident
	 * (charged to a heap's budget) for good. Otherwise one buffer. */
	b->group = (uint32_t)(b->page / gcd(stride, b->page));
	if (stride >= b->page && b->group > CBM_GROUP_MAX_LARGE)
		b->group = 1;
}

void
cbm_blocks_group_pages(const struct cbm_blocks *b, uint32_t g, char **lo,
		       char **hi)
{
	size_t start = (size_t)g * b->group * b->stride;
	size_t end = start + (size_t)cbm_blocks_group_size(b, g) * b->stride;

	start = round_up(start, b->page);
	end &= ~(b->page - 1);
	*lo = b->base + start;
	*hi = b->base + (end > start ? end : start);
}

void *
cbm_reserve(size_t bytes)
{
	void *p;

	if (CBM_FAIL_HERE("a reservation"))
		return NULL;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void
cbm_unreserve(void *p, size_t bytes)
{
	if (p != NULL)
		munmap(p, bytes);
}

void
cbm_pages_release(char *lo, char *hi)
{
	/* Cannot fail on a private anonymous mapping of ours with page
	 * aligned bounds; if it ever did, the pages would stay resident and
	 * keep their contents, which is harmless. */
	if (hi > lo)
		(void)madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
}

/* Map at least bytes, aligned to align; trims the slack. */
static void *
map_aligned(size_t bytes, size_t align, size_t *mapped)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t want = round_up(bytes, page);
	size_t slack = align > page ? align : 0;
	char *p, *start;

	if (want < bytes || want + slack < want)
		return NULL;
	p = mmap(NULL, want + slack, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	start = (char *)round_up((uintptr_t)p, align > page ? align : page);
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (p + want + slack > start + want)
		munmap(start + want,
		       (size_t)(p + want + slack - (start + want)));
	*mapped = want;
	return start;
}

int
cbm_arena_map(struct cbm_arena *a, size_t bytes, size_t align, bool huge,
	      bool elastic)
{
	size_t mapped;
	void *p;

	a->pages = CBM_PAGES_NORMAL;
	if (CBM_FAIL_HERE("the arena"))
		return -ENOMEM;
	if (huge && !elastic) {
		size_t hb = round_up(bytes, HUGE_PAGE_BYTES);

		if (hb >= bytes) {
			p = mmap(NULL, hb, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1,
				 0);
			/* A huge page mapping is 2 MiB aligned, which covers
			 * any align up to that. */
			if (p != MAP_FAILED &&
			    ((uintptr_t)p & (align - 1)) == 0) {
				a->base = a->map = p;
				a->map_bytes = hb;
				a->pages = CBM_PAGES_HUGETLB;
				return 0;
			}
			if (p != MAP_FAILED)
				munmap(p, hb);
		}
		/* THP only backs 2 MiB-aligned ranges. */
		if (align < HUGE_PAGE_BYTES)
			align = HUGE_PAGE_BYTES;
	}
	p = map_aligned(bytes, align, &mapped);
	if (p == NULL)
		return -ENOMEM;
	a->base = a->map = p;
	a->map_bytes = mapped;
	if (huge && madvise(p, mapped, MADV_HUGEPAGE) == 0)
		a->pages = CBM_PAGES_THP;
	return 0;
}

int
cbm_arena_place(struct cbm_arena *a, void *at, size_t bytes, bool huge)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t want = round_up(bytes, page);
	void *p;

	a->pages = CBM_PAGES_NORMAL;
	a->placed = true;
	if (CBM_FAIL_HERE("the arena") || want < bytes)
		return -ENOMEM;
	CBM_ASSERT(((uintptr_t)at & (page - 1)) == 0);
	/* MAP_FIXED replaces the caller's own reservation, nothing else. */
	p = mmap(at, want, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
		 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	a->base = a->map = p;
	a->map_bytes = want;
	if (huge && madvise(p, want, MADV_HUGEPAGE) == 0)
		a->pages = CBM_PAGES_THP;
	return 0;
}

void *
cbm_reserve_range(size_t bytes)
{
	void *p;

	if (CBM_FAIL_HERE("a reservation"))
		return NULL;
	p = mmap(NULL, bytes, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void
cbm_arena_unmap(struct cbm_arena *a)
{
	if (a->map != NULL && a->placed)
		/* Back to a bare reservation: the pages go, the range stays
		 * its caller's. If this failed the pages would stay mapped
		 * until the caller unmaps its range, which is harmless. */
		(void)mmap(a->map, a->map_bytes, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				   MAP_FIXED,
			   -1, 0);
	else if (a->map != NULL)
		munmap(a->map, a->map_bytes);
	a->map = a->base = NULL;
}
