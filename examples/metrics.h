/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the pool's statistics in the Prometheus text format
 * (cbm_pool_stats_print's "P"), as a whole HTTP response, for both example
 * servers.
 */
#ifndef EXAMPLES_METRICS_H
#define EXAMPLES_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "bufs.h"

/*
 * Write a 200 response with b's statistics into dst (room bytes): the
 * head, and unless head_only the body. In malloc mode (no pool) the body is
 * one comment line. Returns its length, or 0 when it does not fit in room
 * (even without the per-cache lines).
 */
size_t metrics_response(const struct bufs *b, bool head_only, char *dst,
			size_t room);

#endif /* EXAMPLES_METRICS_H */
