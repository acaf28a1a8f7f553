/* SPDX-License-Identifier: MIT */
/*
 * cbm's opt-in inline fast path. Not for direct use: define CBM_INLINE to
 * 1 before including <cbm.h> (or build with -DCBM_INLINE), and cbm_alloc,
 * cbm_free, cbm_alloc_bulk and cbm_free_bulk become inline functions: the
 * restartable sequence of the library's own fast path (src/rseq.h), run in
 * the caller, with the exported call as the way out for everything else
 * (an empty or full cache, a pool in portable mode or with bookkeeping, an
 * aborted sequence, a NULL pool or a bad pointer, which the exported call
 * reports as always). Programs that do not define CBM_INLINE see nothing
 * of this but the constants.
 *
 * The layout. The inline code reads the pool's first cache line and its
 * fast table (by CPU number, from two entries before CPU 0's), laid out as
 * below; CBM_INLINE_LAYOUT names that layout. The byte at
 * CBM_INLINE_OFF_KEY is the key, at that offset in every version of cbm:
 * the library sets it at cbm_pool_create to its own layout's number for a
 * pool whose fast paths may run without bookkeeping, and to 0 otherwise.
 * The inline code compares it with the layout it was compiled against,
 * and on any difference calls the exported functions: a program built
 * against another layout never misreads a pool, it only runs slower.
 * The rseq area is found by glibc's __rseq_offset rather than the pool's
 * copy of it (but in code for a shared object, below); the pool keeps the
 * copy at CBM_INLINE_OFF_RSEQ, which programs built against this header's
 * earlier versions read too.
 * Only x86-64 with GCC or Clang, C99 or C++11 and later, outside
 * ThreadSanitizer; elsewhere the calls stay exported.
 */
#ifndef CBM_INLINE_H
#define CBM_INLINE_H

#define CBM_INLINE_LAYOUT 1

/* Layout 1: byte offsets into the pool, and into a per-CPU cache. */
#define CBM_INLINE_OFF_BASE 0	    /* char *: buffer 0 */
#define CBM_INLINE_OFF_STRIDE_INV 8 /* uint64_t: odd part's inverse */
#define CBM_INLINE_OFF_TABLE 4112   /* cache *[]: by CPU number, -2 on */
#define CBM_INLINE_OFF_RSEQ 32	    /* ptrdiff_t: __rseq_offset (PIC only) */
#define CBM_INLINE_OFF_SLOTS 44	    /* uint32_t: slots per cache */
#define CBM_INLINE_OFF_CAPACITY 48  /* uint64_t: buffers */
#define CBM_INLINE_OFF_SHIFT 56	    /* uint8_t: stride's power of two */
#define CBM_INLINE_OFF_KEY 57	    /* uint8_t: every version */
#define CBM_INLINE_CACHE_SLOTS 64   /* a cache's slots; its word at 0 */
#define CBM_INLINE_COUNT_MAX 0x3ffffffe

#if defined(__SANITIZE_THREAD__)
#define CBM_INLINE_TSAN_ 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CBM_INLINE_TSAN_ 1
#endif
#endif

/* The inline functions and their 64-bit constants need C99 or C++11. */
#if (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L) ||              \
	(defined(__cplusplus) && __cplusplus >= 201103L)
#define CBM_INLINE_STD_ 1
#endif

#if defined(CBM_INLINE) && CBM_INLINE && defined(__x86_64__) &&                \
	defined(__GNUC__) && !defined(CBM_INLINE_TSAN_) &&                     \
	defined(CBM_INLINE_STD_)
#define CBM_INLINE_ACTIVE 1

#include <stddef.h>

/*
 * Where the thread's rseq area is, from the thread pointer: glibc's
 * __rseq_offset (2.35 and later), a constant, which the compiler loads once
 * and keeps in a register across calls. Bound to glibc's symbol under a
 * name of cbm's own, so that it cannot clash with <sys/rseq.h>'s
 * declaration whatever the language linkage around either. Code built
 * for a shared object (position-independent, not an executable) would
 * read the symbol through its GOT at every call, two loads: it reads the
 * pool's copy, one, instead.
 */
