/* SPDX-License-Identifier: MIT */
/*
 * cbm_alloc and cbm_free of rseq builds, in assembly (fastpath.h says why
 * and what it shares with C), as naked C functions: the compiler emits
 * their prototypes' debug information (the ABI check reads it) and
 * nothing of its own, the body is the asm. Each is the restartable
 * sequence of rseq.h's cbm_rseq_pop or cbm_rseq_push, with the argument
 * for it that rseq.h gives, here in short:
 *  - the CPU number is read inside the sequence (label 1 on), and indexes
 *    the pool's fast table (percpu.h), read-only after create: its entry
 *    for every value cpu_id can hold is the CPU's own cache, or the
 *    sentinel, whose word has the lock bits set;
 *  - a word with a lock bit (a slow path or a drainer holds the cache, or
 *    it is the sentinel), an empty cache (pop), a full one (push) or a
 *    pop count about to wrap bails out to the C slow path before any
 *    store but push's slot above the count, which no reader looks at
 *    (percpu.h, P1);
 *  - the one write of the word is the last instruction before label 2
 *    (post_commit): it commits (pop: a store; push: an add to the word in
 *    memory, rseq.h). An abort anywhere before it leaves the cache as it
 *    was, and the handler hands the call to C, which retries.
 * The pool's fields read here are read-only after create; rdi (the pool)
 * and rsi (the buffer) are never written, so every exit is a tail call
 * with the caller's arguments.
 *
 * Registers: r8 the rseq area's offset from the thread pointer, rcx the
 * cache, rdx its word (free: its low half), rax scratch and result. The
 * fast table is at a fixed offset from the pool (pool.h,
 * CBM_POOL_FAST_AT).
 */
#include "fastpath.h"

#include "compiler.h"

#if defined(__x86_64__) && !defined(CBM_TSAN)
#define CBM_S_(x) #x
#define CBM_S(x) CBM_S_(x)
/* The arguments, which only the asm reads (in rdi and rsi). */
#define CBM_IN_RDI __attribute__((unused))
#define CBM_IN_RSI __attribute__((unused))

/* The pop delta, the descriptors, the abort handlers: outside any
 * function. */
// clang-format off
__asm__(
	/* A pop adds this to the word: count - 1, pops + 1 (percpu.h). Not an
	 * immediate (it takes 33 bits), so a memory operand, which costs no
	 * instruction of its own. */
	".section .rodata\n"
	".balign 8\n"
	".Lpop_delta:\n"
	".quad 0xffffffff\n"
	/* The descriptors: version 0, flags 0, start, post_commit - start,
	 * abort. */
	".section __rseq_cs, \"aw\"\n"
	".balign 32\n"
	".Lalloc_cs:\n"
	".long 0, 0\n"
	".quad .Lalloc_start, .Lalloc_post - .Lalloc_start, .Lalloc_abort\n"
	".balign 32\n"
	".Lfree_cs:\n"
	".long 0, 0\n"
	".quad .Lfree_start, .Lfree_post - .Lfree_start, .Lfree_abort\n"
	/* The C slow paths (alloc.c), inside the library. */
	".hidden cbm_alloc_slow, cbm_alloc_aborted\n"
	".hidden cbm_free_slow, cbm_free_aborted\n"
	".text\n"
	/* The abort handlers, each preceded by the signature inside ud1
	 * disp32(%rip), %edi (0f b9 3d), so that a jump into it would trap. */
	".section .text.unlikely, \"ax\"\n"
	".byte 0x0f, 0xb9, 0x3d\n"
	".long " CBM_S(CBM_FAST_RSEQ_SIG) "\n"
	".Lalloc_abort:\n"
	"jmp cbm_alloc_aborted\n"
	".byte 0x0f, 0xb9, 0x3d\n"
	".long " CBM_S(CBM_FAST_RSEQ_SIG) "\n"
	".Lfree_abort:\n"
	"jmp cbm_free_aborted\n"
	".text\n");
// clang-format on

