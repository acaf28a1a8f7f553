/* SPDX-License-Identifier: MIT */
/*
 * Debug pools' buffer states and guard zones (debug.h).
 */
#include "debug.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbm.h"
#include "plant.h"
#include "report.h"

#define GUARD_BYTE 0xcb

static const char *
state_name(uint8_t s)
{
	switch (s) {
	case CBM_BLOCK_POOLED:
		return "free";
	case CBM_BLOCK_HELD:
		return "held";
	case CBM_BLOCK_RETIRED:
		return "retired";
	default:
		return "dropped as damaged";
	}
}

static unsigned char *
guard_of(const struct cbm_debug *d, uint32_t idx, size_t *len)
{
	*len = d->blocks->stride - d->block_size;
	return (unsigned char *)cbm_blocks_ptr(d->blocks, idx) + d->block_size;
}

unsigned
cbm_debug_env(void)
{
	static atomic_flag warned = ATOMIC_FLAG_INIT;
	const char *v = getenv("CBM_DEBUG");

	if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0)
		return 0;
	if (strcmp(v, "backtrace") == 0)
		return CBM_DEBUG_BACKTRACE;
	if (strcmp(v, "1") != 0 &&
	    !atomic_flag_test_and_set_explicit(&warned, memory_order_relaxed))
		fprintf(stderr,
			"cbm: CBM_DEBUG='%s' is not 0, 1 or backtrace; "
			"taken as 1 (debug pools)\n",
			v);
	return 1;
}

int
cbm_debug_keep_sites(struct cbm_debug *d, uint64_t max, unsigned depth)
{
	d->depth = depth > 0 ? depth : 1;
	d->sites = cbm_reserve(max * d->depth * sizeof(*d->sites));
	return d->sites != NULL ? 0 : -ENOMEM;
}

void
cbm_debug_drop_sites(struct cbm_debug *d, uint64_t max)
{
	if (d->sites != NULL)
		cbm_unreserve(d->sites, max * d->depth * sizeof(*d->sites));
	d->sites = NULL;
}

/* Keep where buffer idx goes: the application's call, and with backtraces
 * the frames below it. backtrace() starts in this function and walks up
 * through the library's own frames; they are left out by starting from the
 * caller's frame, found by its address. */
static void
keep_site(const struct cbm_debug *d, uint32_t idx, void *caller)
{
	void **site = &d->sites[(size_t)idx * d->depth];
	void *frames[CBM_DEBUG_BACKTRACE + 8];
	int n, from = 0;
	unsigned k = 1;

	site[0] = caller;
	if (d->depth == 1)
		return;
	n = backtrace(frames, (int)(sizeof(frames) / sizeof(frames[0])));
	while (from < n && frames[from] != caller)
		from++;
	for (int i = from + 1; i < n && k < d->depth; i++)
		site[k++] = frames[i];
	if (k < d->depth)
		site[k] = NULL;
}

/* " ADDR (OBJECT+OFFSET)": what addr2line -e OBJECT OFFSET resolves. */
static int
describe_address(char *out, size_t n, const void *addr)
{
	Dl_info info;

	if (dladdr(addr, &info) != 0 && info.dli_fname != NULL) {
		const char *name = strrchr(info.dli_fname, '/');

		return snprintf(out, n, "%p (%s+0x%tx)", addr,
				name ? name + 1 : info.dli_fname,
				(const char *)addr -
					(const char *)info.dli_fbase);
	}
	return snprintf(out, n, "%p", addr);
}

void
cbm_debug_describe_site(const struct cbm_debug *d, uint32_t idx, char *out,
			size_t n)
{
	void *const *site = &d->sites[(size_t)idx * d->depth];
	size_t used;
	int w;

	if (n == 0)
		return;
	out[0] = '\0';
	if (site[0] == NULL)
		return;
	w = snprintf(out, n, " allocated at ");
	used = w > 0 ? (size_t)w : 0;
	for (unsigned k = 0; k < d->depth && site[k] != NULL && used < n; k++) {
		if (k > 0) {
			w = snprintf(out + used, n - used, " <- ");
			used += w > 0 ? (size_t)w : 0;
			if (used >= n)
				break;
		}
		w = describe_address(out + used, n - used, site[k]);
		used += w > 0 ? (size_t)w : 0;
	}
}

bool
cbm_debug_on_alloc(const struct cbm_debug *d, uint32_t idx, void *caller)
{
	uint8_t expected = CBM_BLOCK_POOLED;
	size_t len;
	unsigned char *guard;

	if (!cbm_cas_strong_relaxed_u8(&d->state[idx], &expected,
				       CBM_BLOCK_HELD)) {
		cbm_report(d->owner, CBM_ERR_CORRUPT,
			   cbm_blocks_ptr(d->blocks, idx),
			   "alloc: buffer %" PRIu32
			   " handed out while %s: the pool's state is broken",
			   idx, state_name(expected));
		return false;
	}
	guard = guard_of(d, idx, &len);
	memset(guard, GUARD_BYTE, len);
	keep_site(d, idx, caller);
	return true;
}

/* How far past the end of its buffer a guard zone was written: the last
 * damaged byte, counted from the end, or 0. A write may have gone on past
 * the guard zone (into the next buffer): then this is a lower bound. */
static size_t
overrun(const unsigned char *guard, size_t len)
{
	while (len > 0 && guard[len - 1] == GUARD_BYTE)
		len--;
	return len;
}

bool
cbm_debug_on_release(const struct cbm_debug *d, uint32_t idx,
		     enum cbm_block_state to, const char *op)
{
	uint8_t expected = CBM_BLOCK_HELD;
	size_t len, past;
	unsigned char *guard;

	if (CBM_PLANTED(CBM_PLANT_NO_DEBUG_STATE))
		expected = cbm_load_relaxed_u8(&d->state[idx]);
	if (!cbm_cas_strong_relaxed_u8(&d->state[idx], &expected, to)) {
		cbm_report(d->owner, CBM_ERR_DOUBLE_FREE,
			   cbm_blocks_ptr(d->blocks, idx),
			   "%s: buffer %" PRIu32 " is %s, not held", op, idx,
			   state_name(expected));
		return false;
	}
	guard = guard_of(d, idx, &len);
	past = overrun(guard, len);
	if (past > 0) {
		cbm_store_relaxed_u8(&d->state[idx], CBM_BLOCK_DROPPED);
		cbm_report(d->owner, CBM_ERR_OVERFLOW,
			   cbm_blocks_ptr(d->blocks, idx),
			   "%s: buffer %" PRIu32
			   " (%zu bytes) was written %s%zu "
			   "bytes past its end; dropped",
			   op, idx, d->block_size,
			   past == len ? "at least " : "", past);
		return false;
	}
	return true;
}

bool
cbm_debug_on_reclaim(const struct cbm_debug *d, uint32_t idx)
{
	uint8_t expected = CBM_BLOCK_RETIRED;

	if (cbm_cas_strong_relaxed_u8(&d->state[idx], &expected,
				      CBM_BLOCK_POOLED))
		return true;
	cbm_report(d->owner, CBM_ERR_CORRUPT, cbm_blocks_ptr(d->blocks, idx),
		   "reclaim: retired buffer %" PRIu32 " is %s", idx,
		   state_name(expected));
	return false;
}
