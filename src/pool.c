/* SPDX-License-Identifier: MIT */
/*
 * Pool creation and destruction, configuration checks, and the small
 * queries. The allocation paths are in alloc.c.
 */
#include "pool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "colour.h"
#include "fork.h"
#include "leaks.h"
#include "plant.h"
#include "rcu.h"
#include "reclaim.h"
#include "report.h"
#include "rseq.h"
#include "stats.h"

#define DEFAULT_ALIGN 64
#define MAX_ALIGN ((size_t)1 << 30)
#define MAX_MAGAZINE 4096
#define DEFAULT_MAGAZINE 256
#define GUARD_MIN 8 /* debug pools: at least this many guard bytes */
#define KNOWN_FLAGS                                                            \
	(CBM_POOL_DEBUG | CBM_POOL_HUGEPAGES | CBM_POOL_EXACT_STRIDE |         \
	 CBM_POOL_TRUST_BULK_FREES)
#define DEFAULT_IDLE_TRIM_MS 1000
#define MIN_IDLE_TRIM_MS 10
#define DEFAULT_RELEASE_MS 1000
#define MIN_RELEASE_MS 10

/* ---- creation ---------------------------------------------------------- */

static bool
round_up_checked(size_t x, size_t to, size_t *out)
{
	if (x > SIZE_MAX - (to - 1))
		return false;
	*out = (x + to - 1) & ~(to - 1);
	return true;
}

/*
 * A magazine small enough that the caches (two magazines' worth each)
 * together hold at most about half of a small pool, and 256 otherwise: a
 * trip below the cache then costs two CASes per 256 operations, and a
 * burst of 512 allocations (a receive batch) stays in the cache. 64 was
 * measured too small: two threads each taking 512 buffers and giving them
 * back contended on the depot (bench/, depth512 at 2 threads: 78 M/s per
 * thread with 64, 125 with 256, against 160 alone).
 */
static uint32_t
default_magazine(size_t capacity, unsigned ncaches)
{
	size_t m = capacity / (4 * (size_t)ncaches);

	if (m < 1)
		m = 1;
	return m < DEFAULT_MAGAZINE ? (uint32_t)m : DEFAULT_MAGAZINE;
}

struct geometry {
	size_t align, block_size, stride, arena_bytes, nmags, cache_bytes;
	size_t max;	/* the ceiling: capacity for a fixed pool */
	size_t reserve; /* buffers the reservations hold: max, but see
			   check_config */
	uint32_t mag_size;
	unsigned ncpus, caches_per_cpu, ncaches, mode;
	unsigned idle_trim_ms, release_ms;
	bool elastic;
};

