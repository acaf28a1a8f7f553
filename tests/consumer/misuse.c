/* SPDX-License-Identifier: MIT */
/*
 * A program with one planted bug in its use of a pool, built as a user
 * builds it (against the installed library), for the memory checkers to
 * find (checkers.sh):
 *
 *   misuse use-after-free   reads a buffer after giving it back
 *   misuse write-after-free writes a buffer after giving it back
 *   misuse leak             loses the only pointer to a held buffer (not
 *                           the first: the pool keeps its address)
 *   misuse clean            the same calls, no bug: must pass unnoticed
 */
#include <cbm.h>

#include <stdio.h>
#include <string.h>

/* Where the buffer is kept between the calls: volatile, so that the
 * compiler cannot see through the planted bug and drop it. */
static char *volatile kept;

/* Take a buffer and lose the only pointer to it (the planted leak). */
static __attribute__((noinline)) void
lose_one(cbm_pool *pool)
{
	char *volatile lost = cbm_alloc(pool);

	if (lost != NULL)
		lost[0] = 1;
	lost = NULL;
}

/* Overwrite the stack below the caller, where copies of the lost pointer
 * may linger in dead frames and look like references to memcheck. */
static __attribute__((noinline)) void
scrub_stack(void)
{
	volatile char scratch[4096];

	for (size_t i = 0; i < sizeof(scratch); i++)
		scratch[i] = 0;
}

int
main(int argc, char **argv)
{
	cbm_pool_config cfg = {
		.block_size = 256, .capacity = 64, .name = "misuse"};
	const char *bug = argc > 1 ? argv[1] : "clean";
	cbm_pool *pool;
	int sum = 0;

	if (cbm_pool_create(&cfg, &pool) != 0) {
		fprintf(stderr, "misuse: cannot create a pool\n");
		return 2;
	}
	if (strcmp(bug, "leak") == 0) {
		/* Not the first buffer: the pool's own base address points
		 * at it, so memcheck counts it reachable. */
		kept = cbm_alloc(pool);
		lose_one(pool); /* the planted bug; the pool lives on */
		scrub_stack();
		cbm_free(pool, kept);
		return 0;
	}
	kept = cbm_alloc(pool);
	if (kept == NULL)
		return 2;
	memset(kept, 1, 256);
	cbm_free(pool, kept);
	if (strcmp(bug, "use-after-free") == 0)
		sum = kept[10]; /* the planted bug */
	else if (strcmp(bug, "write-after-free") == 0)
		kept[10] = 2; /* the planted bug */
	else if (strcmp(bug, "clean") != 0) {
		fprintf(stderr, "misuse: no such bug '%s'\n", bug);
		return 2;
	}
	cbm_pool_destroy(pool);
	printf("misuse: %s ran to its end (%d)\n", bug, sum);
	return 0;
}
