/* SPDX-License-Identifier: MIT */
/* Statistics: counters summed over CPUs, and gauges read from the tiers. */
#ifndef CBM_STATS_H
#define CBM_STATS_H

#include <stdint.h>

struct cbm_pool;

/* Buffers handed out minus buffers given back, from the counters alone. */
uint64_t cbm_stats_held(const struct cbm_pool *pool);

#endif /* CBM_STATS_H */
