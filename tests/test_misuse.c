/* SPDX-License-Identifier: MIT */
/*
 * Every bad input the library promises to catch: it gets a clear error, and
 * nothing is lost or corrupted (the pool verifies afterwards).
 */
/* This file misuses the API on purpose; gcc sees it too (cbm.h's
 * CBM_ALLOCATOR) and would stop the build. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wmismatched-dealloc"
#if __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
#endif

#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct recorded_errors rec;

static int
install(void **state)
{
	(void)state;
	recorder_install(&rec);
	return 0;
}

static int
remove_recorder(void **state)
{
	(void)state;
	recorder_remove(&rec);
	return 0;
}

static void
expect_create_fails(const cbm_pool_config *cfg, int err)
{
	cbm_pool *sentinel = (cbm_pool *)0x1;
	cbm_pool *pool = sentinel;

	assert_int_equal(cbm_pool_create(cfg, &pool), err);
	assert_ptr_equal(pool, sentinel); /* *out untouched on failure */
}

static void
bad_configs_are_refused(void **state)
{
	cbm_pool_config ok = {.block_size = 64, .capacity = 16};
	cbm_pool_config c;
	cbm_pool *pool;

	(void)state;
	assert_int_equal(cbm_pool_create(NULL, &pool), -EINVAL);
	assert_int_equal(cbm_pool_create(&ok, NULL), -EINVAL);

	c = ok, c.block_size = 0;
	expect_create_fails(&c, -EINVAL);
	c = ok, c.capacity = 0;
	expect_create_fails(&c, -EINVAL);
	c = ok, c.align = 3;
	expect_create_fails(&c, -EINVAL);
	c = ok, c.align = 96;
	expect_create_fails(&c, -EINVAL);
	c = ok, c.align = (size_t)1 << 31;
	expect_create_fails(&c, -EINVAL);
	c = ok, c.magazine_size = 4097;
	expect_create_fails(&c, -EINVAL);
	c = ok, c.flags = 1u << 7;
	expect_create_fails(&c, -EINVAL);
	/* Nothing was reported: bad configs are errors, not misuse. */
	assert_int_equal(atomic_load(&rec.count), 0);
}

static void
sizes_that_overflow_are_refused(void **state)
{
	cbm_pool_config c = {.block_size = 64, .capacity = 16};

	(void)state;
	c.capacity = (size_t)UINT32_MAX; /* indices are 32 bits */
	expect_create_fails(&c, -EOVERFLOW);
	c.capacity = 16, c.block_size = SIZE_MAX;
	expect_create_fails(&c, -EOVERFLOW);
	c.capacity = 1u << 20, c.block_size = (size_t)1 << 46;
	expect_create_fails(&c, -EOVERFLOW);
	c.capacity = 16, c.block_size = SIZE_MAX - 70, c.flags = CBM_POOL_DEBUG;
	expect_create_fails(&c, -EOVERFLOW);
}

static void
memory_that_cannot_be_had_is_enomem(void **state)
{
	/* 2^20 buffers of 2^40 bytes fits size_t but no address space. */
	cbm_pool_config c = {.block_size = (size_t)1 << 40,
			     .capacity = 1u << 20};

	(void)state;
	expect_create_fails(&c, -ENOMEM);
}

static void
foreign_pointers_are_reported_and_dropped(void **state)
{
	cbm_pool *pool = make_pool(64, 32, 0);
	cbm_pool *other = make_pool(64, 32, 0);
	void *mine = cbm_alloc(pool);
	void *theirs = cbm_alloc(other);
	int local;
	void *heap = malloc(64);
	void *bad[] = {&local, heap, (char *)mine - 64 * 1000, theirs};
	cbm_stats before, after;

	(void)state;
	cbm_pool_stats(pool, &before);
	for (int i = 0; i < 4; i++) {
		int n = atomic_load(&rec.count);

		cbm_free(pool, bad[i]);
		assert_int_equal(atomic_load(&rec.count), n + 1);
		assert_int_equal(rec.last_err, CBM_ERR_FOREIGN);
		assert_ptr_equal(rec.last_ptr, bad[i]);
		assert_ptr_equal(rec.last_pool, pool);
	}
	cbm_pool_stats(pool, &after);
	assert_int_equal(after.frees, before.frees);
	assert_int_equal(after.in_use, 1);
	assert_conserved(pool);
	cbm_free(pool, mine);
	cbm_free(other, theirs);
	assert_conserved(pool);
	assert_conserved(other);
	free(heap);
	cbm_pool_destroy(pool);
	cbm_pool_destroy(other);
}