static int
check_config(const cbm_pool_config *cfg, struct geometry *g)
{
	size_t guard_end, exact;
	int n;

	g->elastic = cfg->max_capacity != 0;
	g->max = g->elastic ? cfg->max_capacity : cfg->capacity;
	if (cfg->block_size == 0 || g->max == 0 || cfg->capacity > g->max ||
	    (cfg->flags & ~KNOWN_FLAGS) != 0 ||
	    cfg->magazine_size > MAX_MAGAZINE ||
	    (cfg->idle_trim_ms != 0 && cfg->idle_trim_ms < MIN_IDLE_TRIM_MS) ||
	    (cfg->release_ms != 0 && cfg->release_ms < MIN_RELEASE_MS))
		return -EINVAL;
	g->idle_trim_ms =
		cfg->idle_trim_ms ? cfg->idle_trim_ms : DEFAULT_IDLE_TRIM_MS;
	g->release_ms = cfg->release_ms ? cfg->release_ms
			: g->elastic	? DEFAULT_RELEASE_MS
					: CBM_RELEASE_OFF;
	g->align = cfg->align ? cfg->align : DEFAULT_ALIGN;
	if ((g->align & (g->align - 1)) != 0 || g->align > MAX_ALIGN)
		return -EINVAL;
	if ((cfg->on_map == NULL) != (cfg->on_unmap == NULL))
		return -EINVAL; /* both or neither */
	/* Indices are 32 bits and CBM_NIL is reserved. */
	if (g->max >= CBM_NIL)
		return -EOVERFLOW;
	if (!round_up_checked(cfg->block_size, g->align, &g->block_size))
		return -EOVERFLOW;
	g->stride = g->block_size;
	if (cfg->flags & CBM_POOL_DEBUG) {
		if (g->block_size > SIZE_MAX - GUARD_MIN ||
		    !round_up_checked(g->block_size + GUARD_MIN, g->align,
				      &guard_end))
			return -EOVERFLOW;
		g->stride = guard_end;
	}
	/* Colour (colour.h) the pools that keep their memory: a padded
	 * stride makes release groups lcm(stride, page) long (arena.h), 64
	 * buffers at 2 KiB + 64, which buffers in use rarely leave whole. */
	exact = g->stride;
	if (!(cfg->flags & CBM_POOL_EXACT_STRIDE) && !g->elastic &&
	    (cfg->release_ms == 0 || cfg->release_ms == CBM_RELEASE_OFF) &&
	    !cbm_colour_stride(&g->stride, g->align,
			       (size_t)sysconf(_SC_PAGESIZE)))
		return -EOVERFLOW;
	/* Never colour a buffer out of every region (regions.h): a 1 GiB
	 * buffer stays registrable. */
	if (exact <= CBM_REGION_MAX && g->stride > CBM_REGION_MAX)
		g->stride = exact;
	/* A planted grow-past-ceiling takes the frontier past max (by at most
	 * a run per racing grower, frontier.c): room for that, so that the
	 * overshoot is reported by the checks rather than a fault in memory
	 * never reserved. Every other build reserves exactly max. */
	g->reserve = g->max;
	if (CBM_PLANTED(CBM_PLANT_GROW_PAST_CEILING))
		g->reserve = g->max + (g->max < CBM_NIL / 4 ? g->max : 0) +
			     64 * MAX_MAGAZINE;
	if (g->reserve > SIZE_MAX / g->stride)
		return -EOVERFLOW;
	/* A buffer that fits no region (regions.h). */
	if (cfg->on_map != NULL && cbm_region_shift(g->stride) < 0)
		return -EOVERFLOW;
	g->arena_bytes = g->reserve * g->stride;
	n = get_nprocs_conf();
	g->ncpus = n > 0 ? (unsigned)n : 1;
	g->mode = cbm_percpu_mode_default();
	g->caches_per_cpu =
		g->mode == CBM_MODE_RSEQ ? 1 : CBM_CACHES_PER_CPU_PORTABLE;
	g->ncaches = g->ncpus * g->caches_per_cpu;
	g->mag_size = cfg->magazine_size ? cfg->magazine_size
					 : default_magazine(g->max, g->ncaches);
	g->cache_bytes = sizeof(struct cbm_cpu_cache) +
			 2 * (size_t)g->mag_size * sizeof(void *);
	g->cache_bytes = (g->cache_bytes + CBM_CACHELINE - 1) &
			 ~(size_t)(CBM_CACHELINE - 1);
	/* Enough for every buffer up to the ceiling to sit in a full one,
	 * one more per cache for magazines in flight in slow paths, and one
	 * spare (depot.h). Fits 32 bits: max < 2^32 and ncaches is small, but
	 * check rather than trust. */
	g->nmags = (g->max + g->mag_size - 1) / g->mag_size + g->ncaches + 1;
	if (g->nmags >= CBM_NIL)
		return -EOVERFLOW;
	return 0;
}

/* Destroy's end, and the way out of a create that failed: either may find
 * buffers poisoned, and the shadow outlives the mapping (debug.h). */
static void
free_pool_memory(struct cbm_pool *pool)
{
	uint64_t max = pool->reserved;

	if (pool->arena.map != NULL)
		cbm_san_clear(
			pool->arena.base,
			(size_t)cbm_frontier_taken(&pool->global.frontier) *
				pool->blocks.stride);
	/* The application lets go of what it registered first. */
	cbm_region_hooks_fini(&pool->region_hooks);
	cbm_arena_unmap(&pool->arena);
	cbm_global_fini(&pool->global);
	free(pool->map.caches);
	if ((char *)pool->links != pool->arena.base)
		cbm_unreserve(pool->links, max * sizeof(*pool->links));
	cbm_unreserve(pool->debug.state, max * sizeof(*pool->debug.state));
	cbm_debug_drop_sites(&pool->debug, max);
	free(pool);
}

