/*
 * rseq mode: the per-CPU fast paths as restartable sequences (x86-64).
 *
 * A restartable sequence is a run of instructions [start, post_commit) that
 * the kernel guarantees to run without another thread running on the same
 * CPU in the middle: if the thread is preempted, migrated or signalled
 * inside it, the kernel resumes it at the abort address instead, before it
 * returns to user space. The thread announces the sequence by storing the
 * address of its descriptor (struct rseq_cs) in its struct rseq, which glibc
 * registered with the kernel (cpu.h). So per-CPU data can be updated with
 * plain loads and stores: no lock, no atomic instruction.
 *
 * Correctness argument, for each sequence below:
 *  - The CPU number is read inside the sequence (cpu_id), so the cache it
 *    indexes is the one of the CPU the sequence runs on, for as long as it
 *    runs; a migration aborts it.
 *  - The single store of the cache's word is the last instruction before
 *    post_commit: it commits. Every instruction before it only loads, or
 *    stores into a slot above the committed count (push), which no reader
 *    looks at (P1, percpu.h). An abort anywhere before the commit leaves
 *    the cache exactly as it was; the caller starts over.
 *  - A preempted thread's stale view cannot be committed: another thread
 *    that ran on the CPU meanwhile may have changed the word and the slots,
 *    but the preempted thread resumes at the abort address, not at its next
 *    instruction, and reloads everything.
 *  - A sequence bails out (without committing) when the word has a lock bit:
 *    a slow path holds the cache. A slow path takes LOCAL_LOCK with a
 *    sequence of its own (its commit stores the word with the bit set), so
 *    the holder was on the cache's CPU when it took it and no sequence can
 *    have been half way through; it may then migrate, and its release store
 *    is the only write to the word until it lands.
 *  - A drainer on another CPU (drainers of one cache take turns) sets
 *    REMOTE_LOCK with a CAS from an unlocked word, then fences the cache's CPU with membarrier(
 *    MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, CPU): when it returns, every
 *    sequence that was running there has been aborted, and every later one
 *    sees the bit. A sequence that read the word before the CAS and
 *    committed before the fence overwrote the bit (commits store unlocked
 *    words); the drainer sees the bit gone after the fence and tries again.
 *    The membarrier is also the full barrier that orders the drainer's
 *    accesses after everything the CPU did.
 *
 * The abort handler is preceded by the signature glibc registered (RSEQ_SIG)
 * inside an undefined-instruction encoding, as the kernel requires.

 */
#ifndef CBM_RSEQ_H
#define CBM_RSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "percpu.h"

struct cbm_pool;

/* The mode new pools get: rseq where glibc registered rseq, the machine is
 * x86-64, membarrier's rseq fence is available, the build is not under
 * TSan, and CBM_PERCPU=portable is not set. Decided once per process. */
enum cbm_percpu_mode cbm_percpu_mode_default(void);

/* Abort every restartable sequence running on cpu (see above). */
void cbm_rseq_fence(unsigned cpu);

/* glibc's __rseq_offset (copied into each pool's cache map). */
ptrdiff_t cbm_rseq_offset(void);

/* Outcome of a sequence. */
enum cbm_rseq_result {
	CBM_RSEQ_DONE,	  /* committed */
	CBM_RSEQ_SLOW,	  /* cache empty/full or held: take the slow path */
	CBM_RSEQ_ABORTED, /* preempted, migrated or signalled: retry */
};

#if defined(__x86_64__) && !defined(CBM_TSAN)
#define CBM_HAVE_RSEQ 1

/*
 * Each sequence is one asm statement that always ends at its own end (label
 * 9), reporting its result in ecx (enum cbm_rseq_result) and, for the
 * fast test, in ZF (set exactly when it committed). The non-committing exits (labels 5 and 6 for a
 * cache that is busy, empty or full, or a CPU number out of range; the
 * abort handler at 4) live in a separate section and jump back to 9 with
 * the flags set, so the committing path runs straight through. (This shape
 * needs no asm goto: gcc 12.2 was seen miscompiling asm goto with outputs
 * in an ASan build.)
 *
 * Labels: 1 start, 2 post-commit, 3 descriptor, 4 abort, 5 bail out,
 * 9 end. The descriptor is 32-byte aligned, as the ABI requires; the abort
 * handler is preceded by RSEQ_SIG inside an undefined-instruction encoding.
 */
#define CBM_RSEQ_BEGIN_AT(bail)                                                \
	".pushsection __rseq_cs, \"aw\"\n\t"                                   \
	".balign 32\n\t"                                                       \
	"3:\n\t"                                                               \
	".long 0, 0\n\t"                                                       \
	".quad 1f, 2f - 1f, 4f\n\t"                                            \
	".popsection\n\t"                                                      \
	"leaq 3b(%%rip), %%rax\n\t"                                            \
	"movq %%rax, %%fs:8(%[rs])\n\t"                                        \
	"1:\n\t"                                                               \
	"movl %%fs:4(%[rs]), %%eax\n\t"                                        \
	"cmpl %[ncpus], %%eax\n\t"                                             \
	"jae " bail "\n\t"                                                     \
	"imulq %[cpu_bytes], %%rax\n\t"                                        \
	"addq %[caches], %%rax\n\t"

/* The sequences that report through ecx bail out to label 5. */
#define CBM_RSEQ_BEGIN CBM_RSEQ_BEGIN_AT("5f")

/* After the commit: ecx = CBM_RSEQ_DONE (0, and ZF set); the exits, out
 * of line, set CBM_RSEQ_SLOW or CBM_RSEQ_ABORTED (and clear ZF). */
