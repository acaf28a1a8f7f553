/* SPDX-License-Identifier: MIT */
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
 *    runs; a migration aborts it. pop and push look the cache up in the
 *    fast table (percpu.h), read-only after create, whose entry for every
 *    value cpu_id can hold is that CPU's cache or the sentinel; the
 *    sentinel's word always has the lock bits set, so a sequence that
 *    reads it bails out below before it stores anything.
 *  - The single write of the cache's word is the last instruction before
 *    post_commit: it commits. It is a store of the new word, or (pushes)
 *    an add of n, the buffers pushed, to the word in memory: one
 *    instruction, which an interrupt finds either done or not begun, so
 *    it commits as a store does (the kernel's own rseq selftests commit
 *    with an add). A push reads only the word's low half, which indexes
 *    the slots as it is; the add saves it the copy of the whole word,
 *    the isolation of the count and a separate add and store. Every
 *    instruction before the commit only loads, or stores into a slot
 *    above the committed count (push), which no reader looks at (P1,
 *    percpu.h). An abort anywhere before the commit leaves the cache
 *    exactly as it was; the caller starts over.
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
 *    REMOTE_LOCK with a CAS from an unlocked word, then fences the cache's
 *    CPU with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, CPU): when
 *    it returns, every sequence that was running there has been aborted,
 *    and every later one sees the bit. A sequence that read the word before
 *    the CAS and committed before the fence either overwrote the bit (a
 *    store of an unlocked word, or a push's add whose load came before
 *    the CAS: the add is not atomic towards other CPUs) or kept it (an add
 *    that loaded the locked word: count + n under the bit, the n slots
 *    written before it). So after the fence the drainer reads the word
 *    again: the bit gone, it tries again; the bit there, what it read is
 *    the word with every commit made on that CPU. The membarrier is also
 *    the full barrier that orders the drainer's accesses after everything
 *    the CPU did.
 *
 * The abort handler is preceded by the signature glibc registered (RSEQ_SIG)
 * inside an undefined-instruction encoding, as the kernel requires.
 */
