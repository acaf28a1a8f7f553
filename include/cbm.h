/* SPDX-License-Identifier: MIT */
/*
 * cbm: a lock-free, multi-core pool of fixed-size buffers.
 *
 * A pool hands out buffers of one size from one contiguous arena, fixed at
 * capacity buffers or, with max_capacity, elastic: it grows as allocations
 * need up to that ceiling and gives the memory of buffers that stay free
 * back to the OS (cbm_pool_release, release_ms). Each CPU
 * keeps a small cache of buffers (two magazines); below the caches sit a
 * depot of whole magazines and a lock-free global freelist. An allocation or
 * a free normally touches only the calling CPU's cache.
 *
 * Errors. Control calls return 0 or a negative errno value. cbm_alloc()
 * returns NULL only when no buffer is free anywhere in the pool. Programming
 * errors (a pointer that is not a buffer of this pool, a pointer into the
 * middle of a buffer, a double free in a debug pool, a write past the end of
 * a buffer in a debug pool, destroy with buffers still out) are reported to
 * the error handler (cbm_set_error_handler). The default handler prints the
 * pool's name, the pointer and what was wrong on stderr, then aborts, except
 * for CBM_ERR_LEAK, where it prints and returns. When a handler returns, the
 * offending pointer is never put back into the pool. A NULL pool is such an
 * error in every call that acts on a pool (CBM_ERR_BAD_ARG, then the call's
 * own failure: NULL with errno EINVAL, -EINVAL, or nothing); the exceptions
 * are cbm_pool_destroy(NULL), a no-op as free(NULL) is, and the queries
 * cbm_block_size, cbm_capacity and cbm_pool_name, which answer 0 or
 * "(none)" so that messages can use them.
 *
 * Threads. Every call may be made from any thread at the same time as any
 * other call, except cbm_pool_destroy(), which the caller must order after
 * every other call on that pool (no call on the pool may run concurrently
 * with it, or start after it), and cbm_pool_verify(), which needs a quiescent
 * pool. No call blocks on another thread's progress unless its comment says
 * so. No call is async-signal-safe: a signal handler must not call into the
 * library (it could wait for a cache its own thread holds, or for buffers
 * its own thread is moving between tiers).
 */
#ifndef CBM_H
#define CBM_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header: MAJOR.MINOR.PATCH, meson.build's project
 * version (a consumer test keeps the two in step). cbm_version() gives the
 * version of the library the program runs with. */
#define CBM_VERSION_MAJOR 0
#define CBM_VERSION_MINOR 3
#define CBM_VERSION_PATCH 0

#if defined(__GNUC__)
#define CBM_API __attribute__((visibility("default")))
/* A result that ignoring is a bug (a pool that was never made, buffers
 * never taken). */
#define CBM_NODISCARD __attribute__((warn_unused_result))
#else
#define CBM_API
#define CBM_NODISCARD
#endif
/* The per-buffer calls: a position-independent caller calls them through
 * its GOT entry, one instruction, rather than through a PLT stub, two. */
#if defined(__has_attribute)
#if __has_attribute(noplt)
#define CBM_HOT_CALL __attribute__((noplt))
#endif
#endif
#ifndef CBM_HOT_CALL
#define CBM_HOT_CALL
#endif
/* cbm_alloc returns memory no other pointer reaches, to be given back with
 * cbm_free (gcc 11 and later then warn when it goes to free() instead). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define CBM_ALLOCATOR(dealloc, arg)                                            \
	__attribute__((malloc, malloc(dealloc, arg)))
#elif defined(__GNUC__)
#define CBM_ALLOCATOR(dealloc, arg) __attribute__((malloc))
#else
#define CBM_ALLOCATOR(dealloc, arg)
#endif

/* A pool of fixed-size buffers. Opaque: its layout is private. */
typedef struct cbm_pool cbm_pool;

/* liburcu's description of an RCU flavor (<urcu/flavor.h>): for example
 * urcu_memb_flavor, urcu_qsbr_flavor, urcu_bp_flavor. */
struct rcu_flavor_struct;

/* Keep a state per buffer and a guard zone after each buffer: detects double
 * free (CBM_ERR_DOUBLE_FREE) and writes past the end (CBM_ERR_OVERFLOW, which
 * says how many bytes past), and keeps where each buffer was allocated (the
 * caller's address) for the leak report. Costs one compare-and-swap per alloc
 * and per free, and the guard zone.
 *
 * Without rebuilding anything, the environment variable CBM_DEBUG makes every
 * pool created while it is set a debug pool, as MALLOC_CHECK_ does for glibc:
 * CBM_DEBUG=1 as if each had CBM_POOL_DEBUG; CBM_DEBUG=backtrace the same,
 * and each allocation keeps a backtrace of 16 frames (backtrace(3), a few
 * microseconds per allocation), printed by the leak report; unset, empty or
 * 0: pools are as configured. Another value is taken as 1 with a warning.
 *
 * Memory checkers see every pool without a rebuild: in a program built with
 * -fsanitize=address, each free buffer is poisoned, so a use after free is
 * reported at the access; under valgrind's memcheck, a buffer handed out is a
 * block of a memcheck memory pool, so a read or write after free is an
 * error, and so are a second free and a buffer whose last pointer was lost
 * (except the pool's first buffer, whose address the pool keeps). Such pools leave their fast paths (as
 * debug pools do); other processes pay nothing. */
