/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the buffers' statistics in the Prometheus text format, as
 * a whole HTTP response, for the epoll and io_uring servers. A pool's are
 * cbm_pool_stats_print's "P"; a heap's are the same families, one sample
 * per class used, labelled with the class pool's name (pool="NAME/SIZE"),
 * and cbm_heap_bytes{pool="NAME"}, the bytes its ceiling bounds.
 */
#ifndef EXAMPLES_METRICS_H
#define EXAMPLES_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "bufs.h"

/*
 * Write a 200 response with b's statistics into dst (room bytes): the
 * head, and unless head_only the body. In malloc mode the body is one
 * comment line. Returns its length, or 0 when it does not fit in room
 * (even without the per-cache and HELP lines).
 */
size_t metrics_response(const struct bufs *b, bool head_only, char *dst,
			size_t room);

/*
 * The response in a buffer of b large enough for it (a first buffer, or
 * larger ones up to b->max_size), its length in *len. NULL with errno
 * ENOMEM when b has no buffer to give (answer 503), EMSGSIZE when it does
 * not fit the largest (500). Give the buffer back with bufs_put.
 */
char *metrics_build(struct bufs *b, bool head_only, size_t *len);

#endif /* EXAMPLES_METRICS_H */
