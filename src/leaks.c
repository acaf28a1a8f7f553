/* SPDX-License-Identifier: MIT */
/*
 * The leak report (leaks.h). Which buffers are held: in a debug pool, those
 * whose state says so; in any other pool, those found in no place of the
 * pool by the same walk as cbm_pool_verify's (verify.h). Both need a
 * quiescent pool, which destroy has.
 */
#include "leaks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "pool.h"
#include "report.h"
#include "verify.h"

/* An entry: "\n  0x... (buffer N) allocated at ..." with a backtrace of
 * CBM_DEBUG_BACKTRACE frames of about 40 bytes each. */
#define ENTRY_MAX (64 + 48 * CBM_DEBUG_BACKTRACE)

/* held[i] nonzero for each held buffer; false if they cannot be told. */
static bool
find_held(const struct cbm_pool *pool, uint64_t cap, uint8_t *held)
{
	if (pool->debug.state != NULL) {
		for (uint64_t i = 0; i < cap; i++)
			held[i] = cbm_load_relaxed_u8(&pool->debug.state[i]) ==
				  CBM_BLOCK_HELD;
		return true;
	}
	if (cbm_verify_places(pool, held) != 0)
		return false;
	for (uint64_t i = 0; i < cap; i++)
		held[i] = !held[i];
	return true;
}

void
cbm_report_leaks(const struct cbm_pool *pool, size_t held)
{
	size_t room = CBM_LEAKS_NAMED * ENTRY_MAX + 128, used;
	uint64_t cap = cbm_pool_capacity(pool); /* buffers that exist */
	char *text = malloc(room);
	uint8_t *is_held = calloc(cap + 1, 1);
	unsigned named = 0;
	int w;

	if (text == NULL || is_held == NULL || !find_held(pool, cap, is_held)) {
		/* The count, at least. */
		cbm_report(pool, CBM_ERR_LEAK, NULL,
			   "destroy: %zu of %" PRIu64 " buffers still held",
			   held, cap);
		free(text);
		free(is_held);
		return;
	}
	w = snprintf(text, room,
		     "destroy: %zu of %" PRIu64 " buffers still held:", held,
		     cap);
	used = (size_t)w;
	for (uint64_t i = 0; i < cap && named < CBM_LEAKS_NAMED; i++) {
		char site[ENTRY_MAX];

		if (!is_held[i])
			continue;
		site[0] = '\0';
		if (pool->debug.state != NULL)
			cbm_debug_describe_site(&pool->debug, (uint32_t)i, site,
						sizeof(site));
		w = snprintf(text + used, room - used,
			     "\n  %p (buffer %" PRIu64 ")%s",
			     cbm_block_ptr(pool, (uint32_t)i), i, site);
		if (w < 0 || (size_t)w >= room - used)
			break;
		used += (size_t)w;
		named++;
	}
	if (held > named)
		snprintf(text + used, room - used, "\n  and %zu more",
			 held - named);
	cbm_report(pool, CBM_ERR_LEAK, NULL, "%s", text);
	free(text);
	free(is_held);
}