#define CBM_POOL_DEBUG (1u << 0)
/* Ask for huge pages for the arena: explicit 2 MiB pages if the system has
 * them reserved, else transparent huge pages. Falls back silently. */
#define CBM_POOL_HUGEPAGES (1u << 1)
/* Buffers exactly the rounded block size apart. By default, in a fixed pool
 * without background release, a stride that is a multiple of 1024 bytes (a
 * 2 KiB or 64 KiB block; not 1 to 15 whole pages) gets one more cache line
 * (or the alignment, if larger; not at 1024 or above), so that the first
 * lines of consecutive buffers, where headers are read and written, spread
 * over every cache set instead of falling into a few (src/colour.h). Costs
 * at most 1/16 of the arena; cbm_pool_release then gives pages back in
 * longer runs of free buffers. Elastic pools and pools with release_ms keep
 * the exact stride, so that their memory goes back in small runs. */
#define CBM_POOL_EXACT_STRIDE (1u << 8)
/* Unchecked bulk frees, as DPDK's rte_mempool_put_bulk: cbm_free_bulk's
 * fast path (one restartable sequence onto the CPU's cache, in the default
 * per-CPU mode, for n up to what the cache holds) does not check that each
 * pointer is a buffer of this pool. A pointer that is not (another pool's,
 * one inside a buffer, a NULL entry) then
 * corrupts the pool without a report: later allocations return it, or the
 * same buffer twice. Set it only where every bulk free gives back exactly
 * what cbm_alloc or cbm_alloc_bulk gave; it saves the check's 5
 * instructions a buffer (docs/benchmarks.md). cbm_free, the per-CPU lock
 * mode, cbm_free_bulk's slower paths, debug pools and pools under a memory
 * checker still check every pointer. */
#define CBM_POOL_TRUST_BULK_FREES (1u << 9)

/* idle_trim_ms value that never trims idle CPUs' caches. */
#define CBM_IDLE_TRIM_OFF UINT_MAX
/* release_ms value that never releases memory in the background
 * (cbm_pool_release still does). */
#define CBM_RELEASE_OFF UINT_MAX

/*
 * Told of a region of the pool's memory (cbm_pool_regions numbering, the
 * index cbm_region_index gives): on_map, that region index now covers
 * [addr, addr + len); on_unmap, that its memory [addr, addr + len) is about
 * to go back to the OS. See cbm_pool_config.on_map.
 */
typedef void (*cbm_region_fn)(void *arg, void *addr, size_t len,
			      unsigned index);

/*
 * ABI: this struct grew in 0.2 (max_capacity, release_ms, then on_map,
 * on_unmap and region_arg, all at the end). The library's SONAME moved
 * with it (libcbm.so.1), so a program built against the 0.1 header keeps
 * loading libcbm.so.0 and never has its shorter struct read as the longer
 * one. Zero what you do not set (a designated initializer does): 0 keeps
 * the old behaviour of every field.
 */