__attribute__((naked)) void *
cbm_alloc(cbm_pool *pool CBM_IN_RDI)
{
	// clang-format off
	__asm__(
		"testq %rdi, %rdi\n"
		"jz cbm_alloc_slow\n"
		"movq " CBM_S(CBM_OFF_POOL_RSEQ_OFFSET) "(%rdi), %r8\n"
		"leaq .Lalloc_cs(%rip), %rax\n"
		"movq %rax, %fs:" CBM_S(CBM_OFF_RSEQ_CS) "(%r8)\n"
		".Lalloc_start:\n"
		"movslq %fs:" CBM_S(CBM_OFF_RSEQ_CPU_ID) "(%r8), %rax\n"
		"movq " CBM_S(CBM_OFF_POOL_TABLE) "(%rdi,%rax,8), %rcx\n"
		"movq (%rcx), %rdx\n"
		/* count - 1, unsigned: above COUNT_MAX when the count is 0 or
		 * a lock bit is set */
		"leal -1(%rdx), %eax\n"
		"cmpl $" CBM_S(CBM_FAST_COUNT_MAX) ", %eax\n"
		"ja cbm_alloc_slow\n"
		"movq " CBM_S(CBM_FAST_SLOTS) "(%rcx,%rax,8), %rax\n"
		/* a carry out of bit 63: the pops would wrap; C folds them */
		"addq .Lpop_delta(%rip), %rdx\n"
		"jc cbm_alloc_slow\n"
		"movq %rdx, (%rcx)\n" /* commit */
		".Lalloc_post:\n"
		"ret\n");
	// clang-format on
}

__attribute__((naked)) void
cbm_free(cbm_pool *pool CBM_IN_RDI, void *buf CBM_IN_RSI)
{
	// clang-format off
	__asm__(
		"testq %rdi, %rdi\n"
		"jz cbm_free_slow\n"
		/* The pointer check (check.h, arena.h): (buf - base) x
		 * stride_inv, rotated right by stride_shift, below capacity
		 * (the buffers that exist now, which an elastic pool raises:
		 * one relaxed load). */
		"movq %rsi, %rax\n"
		"subq " CBM_S(CBM_OFF_POOL_BASE) "(%rdi), %rax\n"
		"movzbl " CBM_S(CBM_OFF_POOL_STRIDE_SHIFT) "(%rdi), %ecx\n"
		"imulq " CBM_S(CBM_OFF_POOL_STRIDE_INV) "(%rdi), %rax\n"
		"rorq %cl, %rax\n"
		"cmpq " CBM_S(CBM_OFF_POOL_CAPACITY) "(%rdi), %rax\n"
		"jae cbm_free_slow\n"
		"movq " CBM_S(CBM_OFF_POOL_RSEQ_OFFSET) "(%rdi), %r8\n"
		"leaq .Lfree_cs(%rip), %rax\n"
		"movq %rax, %fs:" CBM_S(CBM_OFF_RSEQ_CS) "(%r8)\n"
		".Lfree_start:\n"
		"movslq %fs:" CBM_S(CBM_OFF_RSEQ_CPU_ID) "(%r8), %rax\n"
		"movq " CBM_S(CBM_OFF_POOL_TABLE) "(%rdi,%rax,8), %rcx\n"
		/* The word's low half: the count and the lock bits, which
		 * indexes the slots as it is (a 32-bit load zero-extends). */
		"movl (%rcx), %edx\n"
		/* full, or a lock bit (the limit is far below them) */
		"cmpl " CBM_S(CBM_OFF_POOL_SLOTS) "(%rdi), %edx\n"
		"jae cbm_free_slow\n"
		"movq %rsi, " CBM_S(CBM_FAST_SLOTS) "(%rcx,%rdx,8)\n"
		/* Commit: the count one higher, by an add to the whole word
		 * in memory (rseq.h says why that is one commit). A 64-bit
		 * write: the next pop's 64-bit load of the word forwards
		 * from it. (Storing only the low half was tried: that load
		 * then missed store forwarding, and the timed pair fell to
		 * about 0.6x.) */
		"addq $1, (%rcx)\n"
		".Lfree_post:\n"
		"ret\n");
	// clang-format on
}

/* pool.h: the same functions, bound inside the library (heap.c). */
__asm__(".globl cbm_alloc_local\n"
	".hidden cbm_alloc_local\n"
	".set cbm_alloc_local, cbm_alloc\n"
	".globl cbm_free_local\n"
	".hidden cbm_free_local\n"
	".set cbm_free_local, cbm_free\n");

#endif
