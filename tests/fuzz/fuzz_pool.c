/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness 1: the API from one thread, against a model.
 *
 * The bytes make a pool configuration, valid or not, fixed or elastic, and
 * then a program of calls: alloc, free, bulk alloc and free, retire,
 * barrier, trim, release, stats, verify, and misuse (a foreign pointer, a pointer inside a buffer, a
 * double free and a write past the end in a debug pool, NULL arguments),
 * with an error handler that records each report. The model is what the
 * application holds, and checks:
 *   - create returns what cbm.h says for that configuration;
 *   - nothing is handed out twice, every buffer is aligned, usable over
 *     cbm_block_size() bytes, and keeps what the application wrote in it
 *     (a pattern unique to each hand-out, checked when it goes back);
 *   - NULL (ENOMEM) and -ENOMEM only when the model allows: with one
 *     thread, capacity means capacity (an elastic pool's ceiling), so an
 *     allocation fails only when the buffers held, dropped as damaged and
 *     retired since the last barrier leave none; and it never succeeds
 *     beyond the ceiling;
 *   - each misuse is reported once, with its code, and nothing else is;
 *   - stats add up to the model (in_use, retires, alloc_failures, the
 *     conservation sum, the capacity between the initial one and the
 *     ceiling and never shrinking, nothing cached after a trim, nothing
 *     retired after a barrier), and verify passes;
 *   - destroy reports one leak exactly when buffers are still out.
 */
#include <cbm.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"

/* Pools the harness creates: small enough for thousands a second. */
#define MAX_ARENA (8u << 20)
#define MAX_HELD 4096
#define MAX_OPS 512
#define MAX_BARRIERS 3
#define MAX_BULK 48

/* ---- the recording error handler -------------------------------------- */

static unsigned reports;
static int last_err;
static const void *last_ptr;

static void
record(void *arg, const cbm_pool *pool, int err, const void *ptr,
       const char *what)
{
	(void)arg;
	(void)pool;
	(void)what;
	reports++;
	last_err = err;
	last_ptr = ptr;
}

/* Exactly one report since the last look, with code err. */
static void
expect_report(int err, const char *after)
{
	FUZZ_CHECK(reports == 1 && last_err == err,
		   "%s: %u reports, last code %d, expected one of code %d",
		   after, reports, last_err, err);
	reports = 0;
}

static void
expect_quiet(const char *after)
{
	FUZZ_CHECK(reports == 0, "%s: unexpected report, code %d at %p", after,
		   last_err, last_ptr);
}

/* ---- the model ---------------------------------------------------------- */

struct held {
	unsigned char *p;
	uint32_t id; /* which hand-out: the pattern written into it */
};

struct model {
	cbm_pool *pool;
	size_t capacity; /* the ceiling: max_capacity, or capacity if fixed */
	size_t grown;	 /* the capacity last seen: it never shrinks */
	size_t usable, align;
	bool debug;
	struct held held[MAX_HELD];
	size_t nheld;
	size_t dropped;	    /* dropped as damaged: held forever */
	size_t retired_now; /* retired since the last barrier */
	uint64_t retires, failures;
	uint32_t next_id;
	unsigned barriers;
	/* Buffers given back and not taken again: double-free candidates. */
	unsigned char *gone[64];
	size_t ngone;
};

static unsigned char
pattern(uint32_t id, size_t i)
{
	return (unsigned char)(id * 131u + i * 7u + 1u);
}

static bool
is_held(const struct model *m, const void *p, size_t *at)
{
	for (size_t i = 0; i < m->nheld; i++)
		if (m->held[i].p == p) {
			if (at)
				*at = i;
			return true;
		}
	return false;
}

static void
forget_gone(struct model *m, const void *p)
{
	for (size_t i = 0; i < m->ngone; i++)
		if (m->gone[i] == p)
			m->gone[i] = m->gone[--m->ngone];
}

static void
remember_gone(struct model *m, unsigned char *p)
{
	forget_gone(m, p);
	if (m->ngone < sizeof(m->gone) / sizeof(m->gone[0]))
		m->gone[m->ngone++] = p;
}

/* A buffer just handed out: new, aligned, writable end to end. */
static void
take(struct model *m, void *buf, const char *op)
{
	unsigned char *p = buf;
	uint32_t id = m->next_id++;

	FUZZ_CHECK(m->nheld + m->dropped < m->capacity,
		   "%s: a buffer beyond capacity %zu (%zu held, %zu dropped)",
		   op, m->capacity, m->nheld, m->dropped);
	FUZZ_CHECK(!is_held(m, p, NULL), "%s: %p handed out twice", op, buf);
	FUZZ_CHECK(((uintptr_t)p & (m->align - 1)) == 0,
		   "%s: %p not aligned to %zu", op, buf, m->align);
	for (size_t i = 0; i < m->usable; i++)
		p[i] = pattern(id, i);
	forget_gone(m, p);
	m->held[m->nheld].p = p;
	m->held[m->nheld].id = id;
	m->nheld++;
}

/* Held buffer i leaves the application (free or retire): what it wrote
 * is still there (no other holder, nothing of the pool's inside). */
static unsigned char *
give(struct model *m, size_t i, const char *op)
{
	struct held h = m->held[i];

	for (size_t k = 0; k < m->usable; k++)
		FUZZ_CHECK(h.p[k] == pattern(h.id, k),
			   "%s: %p byte %zu changed while held: another "
			   "holder or the pool wrote it",
			   op, (void *)h.p, k);
	m->held[i] = m->held[--m->nheld];
	return h.p;
}

/* Whether the pool may be out of buffers now: with one thread, only when
 * held, dropped and not-yet-reclaimed retired buffers cover it. */
static bool
may_be_dry(const struct model *m, size_t want)
{
	return m->nheld + m->dropped + m->retired_now + want > m->capacity;
}

static bool
must_be_dry(const struct model *m, size_t want)
{
	return m->nheld + m->dropped + want > m->capacity;
}

static void
check_stats(struct model *m, const char *after)
{
	cbm_stats st;
	size_t out = m->nheld + m->dropped;

	FUZZ_CHECK(cbm_pool_stats(m->pool, &st) == 0, "stats failed");
	FUZZ_CHECK(st.max_capacity == m->capacity && st.capacity >= m->grown &&
			   st.capacity <= m->capacity &&
			   st.capacity == cbm_capacity(m->pool) &&
			   st.block_size == m->usable,
		   "%s: stats capacity %zu (was %zu) of at most %zu (model "
		   "%zu), block %zu",
		   after, st.capacity, m->grown, st.max_capacity, m->capacity,
		   st.block_size);
	m->grown = st.capacity;
	FUZZ_CHECK(st.in_use == out, "%s: in_use %zu, the model holds %zu",
		   after, st.in_use, out);
	FUZZ_CHECK(st.grows <= st.capacity, "%s: %llu grows to %zu buffers",
		   after, (unsigned long long)st.grows, st.capacity);
	FUZZ_CHECK(st.free + st.cached + st.retired + st.in_use == st.capacity,
		   "%s: free %zu + cached %zu + retired %zu + in_use %zu != "
		   "capacity %zu",
		   after, st.free, st.cached, st.retired, st.in_use,
		   st.capacity);
	FUZZ_CHECK(st.retires == m->retires &&
			   st.retired + st.reclaimed == m->retires,
		   "%s: retires %llu, retired %zu + reclaimed %llu, the model "
		   "retired %llu",
		   after, (unsigned long long)st.retires, st.retired,
		   (unsigned long long)st.reclaimed,
		   (unsigned long long)m->retires);
	FUZZ_CHECK(st.retired <= m->retired_now,
		   "%s: %zu retired, %zu since the last barrier", after,
		   st.retired, m->retired_now);
	FUZZ_CHECK(st.allocs == st.frees + st.retires + st.in_use,
		   "%s: allocs %llu != frees %llu + retires %llu + in_use %zu",
		   after, (unsigned long long)st.allocs,
		   (unsigned long long)st.frees, (unsigned long long)st.retires,
		   st.in_use);
	FUZZ_CHECK(st.alloc_failures == m->failures,
		   "%s: alloc_failures %llu, the model saw %llu", after,
		   (unsigned long long)st.alloc_failures,
		   (unsigned long long)m->failures);
	FUZZ_CHECK(st.grace_periods <= st.reclaimed,
		   "%s: %llu grace periods for %llu reclaimed", after,
		   (unsigned long long)st.grace_periods,
		   (unsigned long long)st.reclaimed);
}

/* ---- configurations ----------------------------------------------------- */

static size_t
pick_size(struct fuzz_bytes *b)
{
	switch (fuzz_u8(b) % 8) {
	case 0:
		return 0;
	case 1:
		return SIZE_MAX - fuzz_u8(b);
	case 2:
		return (size_t)1 << (fuzz_u8(b) % 64);
	default:
		return 1 + fuzz_u16(b) % 2048;
	}
}

static size_t
pick_capacity(struct fuzz_bytes *b)
{
	switch (fuzz_u8(b) % 10) {
	case 0:
		return 0;
	case 1:
		return 0xffffffffu - fuzz_u8(b) % 2; /* 2^32-1 refused */
	case 2:
		return SIZE_MAX / (1 + fuzz_u8(b));
	case 3:
		return 1 + fuzz_u16(b) % 4096;
	default:
		return 1 + fuzz_u8(b) % 160;
	}
}

static size_t
pick_align(struct fuzz_bytes *b)
{
	switch (fuzz_u8(b) % 6) {
	case 0:
		return 0;
	case 1:
		return fuzz_u16(b); /* often not a power of two */
	case 2:
		return (size_t)1 << (fuzz_u8(b) % 40);
	default:
		return (size_t)1 << (fuzz_u8(b) % 13);
	}
}

static void
pick_config(struct fuzz_bytes *b, cbm_pool_config *cfg, char *name,
	    size_t name_len)
{
	uint8_t f;

	memset(cfg, 0, sizeof(*cfg));
	cfg->block_size = pick_size(b);
	cfg->capacity = pick_capacity(b);
	cfg->align = pick_align(b);
	switch (fuzz_u8(b) % 5) {
	case 0:
		cfg->magazine_size = 4097 + fuzz_u8(b);
		break;
	case 1:
		cfg->magazine_size = fuzz_u16(b) % 4097;
		break;
	default:
		cfg->magazine_size = fuzz_u8(b) % 40;
	}
	f = fuzz_u8(b);
	cfg->flags = f & (CBM_POOL_DEBUG | CBM_POOL_HUGEPAGES);
	if (f & 0x40)
		cfg->flags |= CBM_POOL_EXACT_STRIDE;
	/* The model only ever gives back in bulk what it holds, which a pool
	 * that trusts its bulk frees takes as any pool does. */
	if (f & 0x20)
		cfg->flags |= CBM_POOL_TRUST_BULK_FREES;
	if (f & 0x80) {
		/* An unknown flag: bits 2 to 31 but the known bits 8 and 9. */
		unsigned bit = 2 + f % 28;

		cfg->flags |= 1u << (bit >= 8 ? bit + 2 : bit);
	}
	switch (fuzz_u8(b) % 6) {
	case 0:
		cfg->idle_trim_ms = 1 + fuzz_u8(b) % 9; /* below 10: refused */
		break;
	case 1:
		cfg->idle_trim_ms = CBM_IDLE_TRIM_OFF;
		break;
	case 2:
		cfg->idle_trim_ms = 10 + fuzz_u8(b);
		break;
	default:
		cfg->idle_trim_ms = 0;
	}
	switch (fuzz_u8(b) % 8) {
	case 0:
		cfg->max_capacity = cfg->capacity + fuzz_u8(b);
		break;
	case 1:
		cfg->max_capacity = cfg->capacity + fuzz_u16(b) % 4096;
		break;
	case 2:
		cfg->max_capacity = fuzz_u8(b); /* maybe below capacity */
		break;
	case 3:
		cfg->max_capacity = 0xffffffffu - fuzz_u8(b) % 2;
		break;
	default:
		cfg->max_capacity = 0; /* fixed */
	}
	switch (fuzz_u8(b) % 6) {
	case 0:
		cfg->release_ms = 1 + fuzz_u8(b) % 9; /* below 10: refused */
		break;
	case 1:
		cfg->release_ms = CBM_RELEASE_OFF;
		break;
	case 2:
		cfg->release_ms = 10 + fuzz_u8(b) % 40;
		break;
	default:
		cfg->release_ms = 0;
	}
	if (fuzz_u8(b) & 1) {
		size_t n = fuzz_u8(b) % name_len;

		for (size_t i = 0; i < n; i++)
			name[i] = (char)(1 + fuzz_u8(b) % 255);
		name[n] = '\0';
		cfg->name = name;
	}
}

/* What cbm_pool_create must return for cfg, per cbm.h: a set of allowed
 * results (a configuration may be wrong in two ways). *bytes is the arena
 * its ceiling would take (before a debug pool's guard zones), SIZE_MAX
 * when that overflows. */
enum { ALLOW_OK = 1, ALLOW_EINVAL = 2, ALLOW_EOVERFLOW = 4, ALLOW_ENOMEM = 8 };

static unsigned
expected_create(const cbm_pool_config *cfg, size_t *bytes)
{
	size_t align = cfg->align ? cfg->align : 64, stride;
	size_t ceiling = cfg->max_capacity ? cfg->max_capacity : cfg->capacity;
	unsigned bad = 0;

	*bytes = SIZE_MAX;
	if (cfg->block_size == 0 || ceiling == 0 ||
	    (cfg->max_capacity != 0 && cfg->max_capacity < cfg->capacity) ||
	    (align & (align - 1)) != 0 || align > ((size_t)1 << 30) ||
	    cfg->magazine_size > 4096 ||
	    (cfg->flags &
	     ~(unsigned)(CBM_POOL_DEBUG | CBM_POOL_HUGEPAGES |
			 CBM_POOL_EXACT_STRIDE | CBM_POOL_TRUST_BULK_FREES)) ||
	    (cfg->idle_trim_ms != 0 && cfg->idle_trim_ms < 10) ||
	    (cfg->release_ms != 0 && cfg->release_ms < 10))
		bad |= ALLOW_EINVAL;
	if (cfg->capacity >= 0xffffffffu || cfg->max_capacity >= 0xffffffffu)
		return bad | ALLOW_EOVERFLOW;
	if (bad & ALLOW_EINVAL)
		return bad;
	if (cfg->block_size > SIZE_MAX - (align - 1))
		return bad | ALLOW_EOVERFLOW;
	stride = (cfg->block_size + align - 1) & ~(align - 1);
	if (ceiling > SIZE_MAX / stride)
		return bad | ALLOW_EOVERFLOW;
	*bytes = ceiling * stride;
	if (bad)
		return bad;
	/* A debug pool's guard zone may be what overflows; any pool may not
	 * find the memory. */
	return ALLOW_OK | ALLOW_ENOMEM |
	       ((cfg->flags & CBM_POOL_DEBUG) ? ALLOW_EOVERFLOW : 0);
}

static unsigned
result_bit(int rc)
{
	switch (rc) {
	case 0:
		return ALLOW_OK;
	case -EINVAL:
		return ALLOW_EINVAL;
	case -EOVERFLOW:
		return ALLOW_EOVERFLOW;
	case -ENOMEM:
		return ALLOW_ENOMEM;
	default:
		return 0;
	}
}

/* ---- the calls ---------------------------------------------------------- */

static void
do_alloc(struct model *m)
{
	void *p;

	errno = 0;
	p = cbm_alloc(m->pool);
	expect_quiet("alloc");
	if (p != NULL) {
		take(m, p, "alloc");
		return;
	}
	FUZZ_CHECK(errno == ENOMEM, "alloc: NULL with errno %d", errno);
	FUZZ_CHECK(may_be_dry(m, 1),
		   "alloc: NULL with %zu of %zu held, %zu dropped, %zu retired",
		   m->nheld, m->capacity, m->dropped, m->retired_now);
	m->failures++;
}

static void
do_alloc_bulk(struct model *m, size_t n)
{
	void *bufs[MAX_BULK];
	int rc = cbm_alloc_bulk(m->pool, bufs, n);

	expect_quiet("alloc_bulk");
	if (rc == 0) {
		FUZZ_CHECK(!must_be_dry(m, n),
			   "alloc_bulk: %zu taken with %zu of %zu held", n,
			   m->nheld, m->capacity);
		for (size_t i = 0; i < n; i++)
			take(m, bufs[i], "alloc_bulk");
		return;
	}
	FUZZ_CHECK(rc == -ENOMEM, "alloc_bulk(%zu): %d", n, rc);
	FUZZ_CHECK(n > 0 && may_be_dry(m, n),
		   "alloc_bulk(%zu): -ENOMEM with %zu of %zu held, %zu "
		   "dropped, %zu retired",
		   n, m->nheld, m->capacity, m->dropped, m->retired_now);
	m->failures++;
}

static void
do_free(struct model *m, uint8_t which)
{
	unsigned char *p;

	if (m->nheld == 0) {
		cbm_free(m->pool, NULL); /* a no-op */
		expect_quiet("free(NULL)");
		return;
	}
	p = give(m, which % m->nheld, "free");
	cbm_free(m->pool, p);
	expect_quiet("free");
	remember_gone(m, p);
}

static void
do_free_bulk(struct model *m, struct fuzz_bytes *b)
{
	void *bufs[2 * MAX_BULK];
	size_t n = 0, k = m->nheld ? fuzz_u8(b) % (m->nheld + 1) : 0;

	if (k > MAX_BULK)
		k = MAX_BULK;
	for (size_t i = 0; i < k; i++) {
		if (fuzz_u8(b) % 8 == 0)
			bufs[n++] = NULL; /* skipped */
		bufs[n++] = give(m, fuzz_u8(b) % m->nheld, "free_bulk");
	}
	cbm_free_bulk(m->pool, bufs, n);
	expect_quiet("free_bulk");
	for (size_t i = 0; i < n; i++)
		if (bufs[i])
			remember_gone(m, bufs[i]);
}

static void
do_retire(struct model *m, uint8_t which)
{
	unsigned char *p;

	if (m->nheld == 0)
		return;
	p = give(m, which % m->nheld, "retire");
	cbm_retire(m->pool, p);
	expect_quiet("retire");
	m->retired_now++;
	m->retires++;
	remember_gone(m, p);
}

static void
do_barrier(struct model *m)
{
	cbm_stats st;

	if (m->barriers >= MAX_BARRIERS)
		return; /* each waits for a grace period: keep runs fast */
	m->barriers++;
	cbm_barrier(m->pool);
	expect_quiet("barrier");
	m->retired_now = 0;
	FUZZ_CHECK(cbm_pool_stats(m->pool, &st) == 0 && st.retired == 0,
		   "barrier: %zu still retired", st.retired);
	check_stats(m, "barrier");
}

static void
do_trim(struct model *m)
{
	cbm_stats st;
	int moved = cbm_pool_trim(m->pool);

	expect_quiet("trim");
	FUZZ_CHECK(moved >= 0, "trim: %d", moved);
	FUZZ_CHECK(cbm_pool_stats(m->pool, &st) == 0 && st.cached == 0,
		   "trim: %zu still cached with one thread", st.cached);
	check_stats(m, "trim");
}

static void
do_release(struct model *m)
{
	long given = cbm_pool_release(m->pool);

	expect_quiet("release");
	FUZZ_CHECK(given >= 0, "release: %ld", given);
	check_stats(m, "release");
}

static void
do_verify(struct model *m)
{
	int rc = cbm_pool_verify(m->pool);

	FUZZ_CHECK(rc == 0, "verify: %d", rc);
	expect_quiet("verify");
}

/* Each misuse: reported once, with its code, and the model unchanged
 * except where cbm.h says (a buffer overrun is dropped). */
static void
do_misuse(struct model *m, struct fuzz_bytes *b)
{
	static unsigned char elsewhere[64];
	uint8_t kind = fuzz_u8(b) % 10;
	cbm_stats st;
	void *one[1];
	size_t i;

	switch (kind) {
	case 0: /* not this pool's memory */
		cbm_free(m->pool, elsewhere + fuzz_u8(b) % 64);
		expect_report(CBM_ERR_FOREIGN, "free(foreign)");
		break;
	case 1:
		cbm_retire(m->pool, elsewhere);
		expect_report(CBM_ERR_FOREIGN, "retire(foreign)");
		break;
	case 2: /* inside a held buffer, not at its start */
		if (m->nheld == 0 || m->usable < 2)
			break;
		i = fuzz_u8(b) % m->nheld;
		cbm_free(m->pool,
			 m->held[i].p + 1 + fuzz_u16(b) % (m->usable - 1));
		expect_report(CBM_ERR_MISALIGNED, "free(interior)");
		break;
	case 3: /* a debug pool: a buffer the application gave back */
		if (!m->debug || m->ngone == 0)
			break;
		i = fuzz_u8(b) % m->ngone;
		FUZZ_CHECK(!is_held(m, m->gone[i], NULL),
			   "model: gone and held");
		if (fuzz_u8(b) & 1)
			cbm_free(m->pool, m->gone[i]);
		else
			cbm_retire(m->pool, m->gone[i]);
		expect_report(CBM_ERR_DOUBLE_FREE, "double free");
		break;
	case 4: /* a debug pool: a write past the end, then the free */
		if (!m->debug || m->nheld == 0)
			break;
		i = fuzz_u8(b) % m->nheld;
		m->held[i].p[m->usable] ^= 0x5a;
		{
			unsigned char *p = give(m, i, "overrun");

			cbm_free(m->pool, p);
			expect_report(CBM_ERR_OVERFLOW, "free(overrun)");
			m->dropped++; /* never reused, still out */
		}
		break;
	case 5:
		errno = 0;
		FUZZ_CHECK(cbm_alloc(NULL) == NULL && errno == EINVAL,
			   "alloc(NULL pool)");
		expect_report(CBM_ERR_BAD_ARG, "alloc(NULL pool)");
		break;
	case 6:
		cbm_free(NULL, m->nheld ? m->held[0].p : elsewhere);
		expect_report(CBM_ERR_BAD_ARG, "free(NULL pool)");
		break;
	case 7:
		FUZZ_CHECK(cbm_alloc_bulk(m->pool, NULL, 1 + fuzz_u8(b)) ==
				   -EINVAL,
			   "alloc_bulk(NULL array)");
		expect_report(CBM_ERR_BAD_ARG, "alloc_bulk(NULL array)");
		cbm_free_bulk(m->pool, NULL, 1);
		expect_report(CBM_ERR_BAD_ARG, "free_bulk(NULL array)");
		FUZZ_CHECK(cbm_alloc_bulk(NULL, one, 1) == -EINVAL,
			   "alloc_bulk(NULL pool)");
		expect_report(CBM_ERR_BAD_ARG, "alloc_bulk(NULL pool)");
		break;
	case 8:
		FUZZ_CHECK(cbm_pool_stats(NULL, &st) == -EINVAL, "stats(NULL)");
		expect_report(CBM_ERR_BAD_ARG, "stats(NULL)");
		FUZZ_CHECK(cbm_pool_stats(m->pool, NULL) == -EINVAL,
			   "stats(NULL out)");
		expect_report(CBM_ERR_BAD_ARG, "stats(NULL out)");
		FUZZ_CHECK(cbm_pool_trim(NULL) == -EINVAL, "trim(NULL)");
		expect_report(CBM_ERR_BAD_ARG, "trim(NULL)");
		FUZZ_CHECK(cbm_pool_verify(NULL) == -EINVAL, "verify(NULL)");
		expect_report(CBM_ERR_BAD_ARG, "verify(NULL)");
		FUZZ_CHECK(cbm_pool_release(NULL) == -EINVAL, "release(NULL)");
		expect_report(CBM_ERR_BAD_ARG, "release(NULL)");
		break;
	default:
		cbm_retire(NULL, elsewhere);
		expect_report(CBM_ERR_BAD_ARG, "retire(NULL pool)");
		FUZZ_CHECK(cbm_block_size(NULL) == 0 &&
				   cbm_capacity(NULL) == 0 &&
				   cbm_max_capacity(NULL) == 0,
			   "queries of a NULL pool");
		expect_quiet("queries of a NULL pool");
		break;
	}
}

/* ---- the program -------------------------------------------------------- */

static struct model model;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_bytes b = {data, size};
	struct model *m = &model;
	cbm_pool_config cfg;
	char name[24];
	size_t bytes;
	unsigned allowed;
	int rc;

	cbm_set_error_handler(record, NULL);
	reports = 0;
	pick_config(&b, &cfg, name, sizeof(name));
	allowed = expected_create(&cfg, &bytes);
	/* A valid pool too large to be quick: not tried. */
	if ((allowed & ALLOW_OK) && bytes > MAX_ARENA)
		return 0;
	memset(m, 0, sizeof(*m));
	rc = cbm_pool_create(&cfg, &m->pool);
	expect_quiet("create");
	FUZZ_CHECK(result_bit(rc) & allowed,
		   "create(block %zu, capacity %zu, align %zu, magazine %u, "
		   "flags %#x, idle_trim %u): %d, allowed set %#x",
		   cfg.block_size, cfg.capacity, cfg.align, cfg.magazine_size,
		   cfg.flags, cfg.idle_trim_ms, rc, allowed);
	if (rc != 0)
		return 0;
	m->capacity = cbm_max_capacity(m->pool);
	m->grown = cbm_capacity(m->pool);
	m->usable = cbm_block_size(m->pool);
	m->align = cfg.align ? cfg.align : 64;
	m->debug = (cfg.flags & CBM_POOL_DEBUG) != 0;
	FUZZ_CHECK(m->grown == cfg.capacity &&
			   m->capacity == (cfg.max_capacity ? cfg.max_capacity
							    : cfg.capacity),
		   "capacity %zu and ceiling %zu, asked %zu and %zu", m->grown,
		   m->capacity, cfg.capacity, cfg.max_capacity);
	FUZZ_CHECK(m->usable >= cfg.block_size && m->usable % m->align == 0 &&
			   m->usable - cfg.block_size < m->align,
		   "block_size %zu for %zu aligned %zu", m->usable,
		   cfg.block_size, m->align);
	FUZZ_CHECK(strcmp(cbm_pool_name(m->pool),
			  cfg.name ? cfg.name : "(unnamed)") == 0 ||
			   (cfg.name && cfg.name[0] == '\0'),
		   "name '%s'", cbm_pool_name(m->pool));

	for (unsigned op = 0; op < MAX_OPS && b.n > 0; op++) {
		uint8_t c = fuzz_u8(&b);

		switch (c % 16) {
		case 0:
		case 1:
		case 2:
		case 3:
			if (m->nheld < MAX_HELD)
				do_alloc(m);
			break;
		case 4:
		case 5:
			do_free(m, fuzz_u8(&b));
			break;
		case 6:
			if (m->nheld + MAX_BULK <= MAX_HELD)
				do_alloc_bulk(m, fuzz_u8(&b) % MAX_BULK);
			break;
		case 7:
			do_free_bulk(m, &b);
			break;
		case 8:
			do_retire(m, fuzz_u8(&b));
			break;
		case 9:
			do_barrier(m);
			break;
		case 10:
			do_trim(m);
			break;
		case 11:
			check_stats(m, "stats");
			break;
		case 12:
			if (fuzz_u8(&b) & 1)
				do_verify(m);
			else
				do_release(m);
			break;
		default:
			do_misuse(m, &b);
			break;
		}
	}

	/* The end: give everything back or leave some out for destroy. */
	if (fuzz_u8(&b) & 1)
		while (m->nheld > 0)
			do_free(m, 0);
	check_stats(m, "end");
	do_verify(m);
	cbm_pool_destroy(m->pool);
	if (m->nheld + m->dropped > 0)
		expect_report(CBM_ERR_LEAK, "destroy with buffers out");
	else
		expect_quiet("destroy");
	return 0;
}