#ifndef CBM_RSEQ_H
#define CBM_RSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/rseq.h>

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
 * The shape of a sequence. Labels: 1 start, 2 post-commit, 3 descriptor,
 * 4 abort handler, 5 bail out, 9 end. The descriptor is 32-byte aligned, as
 * the ABI requires. The non-committing exits (bailing out for a cache that
 * is busy, empty or full, or a CPU number out of range; the abort handler,
 * preceded by its signature) live in a separate section, so the committing
 * path runs straight through.
 *
 * pop and lock have outputs, so each is a plain asm statement that always
 * ends at its own end (label 9), reporting its result in ecx (enum
 * cbm_rseq_result) and, for the fast test, in ZF (set exactly when it
 * committed): its exits set both and jump back to 9. They are not asm goto
 * because gcc 12.2 was seen miscompiling asm goto with outputs in an ASan
 * build. push has no output, so it is an asm goto whose exits jump to its
 * C labels; it must stay output-free.
 *
 * The assembly spells no constant that C knows: the offsets into struct
 * rseq, RSEQ_SIG, the slots' offset and the word's masks are "i" operands
 * (CBM_RSEQ_INPUTS and each sequence's own), and the assertions below check
 * what the sequences assume of the layouts beyond those constants.
 */

/* The descriptor as the asm lays it out: .long version, flags; .quad
 * start_ip, post_commit_offset, abort_ip; 32-byte aligned. */
_Static_assert(offsetof(struct rseq_cs, version) == 0 &&
		       offsetof(struct rseq_cs, flags) == 4 &&
		       offsetof(struct rseq_cs, start_ip) == 8 &&
		       offsetof(struct rseq_cs, post_commit_offset) == 16 &&
		       offsetof(struct rseq_cs, abort_ip) == 24 &&
		       _Alignof(struct rseq_cs) == 32,
	       "struct rseq_cs is laid out as CBM_RSEQ_BEGIN_AT emits it");
/* cpu_id is read with movl, rseq_cs written with movq. */
_Static_assert(sizeof(((struct rseq *)0)->cpu_id) == 4 &&
		       sizeof(((struct rseq *)0)->rseq_cs) == 8,
	       "struct rseq's fields are the sizes the asm accesses");
/* The count in the low bits and the lock bits above it, all in the low 32
 * (pop and lock test them as 32-bit registers, and pop's bound on count - 1
 * also catches a lock bit; a push loads the low half alone, at the word's
 * address on this little-endian machine, as its bound and its index, and
 * its add of n, below the slots, never carries out of it); the pops in
 * the high 32 (a pop's carry out of bit 63 is their wrap). */
_Static_assert((CBM_CACHE_COUNT_MASK & (CBM_CACHE_COUNT_MASK + 1)) == 0 &&
		       (CBM_CACHE_LOCKS & CBM_CACHE_COUNT_MASK) == 0 &&
		       CBM_CACHE_LOCKS > CBM_CACHE_COUNT_MASK &&
		       CBM_CACHE_POP == (uint64_t)1 << 32,
	       "the word is laid out as the sequences read it");
/* The committing path reports DONE with xorl (and ZF set); the exits set
 * a nonzero result, which clears ZF. */
_Static_assert(CBM_RSEQ_DONE == 0 && CBM_RSEQ_SLOW != 0 &&
		       CBM_RSEQ_ABORTED != 0,
	       "only DONE is zero");

// clang-format off
/* Operands every sequence takes: where the caches are (pop and push use
 * the fast table, lock the caches themselves), and the constants of the
 * rseq ABI. */
#define CBM_RSEQ_INPUTS(map)                                                   \
	[rs] "r"((map)->rseq_offset),                                          \
	[fast] "r"((map)->fast),                                               \
	[cpu_id_off] "i"(offsetof(struct rseq, cpu_id)),                       \
	[rseq_cs_off] "i"(offsetof(struct rseq, rseq_cs)),                     \
	[rseq_sig] "i"(RSEQ_SIG)

/* lock's: the CPUs' caches as an array, cpu_bytes apart. */
#define CBM_RSEQ_RANGED_INPUTS(map, cpu_bytes)                                 \
	[ncpus] "rm"((map)->ncpus),                                            \
	[cpu_bytes] "rm"(cpu_bytes),                                           \
	[caches] "rm"((map)->caches)

/* Arm the sequence: its descriptor, and its address in rseq_cs; label 1
 * starts it. */
#define CBM_RSEQ_ARM                                                           \
	".pushsection __rseq_cs, \"aw\"\n\t"                                   \
	".balign 32\n\t"                                                       \
	"3:\n\t"                                                               \
	".long 0, 0\n\t"                                                       \
	".quad 1f, 2f - 1f, 4f\n\t"                                            \
	".popsection\n\t"                                                      \
	"leaq 3b(%%rip), %%rax\n\t"                                            \
	"movq %%rax, %%fs:%c[rseq_cs_off](%[rs])\n\t"                          \
	"1:\n\t"

/* Arm the sequence and leave the calling CPU's cache in rax, by the fast
 * table (percpu.h): the CPU number sign-extended, so that glibc's
 * negative "no registration" values index the sentinels before CPU 0's
 * entry. No compare: every value the field can hold has an entry. */
#define CBM_RSEQ_BEGIN_FAST                                                    \
	CBM_RSEQ_ARM                                                           \
	"movslq %%fs:%c[cpu_id_off](%[rs]), %%rax\n\t"                          \
	"movq (%[fast],%%rax,8), %%rax\n\t"

/* Arm the sequence, read the CPU number (bail out to the label bail when
 * it is out of range) and leave the CPU's first cache in rax. */
#define CBM_RSEQ_BEGIN_AT(bail)                                                \
	CBM_RSEQ_ARM                                                           \
	"movl %%fs:%c[cpu_id_off](%[rs]), %%eax\n\t"                           \
	"cmpl %[ncpus], %%eax\n\t"                                             \
	"jae " bail "\n\t"                                                     \
	"imulq %[cpu_bytes], %%rax\n\t"                                        \
	"addq %[caches], %%rax\n\t"

/* The sequences that report through ecx bail out to label 5. */
#define CBM_RSEQ_BEGIN CBM_RSEQ_BEGIN_AT("5f")

/* The out-of-line exits, after post_commit: bail_exit (instructions, with
 * their labels), then the abort handler, label 4, running abort_exit.
 * 0f b9 3d is ud1 disp32(%rip), %edi: the signature is its displacement,
 * so that a jump into it would trap. */
#define CBM_RSEQ_EXITS(bail_exit, abort_exit)                                  \
	".pushsection __rseq_failure, \"ax\"\n\t"                              \
	bail_exit                                                              \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                           \
	".long %c[rseq_sig]\n\t"                                               \
	"4:\n\t"                                                               \
	abort_exit                                                             \
	".popsection\n\t"

/* After the commit: ecx = CBM_RSEQ_DONE (0, and ZF set); the exits, out
 * of line, set CBM_RSEQ_SLOW or CBM_RSEQ_ABORTED (and clear ZF). */
#define CBM_RSEQ_END                                                           \
	"2:\n\t"                                                               \
	"xorl %%ecx, %%ecx\n\t"                                                \
	"9:\n\t"                                                               \
	CBM_RSEQ_EXITS(                                                        \
		"5:\n\t"                                                       \
		"movl %[slow_result], %%ecx\n\t"                               \
		"testl %%ecx, %%ecx\n\t"                                       \
		"jmp 9b\n\t",                                                  \
		"movl %[aborted_result], %%ecx\n\t"                            \
		"testl %%ecx, %%ecx\n\t"                                       \
		"jmp 9b\n\t")

/* The operands CBM_RSEQ_END needs besides CBM_RSEQ_INPUTS. */
#define CBM_RSEQ_END_INPUTS                                                    \
	[slow_result] "i"(CBM_RSEQ_SLOW),                                      \
	[aborted_result] "i"(CBM_RSEQ_ABORTED)
// clang-format on

/*
 * Pop one buffer from the calling CPU's cache into *buf. Commit: the word,
 * with the count one lower and the pops one higher. SLOW also stands for a
 * thread without rseq, a CPU beyond ncpus or a pool whose fast paths are
 * off (the fast table's sentinel): the slow path sorts it
 * out. Caller contract: none beyond a pool in rseq mode; any thread.
 */
static inline enum cbm_rseq_result
cbm_rseq_pop(const struct cbm_cache_map *map, void **buf)
{
	unsigned result;
	bool done;
	void *out;

	// clang-format off
	__asm__ volatile(
		CBM_RSEQ_BEGIN_FAST
		"movq (%%rax), %%rdx\n\t"
		/* count - 1, unsigned: above COUNT_MASK - 1 when the count
		 * is 0 or a lock bit is set */
		"leal -1(%%rdx), %%ecx\n\t"
		"cmpl %[count_max], %%ecx\n\t"
		"ja 5f\n\t"
		"movq %c[slots_off](%%rax,%%rcx,8), %[out]\n\t"
		/* count - 1, pops + 1: add POP - 1 (2^32 - 1). A carry out of
		 * bit 63 means the pops would wrap: bail out, the slow path
		 * folds. */
		"movl %[pop_delta], %%ecx\n\t"
		"addq %%rcx, %%rdx\n\t"
		"jc 5f\n\t"
		"movq %%rdx, (%%rax)\n\t" /* commit */
		CBM_RSEQ_END
		: [out] "=&r"(out), "=@ccz"(done), "=&c"(result)
		: CBM_RSEQ_INPUTS(map), CBM_RSEQ_END_INPUTS,
		  [count_max] "i"(CBM_CACHE_COUNT_MASK - 1),
		  [slots_off] "i"(CBM_CACHE_SLOTS_OFFSET),
		  [pop_delta] "i"(CBM_CACHE_POP - 1)
		: "rax", "rdx", "memory");
	// clang-format on
	*buf = out;
	return cbm_likely(done) ? CBM_RSEQ_DONE : (enum cbm_rseq_result)result;
}

/*
 * Push one buffer on the calling CPU's cache. Its slot is written first,
 * above the count (harmless if aborted); commit: the word, count one
 * higher. The limit, 2 x mag_size, is far below LOCAL_LOCK, so a lock bit
 * fails the compare. An asm goto, so it has no outputs (see above): the
 * committing path falls through to return DONE.
 */
static inline enum cbm_rseq_result
cbm_rseq_push(const struct cbm_cache_map *map, void *buf)
{
	// clang-format off
	__asm__ goto(
		CBM_RSEQ_BEGIN_FAST
		/* the low half: count and lock bits, an index as it is */
		"movl (%%rax), %%edx\n\t"
		"cmpl %[limit], %%edx\n\t"
		"jae %l[slow]\n\t"
		"movq %[buf], %c[slots_off](%%rax,%%rdx,8)\n\t"
		"addq $1, (%%rax)\n\t" /* commit */
		"2:\n\t"
		CBM_RSEQ_EXITS(
			"",
			"jmp %l[aborted]\n\t")
		:
		: CBM_RSEQ_INPUTS(map), [limit] "rm"(map->slots),
		  [buf] "r"(buf),
		  [slots_off] "i"(CBM_CACHE_SLOTS_OFFSET)
		: "rax", "rdx", "memory", "cc"
		: slow, aborted);
	// clang-format on
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
cbm_rseq_lock(const struct cbm_cache_map *map, size_t cpu_bytes,
	      struct cbm_cpu_cache **cache, uint64_t *w)
{
	unsigned result;
	bool done;
	char *c;       /* rax: the cache, as the sequence computed it */
	uint64_t word; /* rdx: the word, as read */

	// clang-format off
	__asm__ volatile(
		CBM_RSEQ_BEGIN
		"movq (%%rax), %%rdx\n\t"
		"testl %[locks], %%edx\n\t"
		"jnz 5f\n\t"
		"movq %%rdx, %%rcx\n\t"
		"orq %[local_lock], %%rcx\n\t"
		"movq %%rcx, (%%rax)\n\t" /* commit */
		CBM_RSEQ_END
		: "=&a"(c), "=&d"(word), "=@ccz"(done), "=&c"(result)
		: CBM_RSEQ_INPUTS(map), CBM_RSEQ_RANGED_INPUTS(map, cpu_bytes),
		  CBM_RSEQ_END_INPUTS, [locks] "i"(CBM_CACHE_LOCKS),
		  [local_lock] "i"(CBM_CACHE_LOCAL_LOCK)
		: "memory");
	// clang-format on
	*cache = (struct cbm_cpu_cache *)(void *)c;
	*w = word;
	return cbm_likely(done) ? CBM_RSEQ_DONE : (enum cbm_rseq_result)result;
}
// clang-format off
/* The bulk pushes' opening: count + n at most the slots (a lock bit is
 * far above), else to the label slow; r8 the first slot above the count.
 * Their commit adds n to the word in memory (see above). */
#define CBM_RSEQ_PUSH_ROOM                                                     \
	"movl (%%rax), %%r8d\n\t"                                              \
	"leal (%%r8,%[n]), %%r9d\n\t"                                          \
	"cmpl %[limit], %%r9d\n\t"                                             \
	"ja %l[slow]\n\t"                                                      \
	"leaq %c[slots_off](%%rax,%%r8,8), %%r8\n\t"

/* The bulk copies: dst[i] = src[i] for i = n - 1 down to 0 (src and dst
 * registers, as operand text), the last alone if n is odd, then two at a
 * time; uses r9, r10, xmm0 and the labels 6 and 7. */
#define CBM_RSEQ_COPY(src, dst)                                                \
	"movq %[n], %%r9\n\t"                                                  \
	"testb $1, %%r9b\n\t"                                                  \
	"jz 6f\n\t"                                                            \
	"movq -8(" src ",%%r9,8), %%r10\n\t"                                   \
	"movq %%r10, -8(" dst ",%%r9,8)\n\t"                                   \
	"decq %%r9\n\t"                                                        \
	"jz 7f\n\t"                                                            \
	"6:\n\t"                                                               \
	"movups -16(" src ",%%r9,8), %%xmm0\n\t"                               \
	"movups %%xmm0, -16(" dst ",%%r9,8)\n\t"                               \
	"subq $2, %%r9\n\t"                                                    \
	"jnz 6b\n\t"                                                           \
	"7:\n\t"

/* The bulk pushes' hold before their commit, in a fault-injection build
 * (plant.h, the bulk push gate); nothing otherwise. Labels 81 and 82. */
#ifdef CBM_FAULT_INJECTION
#define CBM_RSEQ_PUSH_GATE                                                     \
	"cmpl $0, cbm_plant_push_gate(%%rip)\n\t"                              \
	"je 82f\n\t"                                                           \
	"movl $1, cbm_plant_push_gated(%%rip)\n\t"                             \
	"81:\n\t"                                                              \
	"pause\n\t"                                                            \
	"cmpl $0, cbm_plant_push_gate(%%rip)\n\t"                              \
	"jne 81b\n\t"                                                          \
	"82:\n\t"
#else
#define CBM_RSEQ_PUSH_GATE ""
#endif
// clang-format on

/*
 * Pop n buffers (1 <= n <= the slots) off the top of the calling CPU's
 * cache into bufs[0..n-1], in one sequence. Only loads from the cache and
 * stores into the caller's array before the commit (an aborted copy is
 * copied again); commit: the word, count n lower, pops n higher. An asm
 * goto, as push is: the committing path falls through to DONE.
 */
static inline enum cbm_rseq_result
cbm_rseq_pop_bulk(const struct cbm_cache_map *map, void **bufs, size_t n)
{
	/* count - n and pops + n in one add (the carry out of the low half
	 * is the count's "- n" borrow undone), and its carry out of bit 63
	 * the pops' wrap: n x (POP - 1). */
	uint64_t delta = (uint64_t)n * (CBM_CACHE_POP - 1);

	// clang-format off
	__asm__ goto(
		CBM_RSEQ_BEGIN_FAST
		"movq (%%rax), %%rdx\n\t"
		/* count - n, unsigned: above the slots when the count is
		 * below n or a lock bit is set (they are far above) */
		"movl %%edx, %%r8d\n\t"
		"subl %k[n], %%r8d\n\t"
		"cmpl %[limit], %%r8d\n\t"
		"ja %l[slow]\n\t"
		"leaq %c[slots_off](%%rax,%%r8,8), %%r8\n\t"
		/* bufs[i] = slots[count - n + i] */
		CBM_RSEQ_COPY("%%r8", "%[bufs]")
		"addq %[delta], %%rdx\n\t"
		"jc %l[slow]\n\t"
		"movq %%rdx, (%%rax)\n\t" /* commit */
		"2:\n\t"
		CBM_RSEQ_EXITS(
			"",
			"jmp %l[aborted]\n\t")
		:
		: CBM_RSEQ_INPUTS(map), [limit] "rm"(map->slots),
		  [bufs] "r"(bufs), [n] "r"(n), [delta] "r"(delta),
		  [slots_off] "i"(CBM_CACHE_SLOTS_OFFSET)
		: "rax", "rdx", "r8", "r9", "r10", "xmm0", "memory", "cc"
		: slow, aborted);
	// clang-format on
	return CBM_RSEQ_DONE;
slow:
	return CBM_RSEQ_SLOW;
aborted:
	return CBM_RSEQ_ABORTED;
}

/* What a bulk push checks of each pointer: check.h's quotient, whose
 * bound is capacity. */
struct cbm_rseq_check {
	const char *base;
	uint64_t stride_inv;
	uint64_t capacity;
	unsigned stride_shift;
};

/*
 * Push n buffers (1 <= n <= the slots) on the calling CPU's cache in one
 * sequence, checking each on the way, without a branch: their slots are
 * written above the count (harmless if aborted or refused), and the
 * largest of their quotients (check.h) is compared with the capacity once,
 * after the copy. Below it, every one is a buffer of the pool; otherwise
 * nothing is committed and SLOW returned: the caller checks them one by
 * one and reports. Commit: the word, count n higher.
 */
static inline enum cbm_rseq_result
cbm_rseq_push_bulk(const struct cbm_cache_map *map,
		   const struct cbm_rseq_check *chk, void *const *bufs,
		   size_t n)
{
	// clang-format off
	__asm__ goto(
		CBM_RSEQ_BEGIN_FAST
		CBM_RSEQ_PUSH_ROOM
		/* slots[count + i] = bufs[i] for i = n - 1 down to 0, r11
		 * the largest quotient: the last alone if n is odd, then two
		 * at a time */
		"xorl %%r11d, %%r11d\n\t"
		"movq %[n], %%r9\n\t"
		"testb $1, %%r9b\n\t"
		"jz 6f\n\t"
		"movq -8(%[bufs],%%r9,8), %%r11\n\t"
		"movq %%r11, -8(%%r8,%%r9,8)\n\t"
		"subq %[base], %%r11\n\t"
		"imulq %[inv], %%r11\n\t"
		"rorq %%cl, %%r11\n\t"
		"decq %%r9\n\t"
		"jz 7f\n\t"
		"6:\n\t"
		"movq -8(%[bufs],%%r9,8), %%r10\n\t"
		"movq %%r10, -8(%%r8,%%r9,8)\n\t"
		"subq %[base], %%r10\n\t"
		"imulq %[inv], %%r10\n\t"
		"rorq %%cl, %%r10\n\t"
		"cmpq %%r10, %%r11\n\t"
		"cmovbq %%r10, %%r11\n\t"
		"movq -16(%[bufs],%%r9,8), %%r10\n\t"
		"movq %%r10, -16(%%r8,%%r9,8)\n\t"
		"subq %[base], %%r10\n\t"
		"imulq %[inv], %%r10\n\t"
		"rorq %%cl, %%r10\n\t"
		"cmpq %%r10, %%r11\n\t"
		"cmovbq %%r10, %%r11\n\t"
		"subq $2, %%r9\n\t"
		"jnz 6b\n\t"
		"7:\n\t"
		"cmpq %[cap], %%r11\n\t"
		"jae %l[slow]\n\t"
		CBM_RSEQ_PUSH_GATE
		"addq %[n], (%%rax)\n\t" /* commit */
		"2:\n\t"
		CBM_RSEQ_EXITS(
			"",
			"jmp %l[aborted]\n\t")
		:
		: CBM_RSEQ_INPUTS(map), [limit] "rm"(map->slots),
		  [bufs] "r"(bufs), [n] "r"(n), [base] "r"(chk->base),
		  [inv] "r"(chk->stride_inv), [cap] "rm"(chk->capacity),
		  "c"(chk->stride_shift),
		  [slots_off] "i"(CBM_CACHE_SLOTS_OFFSET)
		: "rax", "r8", "r9", "r10", "r11", "memory", "cc"
		: slow, aborted);
	// clang-format on
	return CBM_RSEQ_DONE;
slow:
	return CBM_RSEQ_SLOW;
aborted:
	return CBM_RSEQ_ABORTED;
}

/*
 * Push n buffers (1 <= n <= the slots) on the calling CPU's cache in one
 * sequence without checking them: a pool made with
 * CBM_POOL_TRUST_BULK_FREES, whose caller promises that each is a buffer
 * of the pool it holds (cbm.h). The copy is pop_bulk's, the other way;
 * the slots are written above the count (harmless if aborted or
 * refused). Commit: the word, count n higher.
 */
static inline enum cbm_rseq_result
cbm_rseq_push_bulk_trusted(const struct cbm_cache_map *map, void *const *bufs,
			   size_t n)
{
	// clang-format off
	__asm__ goto(
		CBM_RSEQ_BEGIN_FAST
		CBM_RSEQ_PUSH_ROOM
		/* slots[count + i] = bufs[i] */
		CBM_RSEQ_COPY("%[bufs]", "%%r8")
		CBM_RSEQ_PUSH_GATE
		"addq %[n], (%%rax)\n\t" /* commit */
		"2:\n\t"
		CBM_RSEQ_EXITS(
			"",
			"jmp %l[aborted]\n\t")
		:
		: CBM_RSEQ_INPUTS(map), [limit] "rm"(map->slots),
		  [bufs] "r"(bufs), [n] "r"(n),
		  [slots_off] "i"(CBM_CACHE_SLOTS_OFFSET)
		: "rax", "r8", "r9", "r10", "xmm0", "memory", "cc"
		: slow, aborted);
	// clang-format on
	return CBM_RSEQ_DONE;
slow:
	return CBM_RSEQ_SLOW;
aborted:
	return CBM_RSEQ_ABORTED;
}
#endif /* x86-64 and not TSan */

#endif /* CBM_RSEQ_H */