static void
interior_pointers_are_reported(void **state)
{
	cbm_pool *pool = make_pool(100, 32, 0); /* stride 128 */
	char *b = cbm_alloc(pool);
	static const size_t offsets[] = {1, 8, 64, 127};

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		cbm_free(pool, b + offsets[i]);
		assert_int_equal(rec.last_err, CBM_ERR_MISALIGNED);
		assert_ptr_equal(rec.last_ptr, b + offsets[i]);
	}
	assert_int_equal(atomic_load(&rec.count), 4);
	assert_conserved(pool);
	cbm_free(pool, b);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

/*
 * Bulk frees check every pointer, wherever in the run the bad one is and
 * whatever the run's length (the one-sequence path checks two at a time
 * after an odd one, rseq.h): the bad one is reported and dropped, the
 * others go back.
 */
static void
bulk_frees_check_every_pointer(void **state)
{
	static const size_t lengths[] = {1, 2, 3, 7, 8, 31, 32};
	cbm_pool *pool = make_pool(100, 64, 0); /* stride 128 */
	void *b[32];

	(void)state;
	for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++) {
		size_t n = lengths[l];

		for (size_t pos = 0; pos < n; pos++) {
			int count = atomic_load(&rec.count);
			char *kept;
			cbm_stats st;

			assert_int_equal(cbm_alloc_bulk(pool, b, n), 0);
			kept = b[pos];
			b[pos] = kept + (pos % 2 ? 64 : 8); /* interior */
			cbm_free_bulk(pool, b, n);
			assert_int_equal(atomic_load(&rec.count), count + 1);
			assert_int_equal(rec.last_err, CBM_ERR_MISALIGNED);
			assert_ptr_equal(rec.last_ptr, b[pos]);
			cbm_pool_stats(pool, &st);
			assert_int_equal(st.in_use, 1);
			cbm_free(pool, kept);
			assert_conserved(pool);
		}
	}
	cbm_pool_destroy(pool);
}

/*
 * CBM_POOL_TRUST_BULK_FREES (cbm.h): bulk frees of good pointers, at every
 * length the one-sequence copy handles differently (an odd one alone, then
 * pairs), go back whole; cbm_free still checks. Where the unchecked path
 * runs (the default per-CPU mode, no bookkeeping), a pointer inside a
 * buffer given to cbm_free_bulk goes unreported onto this CPU's cache and
 * comes back from the next allocation; elsewhere the flag changes nothing
 * and it is reported.
 */