#define CBM_RSEQ_END                                                           \
	"2:\n\t"                                                               \
	"xorl %%ecx, %%ecx\n\t"                                                \
	"9:\n\t"                                                               \
	".pushsection __rseq_failure, \"ax\"\n\t"                              \
	"5:\n\t"                                                               \
	"movl $1, %%ecx\n\t"                                                   \
	"testl %%ecx, %%ecx\n\t"                                               \
	"jmp 9b\n\t"                                                           \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                           \
	".long 0x53053053\n\t"                                                 \
	"4:\n\t"                                                               \
	"movl $2, %%ecx\n\t"                                                   \
	"testl %%ecx, %%ecx\n\t"                                               \
	"jmp 9b\n\t"                                                           \
	".popsection\n\t"

#define CBM_RSEQ_MAP_INPUTS(map)                                               \
	[rs] "r"((map)->rseq_offset), [ncpus] "rm"((map)->ncpus),              \
		[cpu_bytes] "rm"((map)->cpu_bytes),                            \
		[caches] "rm"((map)->caches)

/*
 * Pop one buffer from the calling CPU's cache into *buf. Commit: the word,
 * with the count one lower and the pops one higher. SLOW also stands for a
 * thread without rseq (CPU number out of range): the slow path sorts it
 * out. Caller contract: none beyond a pool in rseq mode; any thread.
 */
static inline enum cbm_rseq_result
cbm_rseq_pop(const struct cbm_cache_map *map, void **buf)
{
	unsigned result;
	bool done;
	void *out;

	__asm__ volatile(
		CBM_RSEQ_BEGIN
		"movq (%%rax), %%rdx\n\t"
		/* count - 1, unsigned: above 0x3ffffffe when the count is 0
		 * or a lock bit is set */
		"leal -1(%%rdx), %%ecx\n\t"
		"cmpl $0x3ffffffe, %%ecx\n\t"
		"ja 5f\n\t"
		"movq 64(%%rax,%%rcx,8), %[out]\n\t"
		/* count - 1, pops + 1: add 2^32 - 1. A carry out of bit 63
		 * means the pops would wrap: bail out, the slow path folds. */
		"movl $0xffffffff, %%ecx\n\t"
		"addq %%rcx, %%rdx\n\t"
		"jc 5f\n\t"
		"movq %%rdx, (%%rax)\n\t" /* commit */
		CBM_RSEQ_END
		: [out] "=&r"(out), "=@ccz"(done), "=&c"(result)
		: CBM_RSEQ_MAP_INPUTS(map)
		: "rax", "rdx", "memory");
	*buf = out;
	return cbm_likely(done) ? CBM_RSEQ_DONE : (enum cbm_rseq_result)result;
}

/*
 * Push one buffer on the calling CPU's cache. Its slot is written first,
 * above the count (harmless if aborted); commit: the word, count one
 * higher. The limit, 2 x mag_size, is below 2^30, so a lock bit fails the
 * compare. With no result but its exit, this one is an asm goto (no
 * outputs): the committing path falls through to return DONE.
 */
static inline enum cbm_rseq_result
cbm_rseq_push(const struct cbm_cache_map *map, void *buf)
{
	__asm__ goto(
		CBM_RSEQ_BEGIN_AT(
			"%l[slow]") "movq (%%rax), %%rdx\n\t"
				    "cmpl %[limit], %%edx\n\t"
				    "jae %l[slow]\n\t"
				    "movl %%edx, %%ecx\n\t"
				    "movq %[buf], 64(%%rax,%%rcx,8)\n\t"
				    "addq $1, %%rdx\n\t"
				    "movq %%rdx, (%%rax)\n\t" /* commit */
				    "2:\n\t"
				    ".pushsection __rseq_failure, \"ax\"\n\t"
				    ".byte 0x0f, 0xb9, 0x3d\n\t"
				    ".long 0x53053053\n\t"
				    "4:\n\t"
				    "jmp %l[aborted]\n\t"
				    ".popsection\n\t"
		:
		: CBM_RSEQ_MAP_INPUTS(map), [limit] "rm"(map->slots),
		  [buf] "r"(buf)
		: "rax", "rcx", "rdx", "memory", "cc"
		: slow, aborted);
	return CBM_RSEQ_DONE;
slow:
	return CBM_RSEQ_SLOW;
aborted:
	return CBM_RSEQ_ABORTED;
}

/*
 * Take the calling CPU's cache for a slow path: commit the word with
 * LOCAL_LOCK set, read unlocked. On DONE, *cache and *w (the word as
 * taken) are set; the caller releases it with cbm_cache_release.
 */
static inline enum cbm_rseq_result
cbm_rseq_lock(const struct cbm_cache_map *map, struct cbm_cpu_cache **cache,
	      uint64_t *w)
{
	unsigned result;
	bool done;
	char *c;       /* rax: the cache, as the sequence computed it */
	uint64_t word; /* rdx: the word, as read */

	__asm__ volatile(CBM_RSEQ_BEGIN "movq (%%rax), %%rdx\n\t"
					"testl $0xc0000000, %%edx\n\t"
					"jnz 5f\n\t"
					"movq %%rdx, %%rcx\n\t"
					"orq $0x40000000, %%rcx\n\t"
					"movq %%rcx, (%%rax)\n\t" /* commit */
			 CBM_RSEQ_END
			 : "=&a"(c), "=&d"(word), "=@ccz"(done), "=&c"(result)
			 : CBM_RSEQ_MAP_INPUTS(map)
			 : "memory");
	*cache = (struct cbm_cpu_cache *)(void *)c;
	*w = word;
	return cbm_likely(done) ? CBM_RSEQ_DONE : (enum cbm_rseq_result)result;
}
#endif /* x86-64 and not TSan */

#endif /* CBM_RSEQ_H */