#if defined(__PIC__) && !defined(__PIE__)
#define CBM_INLINE_RSEQ_OFFSET_(pool)                                          \
	(*(const ptrdiff_t *)(const void *)((const char *)(pool) +             \
					    CBM_INLINE_OFF_RSEQ))
#else
extern const ptrdiff_t cbm_inline_rseq_offset_ __asm__("__rseq_offset");
#define CBM_INLINE_RSEQ_OFFSET_(pool) ((void)(pool), cbm_inline_rseq_offset_)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The key says this pool is laid out as this header says and may run
 * inline. */
static inline int
cbm_inline_usable(const cbm_pool *pool)
{
	return pool != (const cbm_pool *)0 &&
	       ((const unsigned char *)pool)[CBM_INLINE_OFF_KEY] ==
		       CBM_INLINE_LAYOUT;
}

/*
 * The pop sequence of src/rseq.h, with its argument: the CPU number read
 * inside it indexes the pool's fast table, whose entry for every value
 * cpu_id can hold is the CPU's cache or a sentinel that reads as held; a
 * held, empty cache or pops about to wrap bail out without a store; the
 * one store of the word commits. Returns the buffer, or NULL for "use the
 * exported call" (bailed out, or aborted): a slot never holds NULL, so
 * the caller's own test of the result for NULL is the same test, and the
 * compiler keeps one.
 */
static inline void *
cbm_inline_pop(const cbm_pool *pool)
{
	void *buf;

	__asm__ volatile(
		".pushsection __rseq_cs, \"aw\"\n\t"
		".balign 32\n\t"
		"3:\n\t"
		".long 0, 0\n\t"
		".quad 1f, 2f - 1f, 4f\n\t"
		".popsection\n\t"
		"leaq 3b(%%rip), %%rax\n\t"
		"movq %%rax, %%fs:8(%[rs])\n\t"
		"1:\n\t"
		"movslq %%fs:4(%[rs]), %%rax\n\t"
		"movq %c[table](%[pool],%%rax,8), %%rcx\n\t"
		"movq (%%rcx), %%rdx\n\t"
		"leal -1(%%rdx), %%eax\n\t"
		"cmpl %[count_max], %%eax\n\t"
		"ja 5f\n\t"
		"movq %c[slots](%%rcx,%%rax,8), %[buf]\n\t"
		"addq %[delta], %%rdx\n\t"
		"jc 5f\n\t"
		"movq %%rdx, (%%rcx)\n\t"
		"2:\n\t"
		"9:\n\t"
		".pushsection __rseq_failure, \"ax\"\n\t"
		"5:\n\t"
		"xorl %k[buf], %k[buf]\n\t"
		"jmp 9b\n\t"
		".byte 0x0f, 0xb9, 0x3d\n\t"
		".long 0x53053053\n\t"
		"4:\n\t"
		"xorl %k[buf], %k[buf]\n\t"
		"jmp 9b\n\t"
		".popsection\n\t"
		: [buf] "=&r"(buf)
		: [pool] "r"(pool), [rs] "r"(CBM_INLINE_RSEQ_OFFSET_(pool)),
		  [table] "i"(CBM_INLINE_OFF_TABLE),
		  [slots] "i"(CBM_INLINE_CACHE_SLOTS),
		  [count_max] "i"(CBM_INLINE_COUNT_MAX),
		  [delta] "r"(0xffffffffull) /* count - 1, pops + 1 */
		: "rax", "rcx", "rdx", "memory", "cc");
	return buf;
}

/* The push sequence of src/rseq.h (see cbm_inline_pop), after the pointer
 * check of src/check.h: the word's low half (count and lock bits) tested
 * and used as the index, the commit an add to the whole word in memory.
 * Returns 1 when committed, 0 for "use the exported call". No outputs: an
 * asm goto. */