typedef struct cbm_pool_config {
	size_t block_size;	/* bytes per buffer, > 0 */
	size_t capacity;	/* buffers that exist at create, < 2^32 - 1;
				   > 0 unless max_capacity is set */
	size_t align;		/* power of two; 0 means 64 */
	unsigned magazine_size; /* buffers per magazine, <= 4096;
	                           0 means a tuned default */
	unsigned flags;		/* CBM_POOL_* */
	const char *name;	/* shown in messages; copied; may be NULL */
	/*
	 * The RCU flavor that guards retired buffers (cbm_retire); NULL means
	 * liburcu's memb flavor, whose readers use cbm_read_lock. Give your
	 * own (say &urcu_qsbr_flavor) when your readers already use it: they
	 * then keep using that flavor's read side and registration, and the
	 * pool waits for that flavor's grace periods.
	 */
	const struct rcu_flavor_struct *rcu_flavor;
	/* A CPU cache that sees no alloc or free for this long is drained to
	 * the global tier by the reclamation thread. 0 means 1000; at least
	 * 10; CBM_IDLE_TRIM_OFF never. */
	unsigned idle_trim_ms;
	/*
	 * 0: the pool is fixed at capacity buffers. Otherwise the pool is
	 * elastic: it starts with capacity buffers (0 is allowed) and grows,
	 * as allocations need, up to max_capacity buffers (>= capacity,
	 * < 2^32 - 1); cbm_alloc returns NULL only at that ceiling. Address
	 * space for the ceiling is reserved at create; memory is used only as
	 * buffers are first handed out. Buffers keep their address forever.
	 */
	size_t max_capacity;
	/*
	 * The memory of buffers that stay free in the global tier (not in a
	 * CPU cache, not held) for this long goes back to the OS, and RSS
	 * falls; a buffer handed out again reads as zero or as its old
	 * contents. 0 means 1000 for an elastic pool and CBM_RELEASE_OFF for a
	 * fixed one (whose memory then stays, as it always did); at least 10.
	 * A pool on explicit huge pages never releases.
	 */
	unsigned release_ms;
	/*
	 * Region callbacks, to keep a registration of the pool's memory in
	 * step (io_uring's sparse registered table with
	 * io_uring_register_buffers_update_tag, an RDMA memory region, a DMA
	 * mapping). Both or neither (one alone: -EINVAL); each gets
	 * region_arg. Regions are cbm_pool_regions's: at most 1 GiB each,
	 * region i the buffers [i x 2^s, (i + 1) x 2^s).
	 *
	 * on_map(arg, addr, len, index): region index now covers
	 * [addr, addr + len). Called for each region at create (before
	 * cbm_pool_create returns), when the pool grows (the last region
	 * lengthens: a new extent for that index, to replace the old one;
	 * or a new region follows), and when a region whose memory went back
	 * to the OS is about to be used again; always before any buffer of
	 * the new part is handed out, to any thread.
	 *
	 * on_unmap(arg, addr, len, index): before the region's memory goes
	 * back to the OS (a release, or destroy for every region still
	 * mapped); until the next on_map of that index no buffer in it is
	 * handed out. A registration must let go of the region here: the
	 * pages it pinned would otherwise stay the kernel's while the
	 * buffers get fresh ones.
	 *
	 * With callbacks the pool works in whole regions: it releases a
	 * region only when every buffer of it is free in the global tier (a
	 * region the ceiling cuts short never goes), and an elastic pool
	 * grows to the next region boundary (or the ceiling) at once, so
	 * on_map comes about once per region, not per growth. The memory of
	 * buffers never handed out stays untouched until they are, but a
	 * registration that pins pages (io_uring does) makes the whole
	 * region resident.
	 *
	 * The callbacks run on whatever thread grows, releases (the
	 * reclamation thread too) or reuses, possibly inside an allocation
	 * and while other allocations wait for them; calls for one region
	 * never overlap, calls for different regions may run at once. They
	 * must not call into this pool (they may run with one of its caches
	 * held: a deadlock) and should be quick. A stride (block size, with
	 * a debug pool's guard zone) above 1 GiB has no regions: -EOVERFLOW.
	 */
	cbm_region_fn on_map, on_unmap;
	void *region_arg;
} cbm_pool_config;

/*
 * How a pool's per-CPU caches exclude other threads. rseq: restartable
 * sequences, no lock and no atomic instruction on the fast path (Linux
 * x86-64, with glibc's rseq registration; the default there). portable: a
 * per-CPU lock, tried once (always under ThreadSanitizer, or with the
 * environment variable CBM_PERCPU=portable at the first pool creation).
 * CBM_PERCPU=rseq where glibc registered no rseq (valgrind) selects rseq
 * mode with every thread on the global path: for instruction counts only.
 */
#define CBM_PERCPU_PORTABLE 0
#define CBM_PERCPU_RSEQ 1

/*
 * A snapshot of a pool. Each field is read without stopping other threads,
 * so while the pool is busy the fields are each approximately right; when no
 * application call on the pool is running they are exact and
 * free + cached + retired + in_use == capacity, even while the reclamation
 * thread reclaims retired buffers or drains idle caches (the snapshot waits
 * for such a move to finish).
 */
