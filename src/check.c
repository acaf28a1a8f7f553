/*
 * Misuse detection (check.h) and the error handler.
 *
 * The handler and its argument are one pair, set and read under a mutex so
 * that a report never pairs a new handler with an old argument; it is called
 * after the mutex is dropped, so a handler may itself call into the library.
 */
#include "check.h"

#include "plant.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_BYTE 0xcb

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
	char what[256];
	cbm_error_fn fn;
	void *arg;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&handler_mutex);
	fn = handler_fn ? handler_fn : default_handler;
	arg = handler_arg;
	pthread_mutex_unlock(&handler_mutex);
	fn(arg, pool, err, ptr, what);
}

uint32_t
cbm_block_reject(const struct cbm_pool *pool, const void *buf, const char *op)
{
	uintptr_t off = (uintptr_t)buf - (uintptr_t)pool->base;

	if (off >= pool->arena_bytes)
		cbm_report(pool, CBM_ERR_FOREIGN, buf,
			   "%s: not a buffer of this pool", op);
	else
		cbm_report(pool, CBM_ERR_MISALIGNED, buf,
			   "%s: %zu bytes into buffer %zu, not at its start",
			   op, (size_t)(off % pool->stride),
			   (size_t)(off / pool->stride));
	return CBM_NIL;
}

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
guard_of(const struct cbm_pool *pool, uint32_t idx, size_t *len)
{
	*len = pool->stride - pool->block_size;
	return (unsigned char *)cbm_block_ptr(pool, idx) + pool->block_size;
}

bool
cbm_debug_on_alloc(const struct cbm_pool *pool, uint32_t idx)
{
	uint8_t expected = CBM_BLOCK_POOLED;
	size_t len;
	unsigned char *guard;

	if (!cbm_cas_strong_relaxed_u8(&pool->state[idx], &expected,
				       CBM_BLOCK_HELD)) {
		cbm_report(pool, CBM_ERR_CORRUPT, cbm_block_ptr(pool, idx),
			   "alloc: buffer %" PRIu32
			   " handed out while %s: the pool's state is broken",
			   idx, state_name(expected));
		return false;
	}
	guard = guard_of(pool, idx, &len);
	memset(guard, GUARD_BYTE, len);
	return true;
}

bool
cbm_debug_on_release(const struct cbm_pool *pool, uint32_t idx,
		     enum cbm_block_state to, const char *op)
{
	uint8_t expected = CBM_BLOCK_HELD;
	size_t len;
	unsigned char *guard;

	if (CBM_PLANTED(CBM_PLANT_NO_DEBUG_STATE))
		expected = cbm_load_relaxed_u8(&pool->state[idx]);
	if (!cbm_cas_strong_relaxed_u8(&pool->state[idx], &expected, to)) {
		cbm_report(pool, CBM_ERR_DOUBLE_FREE, cbm_block_ptr(pool, idx),
			   "%s: buffer %" PRIu32 " is %s, not held", op, idx,
			   state_name(expected));
		return false;
	}
	guard = guard_of(pool, idx, &len);
	for (size_t i = 0; i < len; i++) {
		if (guard[i] != GUARD_BYTE) {
			cbm_store_relaxed_u8(&pool->state[idx],
					     CBM_BLOCK_DROPPED);
			cbm_report(pool, CBM_ERR_OVERFLOW,
				   cbm_block_ptr(pool, idx),
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
cbm_debug_on_reclaim(const struct cbm_pool *pool, uint32_t idx)
{
	uint8_t expected = CBM_BLOCK_RETIRED;

	if (cbm_cas_strong_relaxed_u8(&pool->state[idx], &expected,
				      CBM_BLOCK_POOLED))
		return true;
	cbm_report(pool, CBM_ERR_CORRUPT, cbm_block_ptr(pool, idx),
		   "reclaim: retired buffer %" PRIu32 " is %s", idx,
		   state_name(expected));
	return false;
}

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