static void
trusted_bulk_frees_skip_the_check_and_nothing_else(void **state)
{
	static const size_t lengths[] = {1, 2, 3, 7, 8, 31, 32};
	cbm_pool *pool = make_pool(100, 64, CBM_POOL_TRUST_BULK_FREES);
	const char *debug_env;
	cpu_set_t was;
	cbm_stats st;
	bool unchecked;
	int local, count;
	char *a;
	void *inner, *b[32];

	(void)state;
	assert_int_equal(cbm_pool_stats(pool, &st), 0);
	/* Bookkeeping pools check whatever the flag says: a memory checker,
	 * or CBM_DEBUG making every pool a debug pool (cbm.h). */
	debug_env = getenv("CBM_DEBUG");
	unchecked = st.percpu_mode == CBM_PERCPU_RSEQ && !SANITIZED &&
		    !under_valgrind() &&
		    (debug_env == NULL || strcmp(debug_env, "") == 0 ||
		     strcmp(debug_env, "0") == 0);
	for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++) {
		assert_int_equal(cbm_alloc_bulk(pool, b, lengths[l]), 0);
		cbm_free_bulk(pool, b, lengths[l]);
		assert_conserved(pool);
	}
	assert_int_equal(atomic_load(&rec.count), 0);
	cbm_free(pool, &local);
	assert_int_equal(atomic_load(&rec.count), 1);

	/* One CPU, so that the next allocation pops the cache the bulk free
	 * pushed on. */
	assert_int_equal(sched_getaffinity(0, sizeof(was), &was), 0);
	pin_to(sched_getcpu());
	a = cbm_alloc(pool);
	inner = a + 8;
	count = atomic_load(&rec.count);
	cbm_free_bulk(pool, &inner, 1);
	if (unchecked) {
		assert_int_equal(atomic_load(&rec.count), count);
		assert_ptr_equal(cbm_alloc(pool), inner);
	} else {
		assert_int_equal(atomic_load(&rec.count), count + 1);
		assert_int_equal(rec.last_err, CBM_ERR_MISALIGNED);
	}
	assert_int_equal(sched_setaffinity(0, sizeof(was), &was), 0);
	cbm_free(pool, a); /* the buffer, through the checked path */
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
odd_strides_validate_exactly(void **state)
{
	/* stride 24 (align 8): an odd factor, so the inverse is used. */
	cbm_pool_config cfg = {.block_size = 24, .capacity = 50, .align = 8};
	cbm_pool *pool;
	char *b[50];

	(void)state;
	assert_int_equal(cbm_pool_create(&cfg, &pool), 0);
	for (int i = 0; i < 50; i++)
		b[i] = cbm_alloc(pool);
	for (int i = 0; i < 50; i++) {
		for (int off = 1; off < 24; off++)
			cbm_free(pool, b[i] + off);
	}
	assert_int_equal(atomic_load(&rec.count), 50 * 23);
	for (int i = 0; i < 50; i++)
		cbm_free(pool, b[i]);
	assert_int_equal(atomic_load(&rec.count), 50 * 23);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
double_free_in_debug_pool(void **state)
{
	cbm_pool *pool = make_pool(64, 16, CBM_POOL_DEBUG);
	void *b = cbm_alloc(pool);
	void *seen[16];

	(void)state;
	cbm_free(pool, b);
	assert_int_equal(atomic_load(&rec.count), 0);
	cbm_free(pool, b);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
	assert_ptr_equal(rec.last_ptr, b);
	assert_conserved(pool);
	/* The pool is intact: all 16 buffers come out, each once. */
	for (int i = 0; i < 16; i++) {
		seen[i] = cbm_alloc(pool);
		assert_non_null(seen[i]);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(seen[i], seen[j]);
	}
	assert_null(cbm_alloc(pool));
	/* Bulk frees are checked too. */
	cbm_free_bulk(pool, seen, 16);
	cbm_free_bulk(pool, seen, 2);
	assert_int_equal(atomic_load(&rec.count), 3);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
overflow_in_debug_pool_drops_the_buffer(void **state)
{
	cbm_pool *pool = make_pool(100, 4, CBM_POOL_DEBUG);
	char *b = cbm_alloc(pool);
	cbm_stats st;

	(void)state;
	b[cbm_block_size(pool)] = 1; /* one byte past the end */
	cbm_free(pool, b);
	assert_int_equal(rec.last_err, CBM_ERR_OVERFLOW);
	assert_ptr_equal(rec.last_ptr, b);
	/* Dropped: never handed out again, still counted as out. */
	for (int i = 0; i < 3; i++)
		assert_ptr_not_equal(cbm_alloc(pool), b);
	assert_null(cbm_alloc(pool));
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.in_use, 4);
	assert_int_equal(cbm_pool_verify(pool), 0);
	/* Freeing it again is a double free, not a second overflow. */
	cbm_free(pool, b);
	assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
	cbm_pool_destroy(pool); /* reports the leak of all 4 */
	assert_int_equal(rec.last_err, CBM_ERR_LEAK);
}

static void
destroy_with_buffers_out_reports_a_leak(void **state)
{
	cbm_pool *pool = make_pool(64, 8, 0);

	(void)state;
	cbm_alloc(pool);
	cbm_alloc(pool);
	cbm_pool_destroy(pool);
	assert_int_equal(atomic_load(&rec.count), 1);
	assert_int_equal(rec.last_err, CBM_ERR_LEAK);
	assert_null(rec.last_ptr);
	assert_non_null(strstr(rec.last_what, "2 of 8"));
}

static void
null_arguments_are_reported(void **state)
{
	cbm_pool *pool = make_pool(64, 8, 0);
	void *b[2];
	cbm_stats st;

	(void)state;
	errno = 0;
	assert_null(cbm_alloc(NULL));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	cbm_free(NULL, b);
	assert_int_equal(atomic_load(&rec.count), 2);
	assert_int_equal(cbm_alloc_bulk(NULL, b, 2), -EINVAL);
	assert_int_equal(cbm_alloc_bulk(pool, NULL, 2), -EINVAL);
	cbm_free_bulk(NULL, b, 2);
	cbm_free_bulk(pool, NULL, 2);
	assert_int_equal(atomic_load(&rec.count), 6);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	/* One rule for a NULL pool (cbm.h): the control calls too. */
	assert_int_equal(cbm_pool_stats(NULL, &st), -EINVAL);
	assert_int_equal(cbm_pool_stats(pool, NULL), -EINVAL);
	assert_int_equal(cbm_pool_trim(NULL), -EINVAL);
	assert_int_equal(cbm_pool_verify(NULL), -EINVAL);
	assert_int_equal(atomic_load(&rec.count), 10);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	/* Not misuse: documented no-ops and answers. */
	cbm_free(pool, NULL);
	assert_int_equal(cbm_alloc_bulk(pool, NULL, 0), 0);
	cbm_free_bulk(pool, NULL, 0);
	cbm_pool_destroy(NULL);
	assert_int_equal(cbm_block_size(NULL), 0);
	assert_int_equal(cbm_capacity(NULL), 0);
	assert_string_equal(cbm_pool_name(NULL), "(none)");
	assert_int_equal(atomic_load(&rec.count), 10);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
bulk_free_skips_only_the_bad(void **state)
{
	cbm_pool *pool = make_pool(64, 8, 0);
	int local;
	void *b[5];
	cbm_stats st;

	(void)state;
	b[0] = cbm_alloc(pool);
	b[1] = &local;
	b[2] = cbm_alloc(pool);
	b[3] = NULL;
	b[4] = (char *)b[0] + 1;
	cbm_free_bulk(pool, b, 5);
	assert_int_equal(atomic_load(&rec.count), 2);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.in_use, 0);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
bad_retires_are_reported_and_dropped(void **state)
{
	cbm_pool *pool = make_pool(100, 8, CBM_POOL_DEBUG);
	char *a = cbm_alloc(pool), *b = cbm_alloc(pool);
	int local;
	cbm_stats st;

	(void)state;
	cbm_retire(pool, &local);
	assert_int_equal(rec.last_err, CBM_ERR_FOREIGN);
	cbm_retire(pool, a + 1);
	assert_int_equal(rec.last_err, CBM_ERR_MISALIGNED);
	cbm_retire(pool, a);
	/* Twice: "retired", or "free" if its grace period already ended. */
	cbm_retire(pool, a);
	assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
	cbm_free(pool, a); /* free after retire */
	assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
	cbm_free(pool, b);
	cbm_retire(pool, b); /* retire after free */
	assert_int_equal(rec.last_err, CBM_ERR_DOUBLE_FREE);
	assert_non_null(strstr(rec.last_what, "free"));
	cbm_retire(NULL, b);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	cbm_barrier(NULL);
	assert_int_equal(rec.last_err, CBM_ERR_BAD_ARG);
	assert_int_equal(atomic_load(&rec.count), 7);
	cbm_retire(pool, NULL); /* a no-op, like free(NULL) */
	assert_int_equal(atomic_load(&rec.count), 7);
	/* Nothing lost: one retired, one freed, six never touched. */
	cbm_barrier(pool);
	cbm_pool_stats(pool, &st);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.reclaimed, 1);
	assert_conserved(pool);
	cbm_pool_destroy(pool);
}

static void
overflow_is_caught_at_retire_too(void **state)
{
	cbm_pool *pool = make_pool(64, 4, CBM_POOL_DEBUG);
	char *a = cbm_alloc(pool);

	(void)state;
	a[64] = 'x';
	cbm_retire(pool, a);
	assert_int_equal(rec.last_err, CBM_ERR_OVERFLOW);
	cbm_barrier(pool);
	assert_int_equal(cbm_pool_verify(pool), 0);
	cbm_pool_destroy(pool); /* the dropped buffer is reported as held */
	assert_int_equal(rec.last_err, CBM_ERR_LEAK);
}

static void
idle_trim_periods_are_checked(void **state)
{
	cbm_pool_config c = {
		.block_size = 64, .capacity = 16, .idle_trim_ms = 9};

	(void)state;
	expect_create_fails(&c, -EINVAL);
	c.idle_trim_ms = 10;
	{
		cbm_pool *pool;

		assert_int_equal(cbm_pool_create(&c, &pool), 0);
		cbm_pool_destroy(pool);
	}
}

/* The default handler prints the pool's name, the pointer and the error,
 * then aborts: run it in a child and look. */
static void
default_handler_prints_and_aborts(void **state)
{
	int pipefd[2], status;
	char out[512] = {0};
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cbm_pool_config cfg = {
			.block_size = 64, .capacity = 4, .name = "victim"};
		cbm_pool *pool;
		int local;

		dup2(pipefd[1], 2);
		cbm_set_error_handler(NULL, NULL);
		if (cbm_pool_create(&cfg, &pool) != 0)
			_exit(1);
		cbm_free(pool, &local);
		_exit(0); /* not reached */
	}
	close(pipefd[1]);
	assert_true(read(pipefd[0], out, sizeof(out) - 1) > 0);
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(out, "victim"));
	assert_non_null(strstr(out, "foreign pointer"));
	assert_non_null(strstr(out, "0x"));
}