typedef struct cbm_stats {
	size_t capacity;   /* buffers in the pool */
	size_t block_size; /* usable bytes per buffer (cbm_block_size) */
	size_t free;	   /* in the global tier (freelist and depot) */
	size_t cached;	   /* in per-CPU caches */
	size_t retired;	   /* retired, waiting for an RCU grace period */
	size_t in_use;	   /* held by the application */
	uint64_t allocs;   /* buffers handed out, bulk included */
	uint64_t frees;	   /* buffers given back by cbm_free* */
	uint64_t retires;  /* buffers given back by cbm_retire, back in the
	                      pool or not: allocs == frees + retires + in_use
	                      whenever the fields are exact */
	/* (a failed cbm_alloc_bulk counts what it took and put back in both) */
	uint64_t alloc_failures;  /* cbm_alloc NULL or cbm_alloc_bulk -ENOMEM */
	uint64_t depot_exchanges; /* magazines moved to or from the depot */
	uint64_t global_pops;	  /* cache refills from the freelist */
	uint64_t global_pushes;	  /* cache spills to the freelist */
	uint64_t busy_fallbacks;  /* calls that found their CPU's cache held
	                             (in portable mode, its spare too) by a
	                             preempted thread, and went global */
	uint64_t steals;	  /* buffers drained from CPU caches so an
	                             allocation could succeed */
	uint64_t trims;		  /* buffers moved out of CPU caches by
	                             cbm_pool_trim */
	uint64_t idle_drains;	  /* buffers moved out of idle CPUs' caches
	                             by the reclamation thread */
	uint64_t reclaimed;	  /* retired buffers back in the pool */
	uint64_t grace_periods;	  /* grace periods waited for this pool;
	                             reclaimed / grace_periods is the batch */
	uint64_t rseq_aborts;	  /* rseq mode: restartable sequences the
	                             kernel aborted (preemption, migration,
	                             signal), each one restarted */
	size_t magazine_size;	  /* buffers per magazine */
	unsigned cpus;		  /* CPUs with caches */
	unsigned percpu_mode;	  /* CBM_PERCPU_PORTABLE or CBM_PERCPU_RSEQ */
	unsigned hugepages;	  /* 0: normal pages; 1: explicit huge pages;
	                             2: transparent huge pages asked for */
	/* Elastic pools (for a fixed one max_capacity == capacity). */
	size_t max_capacity;   /* the ceiling capacity may grow to */
	size_t resident_bytes; /* the pool's memory the OS backs now: the
	                            pages of every buffer handed out at least
	                            once, less those released, plus the
	                            bookkeeping in use (an upper bound: a page
	                            never written is not backed) */
	size_t released_bytes; /* given back to the OS, not yet reused */
	uint64_t grows;	       /* times the pool grew */
	uint64_t releases;     /* passes or calls that gave memory back */
} cbm_stats;

/* What an error handler is told went wrong. */
enum cbm_error {
	CBM_ERR_FOREIGN = 1, /* pointer is in no buffer that exists: outside
			      the arena, or past the buffers so far */
	CBM_ERR_MISALIGNED,  /* pointer is inside the arena, not at a buffer */
	CBM_ERR_DOUBLE_FREE, /* debug pool: buffer is not held by the caller */
	CBM_ERR_OVERFLOW, /* debug pool: guard zone after buffer was written */
	CBM_ERR_LEAK,	  /* destroy: buffers still held (ptr is NULL) */
	CBM_ERR_BAD_ARG,  /* NULL pool, or NULL array with a count > 0 */
	CBM_ERR_CORRUPT	  /* debug pool: the pool's own state is broken
	                        (a buffer about to be handed out twice) */
};

/*
 * Called for each programming error the library detects, on the thread that
 * made the bad call. pool may be NULL (CBM_ERR_BAD_ARG), ptr is the bad
 * pointer (NULL for CBM_ERR_LEAK), what is a sentence for a human. The
 * handler may return; the bad pointer is then dropped (never reused), and
 * the call that detected it returns as if it had done nothing with it.
 */
typedef void (*cbm_error_fn)(void *arg, const cbm_pool *pool, int err,
			     const void *ptr, const char *what);

/*
 * Create a pool. *out is set only on success.
 * Returns 0; -EINVAL for a NULL cfg or out, a zero block_size, a zero
 * capacity in a fixed pool, a max_capacity below capacity, a release_ms or
 * idle_trim_ms below 10, an align that is not a power of two (or above 1
 * GiB), a magazine_size above 4096, unknown flags, or one of on_map and
 * on_unmap without the other; -EOVERFLOW when capacity or max_capacity
 * does not fit 32-bit buffer indices, the ceiling x buffer size does not
 * fit size_t, or with region callbacks a stride above 1 GiB; -ENOMEM when address space for
 * the arena or the bookkeeping cannot be had; -EAGAIN when the reclamation
 * thread, which the first pool of a process starts, cannot be started.
 * Nothing is allocated on failure. Cost: O(1) in time and memory whatever
 * the capacity or ceiling: a few mmaps that reserve address space; pages are
 * touched as buffers are first handed out. Any thread.
 */
CBM_NODISCARD CBM_API int cbm_pool_create(const cbm_pool_config *cfg,
					  cbm_pool **out);

/*
 * Destroy a pool and unmap its arena. Buffers still held are reported once
 * as CBM_ERR_LEAK (the default handler prints and returns): how many, and for
 * the first 16 their address and index and, in a debug pool, where each was
 * allocated. They are gone with the arena. NULL is a no-op. The caller must guarantee that no other call
 * on this pool runs concurrently or later. Cost: first what cbm_barrier
 * costs (it waits for a reclamation pass, so for an RCU grace period), then
 * O(CPUs) plus munmap.
 */
CBM_API void cbm_pool_destroy(cbm_pool *pool);