/*
 * Region callbacks (cbm.h, regions.h): release groups become whole regions
 * (so a region goes back only when all of it is free in the global tier,
 * and the last one, cut short by the ceiling, never does), and growth ends
 * on region boundaries, each one told before its buffers can be taken. The
 * global tier and frontier see only extent hooks, in buffers.
 */
static int
hook_regions(struct cbm_pool *pool, const cbm_pool_config *cfg)
{
	struct cbm_region_hooks *h = &pool->region_hooks;
	int rc = cbm_region_hooks_init(h, cfg->on_map, cfg->on_unmap,
				       cfg->region_arg, &pool->blocks,
				       &pool->capacity);

	if (rc != 0)
		return rc;
	pool->blocks.group = (uint32_t)1 << h->shift;
	cbm_global_set_hooks(&pool->global, cbm_region_hooks_map,
			     cbm_region_hooks_unmap, h,
			     (uint64_t)1 << h->shift);
	return 0;
}

/* CBM_DEBUG in the environment makes every pool a debug pool: cfg, or
 * *asked, its copy with the flag. */
static const cbm_pool_config *
with_debug_env(const cbm_pool_config *cfg, cbm_pool_config *asked,
	       unsigned *depth)
{
	*depth = cbm_debug_env();
	if (*depth == 0)
		return cfg;
	*asked = *cfg;
	asked->flags |= CBM_POOL_DEBUG;
	return asked;
}

int
cbm_pool_config_stride(const cbm_pool_config *cfg, size_t *stride)
{
	cbm_pool_config asked;
	struct geometry g;
	unsigned depth;
	int rc;

	if (cfg == NULL || stride == NULL)
		return -EINVAL;
	cfg = with_debug_env(cfg, &asked, &depth);
	rc = check_config(cfg, &g);
	if (rc == 0)
		*stride = g.stride;
	return rc;
}

int
cbm_pool_create(const cbm_pool_config *cfg, cbm_pool **out)
{
	return cbm_pool_create_placed(cfg, NULL, out);
}

/* The arena where the creator put it (cbm_pool_create_placed), or mapped
 * afresh. */
static int
map_arena(struct cbm_pool *pool, const struct geometry *g,
	  const cbm_pool_config *cfg, const struct cbm_pool_place *place)
{
	if (place != NULL)
		return cbm_arena_place(&pool->arena, place->at, g->arena_bytes,
				       cfg->flags & CBM_POOL_HUGEPAGES);
	return cbm_arena_map(&pool->arena, g->arena_bytes, g->align,
			     cfg->flags & CBM_POOL_HUGEPAGES, g->elastic);
}

