/* SPDX-License-Identifier: MIT */
/*
 * What the libFuzzer harnesses share: a reader that turns the fuzzer's
 * bytes into choices (past the end, every choice reads 0, so any input is
 * a whole program), and the way a harness reports a violation: a message
 * and abort(), which libFuzzer records as a crash with the input that
 * caused it.
 */
#ifndef CBM_FUZZ_H
#define CBM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fuzz_bytes {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t
fuzz_u8(struct fuzz_bytes *b)
{
	if (b->n == 0)
		return 0;
	b->n--;
	return *b->p++;
}

static inline uint16_t
fuzz_u16(struct fuzz_bytes *b)
{
	uint16_t hi = fuzz_u8(b);

	return (uint16_t)(hi << 8 | fuzz_u8(b));
}

static inline uint32_t
fuzz_u32(struct fuzz_bytes *b)
{
	uint32_t hi = fuzz_u16(b);

	return hi << 16 | fuzz_u16(b);
}

/* A violation of what the harness checks: say what, then crash. */
#define FUZZ_FAIL(...)                                                         \
	do {                                                                   \
		fprintf(stderr, "fuzz violation at %s:%d: ", __FILE__,         \
			__LINE__);                                             \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond))                                                   \
			FUZZ_FAIL(__VA_ARGS__);                                \
	} while (0)

#endif /* CBM_FUZZ_H */