/*
 * Take one buffer, aligned to the pool's align, cbm_block_size() bytes long,
 * contents unspecified. Returns NULL and sets errno to ENOMEM only when no
 * buffer is free in the pool: only if, at some instant during the call,
 * every buffer not retired was held by the application (inside its calls
 * included). When the global tier is empty it drains other CPUs' caches,
 * and waits for buffers that other calls are moving between the pool's
 * tiers, before it gives up; so in a quiescent pool with k buffers held,
 * capacity - k allocations in a row succeed, and under any interleaving an
 * application that never holds every buffer never sees NULL. Cost: O(1), a
 * few nanoseconds, from the CPU's cache; one lock-free pop per magazine
 * (magazine_size buffers) from the global tier; when the pool runs dry,
 * O(CPUs) per look, and it may wait for a thread preempted inside another
 * CPU's cache or in the middle of a move; in a pool with region callbacks,
 * a growth waits for another thread's on_map. Any thread.
 */
CBM_API CBM_HOT_CALL void cbm_free(cbm_pool *pool, void *buf);
CBM_API CBM_HOT_CALL void *cbm_alloc(cbm_pool *pool) CBM_ALLOCATOR(cbm_free, 2);

/*
 * Give back a buffer obtained from this pool. NULL is a no-op. A pointer that
 * is not a buffer of this pool goes to the error handler and is not put in
 * the pool. Cost: O(1), as cbm_alloc; never blocks. Any thread, not
 * necessarily the one that allocated the buffer.
 */
CBM_API CBM_HOT_CALL void cbm_free(cbm_pool *pool, void *buf);

/*
 * Take n buffers into bufs[0..n-1], all or nothing. Returns 0, or -ENOMEM
 * with no buffer taken (the contents of bufs are then unspecified) when fewer
 * than n are free: it took what it could and, as cbm_alloc would, saw the
 * pool dry at an instant during the call, then gave back what it took.
 * While it gathers, other allocations wait for it rather than see the
 * buffers it holds missing, and two that gather at once take turns; or
 * -EINVAL (and the error handler) when pool is NULL or bufs is NULL with
 * n > 0. n == 0 returns 0. Cost: O(n), magazines are copied whole where they
 * can be. Any thread.
 */
CBM_NODISCARD CBM_API CBM_HOT_CALL int cbm_alloc_bulk(cbm_pool *pool,
						      void **bufs, size_t n);

/*
 * Give back n buffers. Each bad pointer goes to the error handler and is
 * skipped; the others are given back. NULL entries are skipped. A pool made
 * with CBM_POOL_TRUST_BULK_FREES may check none of them (see there). Cost:
 * O(n). Any thread.
 */
CBM_API CBM_HOT_CALL void cbm_free_bulk(cbm_pool *pool, void *const *bufs,
					size_t n);

/*
 * Usable bytes per buffer: block_size rounded up to a multiple of align
 * (with the default align of 64, a 100-byte block is 128 bytes). Buffers are
 * laid out at that stride, so every byte of it may be used; a debug pool adds
 * its guard zone after it. O(1), any thread.
 */
CBM_API size_t cbm_block_size(const cbm_pool *pool);

/* Number of buffers that exist now: fixed for a fixed pool; for an elastic
 * one it grows as the pool does and never shrinks (a released buffer keeps
 * its address and still counts). O(1), any thread. */
CBM_API size_t cbm_capacity(const cbm_pool *pool);

/* The most buffers the pool may ever have: max_capacity, or capacity for a
 * fixed pool. 0 for NULL. O(1), any thread. */
CBM_API size_t cbm_max_capacity(const cbm_pool *pool);

/*
 * Give the memory of every free buffer in the global tier back to the OS
 * now (whole pages only: for buffers smaller than a page, the pages all of
 * whose buffers are free), whatever release_ms says. Buffers in CPU caches
 * or held stay as they are (cbm_pool_trim first moves cached ones down).
 * Returns the bytes given back (>= 0), or -EINVAL (and the error handler)
 * for NULL. Cost: O(free buffers log free buffers) and the madvise calls;
 * allocations that find the pool dry meanwhile wait for it. Any thread.
 */
CBM_API long cbm_pool_release(cbm_pool *pool);

/*
 * Fill *out with a snapshot (see cbm_stats). Returns 0, or -EINVAL (and the
 * error handler) for a NULL argument. Cost: O(CPUs); takes no lock; any thread. It reads again
 * when buffers moved between tiers under it, and waits (at most about 100
 * ms, then gives its last reading) for a move in flight.
 */
CBM_API int cbm_pool_stats(const cbm_pool *pool, cbm_stats *out);