int
cbm_pool_create_placed(const cbm_pool_config *cfg,
		       const struct cbm_pool_place *place, cbm_pool **out)
{
	struct geometry g;
	struct cbm_pool *pool;
	cbm_pool_config asked;
	unsigned debug_depth;
	size_t pool_bytes, fast_bound;
	int rc;

	if (cfg == NULL || out == NULL)
		return -EINVAL;
	cbm_plant_init();
	cfg = with_debug_env(cfg, &asked, &debug_depth);
	rc = check_config(cfg, &g);
	if (rc != 0)
		return rc;
	if (place != NULL) {
		if (!g.elastic || cfg->capacity != 0 || cfg->on_map != NULL)
			return -EINVAL;
		if (g.arena_bytes > place->bytes ||
		    ((uintptr_t)place->at & (g.align - 1)) != 0)
			return -EOVERFLOW;
	}
	cbm_fork_handlers_install();

	fast_bound = cbm_fast_table_bound(g.ncpus);
	pool_bytes = CBM_POOL_FAST_AT +
		     (CBM_FAST_BEFORE + fast_bound) * sizeof(void *);
	pool_bytes =
		(pool_bytes + CBM_CACHELINE - 1) & ~(size_t)(CBM_CACHELINE - 1);
	pool = CBM_FAIL_HERE("the pool")
		       ? NULL
		       : aligned_alloc(CBM_CACHELINE, pool_bytes);
	if (pool == NULL)
		return -ENOMEM;
	memset(pool, 0, pool_bytes);
	/* The buffers' side arrays are reserved for the ceiling, as the
	 * arena is, and touched as buffers first come into use: create is
	 * O(1) whatever the ceiling (frontier.h). */
	pool->blocks.max = g.max;
	pool->reserved = g.reserve;
	pool->map.caches = CBM_FAIL_HERE("the caches")
				   ? NULL
				   : aligned_alloc(CBM_CACHELINE,
						   g.ncaches * g.cache_bytes);
	pool->links = cbm_reserve(g.reserve * sizeof(*pool->links));
	if (cfg->flags & CBM_POOL_DEBUG)
		pool->debug.state =
			cbm_reserve(g.reserve * sizeof(*pool->debug.state));
	if (pool->map.caches == NULL || pool->links == NULL ||
	    ((cfg->flags & CBM_POOL_DEBUG) &&
	     (pool->debug.state == NULL ||
	      cbm_debug_keep_sites(&pool->debug, g.reserve, debug_depth) !=
		      0)) ||
	    map_arena(pool, &g, cfg, place) != 0) {
		free_pool_memory(pool);
		return -ENOMEM;
	}

	/* The arena's geometry, and its copy on the hot line. */
	cbm_blocks_init(&pool->blocks, pool->arena.base, g.stride, g.max);
	pool->base = pool->blocks.base;
	pool->stride_inv = pool->blocks.stride_inv;
	pool->stride_shift = (uint8_t)pool->blocks.stride_shift;
	if (CBM_PLANTED(CBM_PLANT_LINKS_IN_BUFFERS) &&
	    g.stride == sizeof(*pool->links)) {
		/* links[i] is then the first word of buffer i. */
		cbm_unreserve(pool->links, g.reserve * sizeof(*pool->links));
		pool->links = (cbm_atomic_u32 *)(void *)pool->base;
	}
	/* The global tier: capacity buffers exist, on the frontier; none is
	 * linked anywhere until it is first handed out. */
	if (cbm_global_init(&pool->global, &pool->blocks, pool->links,
			    &pool->capacity, cfg->capacity, (uint32_t)g.nmags,
			    g.mag_size) != 0) {
		free_pool_memory(pool);
		return -ENOMEM;
	}
#ifdef CBM_FAULT_INJECTION
	/* The buffer freelist only: in the depot the same bug would share a
	 * magazine between CPUs, which crashes before any check can see it. */
	pool->global.freelist.plant_untagged = CBM_PLANTED(CBM_PLANT_NO_TAG);
#endif
	if (place != NULL && place->budget != NULL)
		cbm_global_set_budget(&pool->global, place->budget);
	if (place != NULL) {
		pool->at_ceiling = place->at_ceiling;
		pool->ceiling_arg = place->ceiling_arg;
	}
	if (cfg->on_map != NULL) {
		rc = hook_regions(pool, cfg);
		if (rc != 0) {
			free_pool_memory(pool);
			return rc;
		}
	}
	pool->arena_bytes = g.arena_bytes;
	pool->fixed_bytes = pool_bytes + g.ncaches * g.cache_bytes;
	pool->flags = cfg->flags;
	pool->fast = cbm_fast_word(g.mode, cfg->flags);
	pool->inline_key = pool->fast == CBM_FAST_RSEQ ? CBM_INLINE_LAYOUT : 0;
	/* A pool that keeps books (debug, a memory checker) checks every
	 * pointer whatever its flags say. */
	pool->trust_bulk_frees = (cfg->flags & CBM_POOL_TRUST_BULK_FREES) &&
				 !(pool->fast & CBM_FAST_BOOKKEEPING);
	pool->map.slots = 2 * g.mag_size;
	/* In every mode: the exported fast paths arm a sequence before the
	 * fast table tells them the mode (src/fastpath.h). */
	pool->map.rseq_offset = cbm_rseq_offset();
	pool->caches.cpu_bytes = g.caches_per_cpu * g.cache_bytes;
	pool->map.ncpus = g.ncpus;
	/* Every cache empty and free: its word is 0. */
	memset(pool->map.caches, 0, g.ncaches * g.cache_bytes);
	cbm_fast_table_fill(&pool->map, pool->caches.cpu_bytes,
			    cbm_pool_fast_table(pool), fast_bound,
			    pool->fast == CBM_FAST_RSEQ);
	pool->caches.map = &pool->map;
	pool->caches.global = &pool->global;
	pool->caches.ncaches = g.ncaches;
	pool->caches.caches_per_cpu = g.caches_per_cpu;
	pool->caches.mode = g.mode;
	pool->caches.cache_bytes = g.cache_bytes;
	pool->caches.mag_size = g.mag_size;
	pool->block_size = g.block_size;
	pool->debug.blocks = &pool->blocks;
	pool->debug.block_size = g.block_size;
	pool->debug.owner = pool;
	snprintf(pool->name, sizeof(pool->name), "%s",
		 cfg->name ? cfg->name : "(unnamed)");
	pool->trim.idle_ms = g.idle_trim_ms;
	cbm_release_init(&pool->release, g.release_ms,
			 pool->arena.pages == CBM_PAGES_HUGETLB);

	pool->reclaim.flavor =
		cfg->rcu_flavor ? cfg->rcu_flavor : cbm_rcu_default_flavor();
	cbm_san_new_pool(&pool->blocks);
	/* Last: from here on the reclamation thread may look at the pool. */
	rc = cbm_reclaim_register(pool);
	if (rc != 0) {
		free_pool_memory(pool);
		return rc;
	}
	/* The regions at create (cbm.h): none of their buffers is in the
	 * global tier yet, so no release can race this, and no one else has
	 * the pool. */
	if (cfg->on_map != NULL && cfg->capacity > 0)
		cbm_region_hooks_map(&pool->region_hooks, 0, cfg->capacity);
	*out = pool;
	return 0;
}

