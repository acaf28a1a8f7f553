/* SPDX-License-Identifier: MIT */
/*
 * Debug pools' buffer states and guard zones (debug.h).
 */
#include "debug.h"

#include <inttypes.h>
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

bool
cbm_debug_on_alloc(const struct cbm_debug *d, uint32_t idx)
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
	return true;
}

bool
cbm_debug_on_release(const struct cbm_debug *d, uint32_t idx,
		     enum cbm_block_state to, const char *op)
{
	uint8_t expected = CBM_BLOCK_HELD;
	size_t len;
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
	for (size_t i = 0; i < len; i++) {
		if (guard[i] != GUARD_BYTE) {
			cbm_store_relaxed_u8(&d->state[idx], CBM_BLOCK_DROPPED);
			cbm_report(d->owner, CBM_ERR_OVERFLOW,
				   cbm_blocks_ptr(d->blocks, idx),
				   "%s: buffer %" PRIu32
				   " was written %zu bytes past its end; "
				   "dropped",
				   op, idx, i + 1);
			return false;
		}
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