/*
 * Write a snapshot of the pool (cbm_pool_stats) through write_cb, in
 * pieces of text (each NUL-terminated), after jemalloc's
 * malloc_stats_print. opts NULL or "": text for a human, one field a line
 * with what it means, then each CPU cache's fill; "J": one JSON object
 * with the pool's name, every cbm_stats field by its name, and
 * "cache_fill", an array of each cache's buffers (one cache per CPU in
 * rseq mode, two in portable mode); "P": the Prometheus text format, one
 * metric family per field, named cbm_FIELD with the label pool="NAME",
 * counters as counters (cbm_allocs_total) and levels as gauges
 * (cbm_in_use), and cbm_cache_fill{cache="N"}; "c" with any of them leaves
 * out the per-cache fill (O(CPUs) lines), "h" with "P" the HELP lines
 * (about half the bytes: what a reply that must fit one buffer needs). write_cb NULL writes to
 * stderr. A NULL pool or an unknown letter in opts goes to the error
 * handler (CBM_ERR_BAD_ARG) and nothing is written. Cost: cbm_pool_stats
 * and O(CPUs); write_cb is called a few times per field, on the calling
 * thread, and may not call into the pool. Any thread.
 */
CBM_API void cbm_pool_stats_print(const cbm_pool *pool,
				  void (*write_cb)(void *cbopaque,
						   const char *text),
				  void *cbopaque, const char *opts);

/*
 * Drain every CPU's cache into the global tier, so that memory cached on
 * CPUs the application no longer runs on is available everywhere. Returns
 * the number of buffers moved (>= 0), or -EINVAL (and the error handler) for
 * NULL. Cost: O(CPUs x
 * magazine_size); waits for a thread that is preempted inside a CPU's cache
 * to leave it. Any thread.
 */
CBM_API int cbm_pool_trim(cbm_pool *pool);

/*
 * Check every structure of a quiescent pool: each buffer is in exactly one
 * place (freelist, depot, a CPU cache, the retired list) or held, and the
 * held count agrees with the counters; in a debug pool, each buffer's state
 * agrees with where it was found. Returns 0 when all holds, -EUCLEAN when
 * something does not (and prints what to stderr), -EINVAL (and the error
 * handler) for NULL, -ENOMEM
 * when its scratch bitmap cannot be allocated. The caller must guarantee that
 * no other call on this pool runs meanwhile. Cost: O(capacity). For tests.
 */
CBM_API int cbm_pool_verify(const cbm_pool *pool);

/*
 * Give back a buffer that other threads may still be reading inside RCU
 * read-side sections (cbm_read_lock, or the pool's own flavor). It returns
 * to the pool after a grace period of the pool's flavor, so no reader that
 * could have seen it is still reading when it is handed out again. Checks
 * as cbm_free (foreign, interior and, in a debug pool, double retire or
 * free). NULL is a no-op. Cost: O(1), one compare-and-swap; never blocks,
 * never allocates, never writes into buf. Any thread, including readers
 * inside a read-side section.
 */
CBM_API void cbm_retire(cbm_pool *pool, void *buf);

/*
 * Wait until every buffer retired to this pool before the call is back in
 * the pool. Blocks for at least one pass of the reclamation thread, and for
 * a grace period when something was retired; for at most the pass in
 * flight and one more, however fast other threads retire. Must not be
 * called from inside a read-side section (it would wait for itself). Any
 * thread.
 */
CBM_API void cbm_barrier(cbm_pool *pool);

/*
 * An RCU read-side section of the default flavor (liburcu memb), for
 * readers of buffers that pools without an rcu_flavor of their own may
 * retire: between the two calls, a buffer the thread could see before
 * cbm_retire stays valid. Sections nest. The first call of a thread
 * registers it with liburcu; it is unregistered when the thread exits.
 * Cost: a few nanoseconds, no atomic read-modify-write, never blocks. A
 * thread must not fork, call cbm_barrier or cbm_pool_destroy inside one.
 * A thread the application registered with liburcu's memb flavor itself
 * uses urcu_memb_read_lock/unlock instead (registering twice corrupts
 * liburcu's registry); under ThreadSanitizer only cbm_read_unlock tells
 * TSan about the grace period, so such readers may see false reports.
 */
CBM_API void cbm_read_lock(void);
CBM_API void cbm_read_unlock(void);