void
cbm_pool_destroy(cbm_pool *pool)
{
	cbm_stats st;

	if (pool == NULL)
		return;
	/* Retired buffers come back first (readers may hold them until a
	 * grace period ends); then the thread lets go of the pool. */
	cbm_barrier(pool);
	cbm_reclaim_unregister(pool);
	cbm_pool_stats(pool, &st);
	if (st.in_use > 0)
		cbm_report_leaks(pool, st.in_use);
	free_pool_memory(pool);
}

/* ---- small queries ----------------------------------------------------- */

size_t
cbm_block_size(const cbm_pool *pool)
{
	return pool ? pool->block_size : 0;
}

size_t
cbm_capacity(const cbm_pool *pool)
{
	return pool ? cbm_pool_capacity(pool) : 0;
}

size_t
cbm_max_capacity(const cbm_pool *pool)
{
	return pool ? pool->blocks.max : 0;
}

long
cbm_pool_release(cbm_pool *pool)
{
	size_t bytes;

	if (cbm_unlikely(pool == NULL)) {
		cbm_report(NULL, CBM_ERR_BAD_ARG, NULL,
			   "cbm_pool_release: NULL pool");
		return -EINVAL;
	}
	bytes = cbm_release_now(&pool->release, &pool->global, UINT64_MAX,
				NULL);
	return bytes > LONG_MAX ? LONG_MAX : (long)bytes;
}

const char *
cbm_pool_name(const cbm_pool *pool)
{
	return pool ? pool->name : "(none)";
}

int
cbm_pool_trim(cbm_pool *pool)
{
	size_t moved;

	if (cbm_unlikely(pool == NULL)) {
		cbm_report(NULL, CBM_ERR_BAD_ARG, NULL,
			   "cbm_pool_trim: NULL pool");
		return -EINVAL;
	}
	moved = cbm_caches_drain(&pool->caches, false, &pool->trims);
	return moved > INT32_MAX ? INT32_MAX : (int)moved;
}
