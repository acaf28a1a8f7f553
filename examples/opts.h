/* SPDX-License-Identifier: MIT */
/*
 * The command line of the example servers (epoll_server, uring_server,
 * file_server):
 * what a person can set, with the defaults and limits in opts.c.
 */
#ifndef EXAMPLES_OPTS_H
#define EXAMPLES_OPTS_H

#include <stdbool.h>
#include <stddef.h>

enum server_kind {
	SERVER_EPOLL,
	SERVER_URING,
	SERVER_FILE,
};

struct opts {
	const char *addr;      /* IPv4 address to listen on */
	unsigned port;	       /* 0: any free port (printed) */
	unsigned threads;      /* workers, one listening socket each */
	unsigned seconds;      /* stop after this long; 0: at SIGINT/SIGTERM */
	size_t buffers;	       /* pool capacity; a heap's ceiling, in
				  buffers of buf_size */
	size_t max_buffers;    /* elastic pool's ceiling; 0: fixed */
	size_t buf_size;       /* bytes of a first buffer (a pool's: the
				  largest request) */
	size_t max_request;    /* heap, malloc: the largest request (413
				  above); 0: not set */
	size_t body_size;      /* bytes of the fixed response body */
	unsigned idle_timeout; /* seconds a quiet connection is kept */
	unsigned header_timeout; /* epoll: seconds a request head may take */
	bool use_malloc;	 /* malloc/free instead of the heap or pool */
	bool use_pool;		 /* epoll, io_uring: one pool, not a heap */
	unsigned refresh;	 /* epoll: rebuild the cached response every
				   this many requests per worker; 0: never */
	unsigned ring_entries;	 /* io_uring: provided buffers per worker */
	bool single_shot;	 /* io_uring: no multishot receive */
	size_t buf_align;	 /* buffers' alignment; 0: the pool's default */
	const char *root;	 /* file: the directory served */
	bool use_sendfile;	 /* file: sendfile(2), no buffers */
};

/*
 * Fill *o from argv. Returns 0 to run, 1 when --help was printed (exit 0),
 * -1 when the command line is wrong (a message is printed; exit 2).
 */
int opts_parse(struct opts *o, int argc, char **argv, enum server_kind kind);

#endif /* EXAMPLES_OPTS_H */
