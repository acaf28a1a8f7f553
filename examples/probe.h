/* SPDX-License-Identifier: MIT */
/*
 * What the test client's checks share (probe.c): the server's port, the
 * verdicts, and a blocking connection with 5-second timeouts.
 */
#ifndef EXAMPLES_PROBE_H
#define EXAMPLES_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#define TIMEOUT_MS 5000

extern unsigned port;

void fail(const char *check, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void passed(const char *check);
/* A connection to the server, or -1. */
int dial(void);
bool send_all(int fd, const char *p, size_t n);
bool send_str(int fd, const char *s);
void sleep_ms(long ms);

/* The file server's checks (probe_files.c): makes the tree under root
 * first (make_files), and removes the big files after (remove_files). */
bool make_files(const char *root);
void check_files(const char *root);
void remove_files(const char *root);

#endif /* EXAMPLES_PROBE_H */
