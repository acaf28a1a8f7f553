/* SPDX-License-Identifier: MIT */
/*
 * cbm_pool_stats_print for tests/stats_print.py: a pool with a name that
 * needs escaping and 5 of its 64 buffers held, printed once.
 *
 *   stats_print OPTS [stderr]     OPTS: text, J or P; "stderr": write_cb NULL
 */
#include <cbm.h>

#include <stdio.h>
#include <string.h>

static void
to_stdout(void *cbopaque, const char *text)
{
	++*(int *)cbopaque;
	fputs(text, stdout);
}

int
main(int argc, char **argv)
{
	cbm_pool_config cfg = {.block_size = 128,
			       .capacity = 64,
			       .name = "stats \"print\"\\test"};
	const char *opts =
		argc > 1 && strcmp(argv[1], "text") != 0 ? argv[1] : NULL;
	cbm_pool *pool;
	void *held[5];
	int calls = 0;

	if (cbm_pool_create(&cfg, &pool) != 0 ||
	    cbm_alloc_bulk(pool, held, 5) != 0)
		return 2;
	if (argc > 2 && strcmp(argv[2], "stderr") == 0)
		cbm_pool_stats_print(pool, NULL, NULL, opts);
	else
		cbm_pool_stats_print(pool, to_stdout, &calls, opts);
	cbm_free_bulk(pool, held, 5);
	cbm_pool_destroy(pool);
	return argc > 2 || calls > 0 ? 0 : 3;
}
