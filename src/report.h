/* SPDX-License-Identifier: MIT */
/*
 * Reporting programming errors to the application's error handler
 * (cbm_set_error_handler in cbm.h). Needs nothing of a pool but its
 * address, which the handler is given.
 */
#ifndef CBM_REPORT_H
#define CBM_REPORT_H

#include "compiler.h"

struct cbm_pool;

/* Report a programming error to the error handler. Never called with a
 * cache held (percpu.h, P4), nor within a move (transit.h). */
CBM_COLD void cbm_report(const struct cbm_pool *pool, int err, const void *ptr,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Hold the error handler's lock across fork (fork.c). */
void cbm_report_fork_prepare(void);
void cbm_report_fork_parent(void);
void cbm_report_fork_child(void);

#endif /* CBM_REPORT_H */