/*
 * The pool's memory as regions, for registration with the kernel or a
 * device: io_uring_register_buffers(), ibv_reg_mr(), a DMA mapping. Fills
 * regions[0..min(n, count)-1] and returns count, the number of regions
 * (call with n = 0, regions may then be NULL, to size the array). Each
 * region is at most 1 GiB (io_uring's limit for one registered buffer),
 * starts at a buffer and ends at the end of one, so no buffer straddles two;
 * in a debug pool the regions include the guard zones. Regions cover the
 * buffers that exist now; a fixed pool's never change, and region i is the
 * buf_index that cbm_region_index gives for its buffers when the array is
 * registered in order. An elastic pool's grow at the end as it grows (the
 * last region lengthens, then new ones follow; none moves), so a
 * registration made earlier misses the buffers added since. Registering
 * pins the pages: while they are registered, do not let the pool release
 * memory (cbm_pool_release, release_ms), or the kernel would go on using
 * the pages the pool gave back while the pool's buffers get fresh ones;
 * the region callbacks (cbm_pool_config.on_map, on_unmap) keep a
 * registration in step through growth and release. Returns -EINVAL (and
 * the error handler,
 * CBM_ERR_BAD_ARG) for a NULL pool or a NULL array with n > 0;
 * -EOVERFLOW when one buffer is larger than 1 GiB. Cost: O(count), about
 * capacity x buffer size / 1 GiB; touches no buffer. Any thread.
 */
CBM_API int cbm_pool_regions(const cbm_pool *pool, struct iovec *regions,
			     unsigned n);

/*
 * Which region (cbm_pool_regions) an address inside one of the pool's
 * buffers lies in: the buffer's start or any byte inside it, since I/O often
 * starts mid-buffer. This is the buf_index for IORING_OP_READ_FIXED,
 * WRITE_FIXED and SEND_ZC with IORING_RECVSEND_FIXED_BUF when the regions
 * were registered in order. Returns the index (>= 0); -EINVAL, and the error
 * handler with CBM_ERR_FOREIGN, for an address in no buffer of the pool
 * (outside the arena, past the buffers that exist, in a debug pool's guard
 * zone), or with CBM_ERR_BAD_ARG for a NULL pool; -EOVERFLOW when one
 * buffer is larger than 1 GiB. Cost: O(1): a multiply for a buffer's start,
 * one division for an address inside one; takes no lock. Any thread.
 */
CBM_API int cbm_region_index(const cbm_pool *pool, const void *buf);

/* The pool's name, as given at creation, or "(unnamed)". Any thread. */
CBM_API const char *cbm_pool_name(const cbm_pool *pool);

/* The library's version, "MAJOR.MINOR.PATCH" (the CBM_VERSION_* of the
 * header it was built with). O(1), any thread. */
CBM_API const char *cbm_version(void);

/*
 * Install the process-wide error handler; NULL restores the default. The
 * handler may be called concurrently from several threads. Any thread.
 */
CBM_API void cbm_set_error_handler(cbm_error_fn fn, void *arg);

/* ---- Size-class heaps ----------------------------------------------- */

/*
 * A heap: one handle for buffers of every size, after the sizing rule
 * BufferSize = max(request size, the class's block size). Each size class
 * is an elastic pool (everything above holds per class) at a fixed slot
 * of one address reservation, so cbm_heap_free finds the class from the
 * address alone: class = (address - base) >> shift, no header, no search.
 * A class's pool is made on its first allocation: classes never used cost
 * no memory but address space.
 *
 * Classes. Sizes run from min_size to max_size (both rounded up to a
 * class), spacing classes per doubling, each step within a doubling a
 * quarter (spacing 4: 1280, 1536, 1792, 2048), half or the whole of it, so
 * a buffer wastes at most 1/(spacing + 1) of itself; except that every
 * class is a multiple of 16, which below 16 x spacing bytes per step
 * leaves out steps (spacing 4: 16, 32, 48, 64, then 80, 96, ...). A buffer
 * is aligned to its class size's largest power-of-two divisor, at least 16
 * and at most 4096 (every class of 4 KiB multiples gives page-aligned
 * buffers, for O_DIRECT).
 */
typedef struct cbm_heap cbm_heap; /* opaque */

typedef struct cbm_heap_config {
	size_t min_size;  /* smallest class; 0 means 64; at least 16 */
	size_t max_size;  /* largest class; 0 means 1 MiB; >= min_size,
			     <= 1 GiB */
	unsigned spacing; /* classes per doubling: 1, 2 or 4; 0 means 4 */
	/*
	 * Ceiling on the bytes of buffers all classes together hold from the
	 * OS (buffers that exist, in use, cached or free, less memory given
	 * back to the OS); a class grows only under it. 0: no ceiling but
	 * the address space. At least one buffer of the largest class (its
	 * size, and its guard zone in a debug heap). A buffer counts its
	 * stride (with a debug heap's guard); the classes' bookkeeping (a
	 * few bytes a buffer) is not counted.
	 */
	size_t max_bytes;
	unsigned flags;	  /* CBM_POOL_* for every class */
	const char *name; /* copied; classes are named "NAME/SIZE" */
	/* release_ms and idle_trim_ms for every class, as cbm_pool_config's
	 * (0: the elastic defaults). */
	unsigned release_ms, idle_trim_ms;
} cbm_heap_config;

