/* SPDX-License-Identifier: MIT */
/*
 * The error handler (report.h).
 *
 * The handler and its argument are one pair, set and read under a mutex so
 * that a report never pairs a new handler with an old argument; it is called
 * after the mutex is dropped, so a handler may itself call into the library.
 */
#include "report.h"

#include "cbm.h"
#include "contract.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t handler_mutex = PTHREAD_MUTEX_INITIALIZER;
static cbm_error_fn handler_fn;
static void *handler_arg;

static const char *
error_name(int err)
{
	switch (err) {
	case CBM_ERR_FOREIGN:
		return "foreign pointer";
	case CBM_ERR_MISALIGNED:
		return "pointer inside a buffer";
	case CBM_ERR_DOUBLE_FREE:
		return "double free";
	case CBM_ERR_OVERFLOW:
		return "buffer overflow";
	case CBM_ERR_LEAK:
		return "leak";
	case CBM_ERR_BAD_ARG:
		return "bad argument";
	case CBM_ERR_CORRUPT:
		return "pool corrupted";
	default:
		return "error";
	}
}

static void
default_handler(void *arg, const cbm_pool *pool, int err, const void *ptr,
		const char *what)
{
	(void)arg;
	fprintf(stderr, "cbm: pool '%s': %s at %p: %s\n",
		pool ? cbm_pool_name(pool) : "(none)", error_name(err), ptr,
		what);
	if (err != CBM_ERR_LEAK)
		abort();
}

void
cbm_set_error_handler(cbm_error_fn fn, void *arg)
{
	pthread_mutex_lock(&handler_mutex);
	handler_fn = fn;
	handler_arg = fn ? arg : NULL;
	pthread_mutex_unlock(&handler_mutex);
}

void
cbm_report(const struct cbm_pool *pool, int err, const void *ptr,
	   const char *fmt, ...)
{
	char line[256], *what = line, *big = NULL;
	cbm_error_fn fn;
	void *arg;
	va_list ap;
	int len;

	CBM_ASSERT_NO_CACHE_HELD(); /* P4: the handler may do anything */
	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A leak report names many buffers; without memory for it, its
	 * first line will do. */
	if (len >= (int)sizeof(line) && (big = malloc((size_t)len + 1))) {
		va_start(ap, fmt);
		vsnprintf(big, (size_t)len + 1, fmt, ap);
		va_end(ap);
		what = big;
	}
	pthread_mutex_lock(&handler_mutex);
	fn = handler_fn ? handler_fn : default_handler;
	arg = handler_arg;
	pthread_mutex_unlock(&handler_mutex);
	fn(arg, pool, err, ptr, what);
	free(big);
}

#ifdef CBM_ASSERTS
_Thread_local int cbm_witness_caches;

void
cbm_assert_failed(const char *what, const char *file, int line)
{
	fprintf(stderr, "cbm: assertion failed: %s (%s:%d)\n", what, file,
		line);
	abort();
}
#endif

void
cbm_report_fork_prepare(void)
{
	pthread_mutex_lock(&handler_mutex);
}

void
cbm_report_fork_parent(void)
{
	pthread_mutex_unlock(&handler_mutex);
}

void
cbm_report_fork_child(void)
{
	pthread_mutex_init(&handler_mutex, NULL);
}
