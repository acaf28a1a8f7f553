/* SPDX-License-Identifier: MIT */
/*
 * What the example servers share: the process's life. server_main
 * parses the command line, makes the heap (or pool), opens one listening
 * socket per worker, starts the workers, waits for SIGINT, SIGTERM or
 * --seconds, stops the workers, and reports: what was served, the heap's
 * or pool's statistics, and whether every buffer came back (the exit
 * status says so too).
 *
 * A server supplies the worker's loop (server_ops.run). The loop owns its
 * connections and must, when its wake descriptor becomes readable, close
 * every connection, give back every buffer it holds and return.
 */
#ifndef EXAMPLES_SERVER_H
#define EXAMPLES_SERVER_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "bufs.h"
#include "opts.h"

/* Exit statuses (--help). */
enum {
	EXIT_LOST = 1,	      /* a buffer was lost, or a worker failed */
	EXIT_USAGE = 2,	      /* bad command line */
	EXIT_UNSUPPORTED = 3, /* the kernel lacks what the server needs */
};

/* What a worker did; written only by its worker, read after it stopped. */
struct served {
	uint64_t connections; /* accepted */
	uint64_t requests;    /* answered 200 */
	uint64_t errors[6];   /* answered 400, 413, 501, 503, 505, other */
	uint64_t vanished;    /* closed by the client mid-request */
	uint64_t dropped;     /* closed by us mid-response (send failed,
				 or no buffer for the rest of it) */
	uint64_t idle;	      /* closed after --idle-timeout */
	uint64_t slow;	      /* closed after --header-timeout */
	uint64_t accept_errors;
};

/* Count an error response (400, 413, 501, 503, 505). */
void served_error(struct served *s, int status);

struct server;

/* One worker thread. A server's own worker state begins with this. */
struct worker {
	struct server *srv;
	unsigned id;
	int listen_fd; /* non-blocking, SO_REUSEPORT */
	int wake_fd;   /* eventfd: readable when the worker must stop */
	int failed;    /* set by the worker when it had to give up */
	struct served served;
	pthread_t thread;
};

struct server_ops {
	const char *name; /* for messages and the Server header */
	enum server_kind kind;
	size_t worker_size; /* of the server's worker, >= struct worker */
	/* After the pool exists, before any worker: 0, or an exit status. */
	int (*prepare)(struct server *s);
	/* The worker's loop (the thread's body); returns at wake_fd. */
	void *(*run)(void *worker);
	/* After every worker stopped, before the report. */
	void (*finish)(struct server *s);
	/* Extra report lines. May be NULL. */
	void (*report)(struct server *s, FILE *out);
};

struct server {
	const struct server_ops *ops;
	struct opts opts;
	struct bufs bufs;
	size_t max_request; /* head and body; larger requests are 413 */
	uint16_t port;
	unsigned nworkers; /* made */
	unsigned started;  /* of which running */
	struct worker **workers;
	void *impl; /* the server's shared state */
};

int server_main(int argc, char **argv, const struct server_ops *ops);

/* Seconds on a monotonic clock, coarse (for idle timeouts). */
uint64_t server_now(void);

#endif /* EXAMPLES_SERVER_H */