/*
 * Create a heap. Returns 0; -EINVAL for a NULL cfg or out, a spacing other
 * than 0, 1, 2, 4, a min_size below 16 (but 0) or above max_size, a
 * max_size above 1 GiB, a max_bytes (but 0) below the largest class,
 * unknown flags, or a release_ms or idle_trim_ms the pools refuse;
 * -ENOMEM when the address space cannot be had. Cost: one reservation of
 * address space (classes x a slot); no class pool yet. Any thread.
 */
CBM_NODISCARD CBM_API int cbm_heap_create(const cbm_heap_config *cfg,
					  cbm_heap **out);

/*
 * Destroy every class pool (as cbm_pool_destroy, leaks reported per
 * class) and the reservation. NULL is a no-op. Ordered after every other
 * call on the heap, as cbm_pool_destroy.
 */
CBM_API void cbm_heap_destroy(cbm_heap *heap);

/*
 * A buffer of at least size bytes (0 gives one of the smallest class), of
 * the smallest class that holds size. NULL with errno EINVAL above
 * max_size (or for a NULL heap, through the error handler); NULL with
 * errno ENOMEM only when the class cannot grow: it is at its own ceiling
 * (address space), or the heap's max_bytes is reached even after every
 * other class gave back the memory of its free buffers (cbm_heap_release
 * of the others, their CPU caches drained first; whole pages only, and a
 * class grows by whole runs of pages, at most 7 at spacing 4). Cost: the size's class
 * (a table up to 4 KiB, above it a leading-zero count and shifts) and
 * cbm_alloc. Any thread.
 */
CBM_API void *cbm_heap_alloc(cbm_heap *heap, size_t size);

/*
 * Give back a buffer of the heap, from any thread; the class comes from
 * the address. NULL is a no-op. A pointer in no class, or inside a buffer,
 * is reported as cbm_free reports it (CBM_ERR_FOREIGN, CBM_ERR_MISALIGNED,
 * and in a debug heap double frees and overflows) and dropped.
 */
CBM_API void cbm_heap_free(cbm_heap *heap, void *buf);

/* As cbm_retire, for a buffer of the heap (its class's RCU flavor, the
 * default one). */
CBM_API void cbm_heap_retire(cbm_heap *heap, void *buf);

/*
 * The usable bytes of a buffer of the heap: its class's size, which is
 * cbm_block_size and cbm_stats.block_size of the class pool. NULL gives 0;
 * a pointer in no class, or inside a buffer, is reported (as
 * cbm_heap_free) and gives 0. O(1), any thread.
 */
CBM_API size_t cbm_heap_usable_size(const cbm_heap *heap, const void *buf);

/*
 * The pool of the class that serves size, made if it was not yet, for bulk
 * calls (cbm_alloc_bulk, cbm_free_bulk): they take and give back the same
 * buffers cbm_heap_alloc and cbm_heap_free do, and at the heap's ceiling
 * ask the other classes for memory as cbm_heap_alloc does. NULL with errno
 * EINVAL above max_size, ENOMEM when the pool cannot be made. The pool
 * belongs to the heap: never destroy it. In a heap made with
 * CBM_POOL_TRUST_BULK_FREES every class pool trusts its bulk frees: a
 * buffer of another class given to this pool's cbm_free_bulk then goes
 * into it unchecked, and a later allocation of this class returns it, too
 * small. Any thread.
 */
CBM_API cbm_pool *cbm_heap_pool(cbm_heap *heap, size_t size);

/*
 * Fill per_class[0 .. min(n, classes) - 1] with each class's cbm_stats,
 * smallest class first (a class not yet made: its block_size and
 * max_capacity, the rest 0); returns the number of classes (per_class may
 * be NULL when n is 0), or -EINVAL (and the error handler) for a NULL
 * heap, or a NULL per_class with n > 0. Cost: cbm_pool_stats per class
 * made. Any thread.
 */
CBM_API int cbm_heap_stats(const cbm_heap *heap, cbm_stats *per_class,
			   size_t n);

/* The bytes of buffers the heap's classes hold from the OS now, what
 * max_bytes bounds (an upper bound on their resident memory); 0 for NULL.
 * O(1), any thread. */
CBM_API size_t cbm_heap_bytes(const cbm_heap *heap);

/* cbm_barrier on every class made. */
CBM_API void cbm_heap_barrier(cbm_heap *heap);

/* As cbm_pool_trim, every class: the buffers moved (>= 0), or -EINVAL. */
CBM_API int cbm_heap_trim(cbm_heap *heap);

/* As cbm_pool_release, every class: the bytes given back, or -EINVAL. */
CBM_API long cbm_heap_release(cbm_heap *heap);

#ifdef __cplusplus
}
#endif

/* Opt-in, before this header: #define CBM_INLINE 1 makes cbm_alloc,
 * cbm_free and the bulk calls inline in the caller (cbm/inline.h). */
#if defined(CBM_INLINE) && CBM_INLINE
#include "cbm/inline.h"
#endif

#endif /* CBM_H */
