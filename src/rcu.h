/* SPDX-License-Identifier: MIT */
/*
 * The library's side of RCU: the default flavor, grace periods as the
 * reclamation thread waits for them, and their model for ThreadSanitizer.
 *
 * liburcu 0.13 synchronizes with its own inline atomics, which TSan cannot
 * see, so under TSan a reader's last access to a retired buffer and the
 * next owner's first write look unordered. The model: every reader releases
 * one token address just before it leaves its read-side section
 * (cbm_read_unlock), and the reclamation thread acquires that address just
 * after a grace period ends. The grace period guarantees exactly this edge
 * (each section that could see the buffer ended before it returned), so
 * the annotation adds no order that does not exist. liburcu is called
 * through its shared library (no _LGPL_SOURCE), so that none of its inline
 * code lands in instrumented objects.
 *
 * Load-bearing: tests/test_reclaim's reader/retire case, built under TSan,
 * is clean; with the annotation planted out (CBM_PLANT=no-rcu-annotation,
 * plant.h) TSan reports the race on the buffer, and the test suite checks
 * that it does (tests/expect_tsan_race.sh).
 */
#ifndef CBM_RCU_H
#define CBM_RCU_H

struct rcu_flavor_struct;

#include "atomics.h"

/* Threads registered by cbm_read_lock and not yet unregistered. */
extern cbm_atomic_u32 cbm_rcu_registered_readers;

/* liburcu's memb flavor: the pools' default. */
const struct rcu_flavor_struct *cbm_rcu_default_flavor(void);

/* Wait for a grace period of flavor; then model it for TSan. */
void cbm_rcu_synchronize(const struct rcu_flavor_struct *flavor);

#endif /* CBM_RCU_H */