static void
default_handler_goes_on_after_a_leak(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cbm_pool_config cfg = {.block_size = 64, .capacity = 4};
		cbm_pool *pool;

		freopen("/dev/null", "w", stderr);
		cbm_set_error_handler(NULL, NULL);
		if (cbm_pool_create(&cfg, &pool) != 0)
			_exit(1);
		(void)cbm_alloc(pool);
		cbm_pool_destroy(pool);
		_exit(7);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, install, remove_recorder)
	const struct CMUnitTest tests[] = {
		T(bad_configs_are_refused),
		T(sizes_that_overflow_are_refused),
		T(memory_that_cannot_be_had_is_enomem),
		T(foreign_pointers_are_reported_and_dropped),
		T(interior_pointers_are_reported),
		T(bulk_frees_check_every_pointer),
		T(trusted_bulk_frees_skip_the_check_and_nothing_else),
		T(odd_strides_validate_exactly),
		T(double_free_in_debug_pool),
		T(overflow_in_debug_pool_drops_the_buffer),
		T(destroy_with_buffers_out_reports_a_leak),
		T(null_arguments_are_reported),
		T(bulk_free_skips_only_the_bad),
		T(bad_retires_are_reported_and_dropped),
		T(overflow_is_caught_at_retire_too),
		T(idle_trim_periods_are_checked),
		T(default_handler_prints_and_aborts),
		T(default_handler_goes_on_after_a_leak),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