static inline int
cbm_inline_push(cbm_pool *pool, void *buf)
{
	__asm__ goto(".pushsection __rseq_cs, \"aw\"\n\t"
		     ".balign 32\n\t"
		     "3:\n\t"
		     ".long 0, 0\n\t"
		     ".quad 1f, 2f - 1f, 4f\n\t"
		     ".popsection\n\t"
		     "movq %[buf], %%rax\n\t"
		     "subq %c[base](%[pool]), %%rax\n\t"
		     "movzbl %c[shift](%[pool]), %%ecx\n\t"
		     "imulq %c[inv](%[pool]), %%rax\n\t"
		     "rorq %%cl, %%rax\n\t"
		     "cmpq %c[cap](%[pool]), %%rax\n\t"
		     "jae %l[out]\n\t"
		     "leaq 3b(%%rip), %%rax\n\t"
		     "movq %%rax, %%fs:8(%[rs])\n\t"
		     "1:\n\t"
		     "movslq %%fs:4(%[rs]), %%rax\n\t"
		     "movq %c[table](%[pool],%%rax,8), %%rcx\n\t"
		     "movl (%%rcx), %%edx\n\t"
		     "cmpl %c[limit](%[pool]), %%edx\n\t"
		     "jae %l[out]\n\t"
		     "movq %[buf], %c[slots](%%rcx,%%rdx,8)\n\t"
		     "addq $1, (%%rcx)\n\t"
		     "2:\n\t"
		     ".pushsection __rseq_failure, \"ax\"\n\t"
		     ".byte 0x0f, 0xb9, 0x3d\n\t"
		     ".long 0x53053053\n\t"
		     "4:\n\t"
		     "jmp %l[out]\n\t"
		     ".popsection\n\t"
		     :
		     : [pool] "r"(pool), [buf] "r"(buf),
		       [base] "i"(CBM_INLINE_OFF_BASE),
		       [inv] "i"(CBM_INLINE_OFF_STRIDE_INV),
		       [shift] "i"(CBM_INLINE_OFF_SHIFT),
		       [cap] "i"(CBM_INLINE_OFF_CAPACITY),
		       [limit] "i"(CBM_INLINE_OFF_SLOTS),
		       [rs] "r"(CBM_INLINE_RSEQ_OFFSET_(pool)),
		       [table] "i"(CBM_INLINE_OFF_TABLE),
		       [slots] "i"(CBM_INLINE_CACHE_SLOTS)
		     : "rax", "rcx", "rdx", "memory", "cc"
		     : out);
	return 1;
out:
	return 0;
}

static inline void *
cbm_inline_alloc(cbm_pool *pool)
{
	void *buf;

	if (__builtin_expect(cbm_inline_usable(pool), 1) &&
	    __builtin_expect((buf = cbm_inline_pop(pool)) != (void *)0, 1))
		return buf;
	return (cbm_alloc)(pool);
}

static inline void
cbm_inline_free(cbm_pool *pool, void *buf)
{
	if (__builtin_expect(cbm_inline_usable(pool), 1) &&
	    __builtin_expect(cbm_inline_push(pool, buf), 1))
		return;
	(cbm_free)(pool, buf);
}

/* The bulk calls are already one sequence each inside the library; inline
 * they are the same calls. */
static inline int
cbm_inline_alloc_bulk(cbm_pool *pool, void **bufs, size_t n)
{
	return (cbm_alloc_bulk)(pool, bufs, n);
}

static inline void
cbm_inline_free_bulk(cbm_pool *pool, void *const *bufs, size_t n)
{
	(cbm_free_bulk)(pool, bufs, n);
}

#ifdef __cplusplus
}
#endif

#define cbm_alloc(pool) cbm_inline_alloc(pool)
#define cbm_free(pool, buf) cbm_inline_free(pool, buf)
#define cbm_alloc_bulk(pool, bufs, n) cbm_inline_alloc_bulk(pool, bufs, n)
#define cbm_free_bulk(pool, bufs, n) cbm_inline_free_bulk(pool, bufs, n)
#endif /* CBM_INLINE on x86-64 */

#endif /* CBM_INLINE_H */
