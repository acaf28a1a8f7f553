/* SPDX-License-Identifier: MIT */
/* The example servers' process life (server.h). */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "listen.h"

static const int error_statuses[] = {400, 413, 501, 503, 505};
#define NSTATUS (sizeof(error_statuses) / sizeof(error_statuses[0]))

void
served_error(struct served *s, int status)
{
	size_t i;

	for (i = 0; i < NSTATUS; i++)
		if (error_statuses[i] == status)
			break;
	s->errors[i]++;
}

uint64_t
server_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

/* A server holds a descriptor per connection: allow as many as the hard
 * limit does. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
start_workers(struct server *s)
{
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	if (s->workers == NULL)
		return -1;
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = calloc(1, s->ops->worker_size);

		if (w == NULL)
			return -1;
		s->workers[i] = w;
		w->srv = s;
		w->id = i;
		w->wake_fd = -1;
		w->listen_fd = listen_on(s->opts.addr, &s->port);
		if (w->listen_fd < 0)
			return -1;
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->wake_fd < 0) {
			perror("eventfd");
			return -1;
		}
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = s->workers[i];
		int rc = pthread_create(&w->thread, NULL, s->ops->run, w);

		if (rc) {
			fprintf(stderr, "pthread_create: %s\n", strerror(rc));
			return -1;
		}
		s->started++;
	}
	return 0;
}

/* Stop and join the workers; close their descriptors. */
static void
stop_workers(struct server *s)
{
	for (unsigned i = 0; i < s->started; i++) {
		uint64_t one = 1;

		if (write(s->workers[i]->wake_fd, &one, sizeof(one)) < 0)
			perror("eventfd write");
	}
	for (unsigned i = 0; i < s->started; i++)
		pthread_join(s->workers[i]->thread, NULL);
}

static void
free_workers(struct server *s)
{
	for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
		struct worker *w = s->workers[i];

		if (w == NULL)
			continue;
		if (w->listen_fd >= 0)
			close(w->listen_fd);
		if (w->wake_fd >= 0)
			close(w->wake_fd);
		free(w);
	}
	free(s->workers);
	s->workers = NULL;
}

/* Wait for SIGINT or SIGTERM (blocked in every thread), or --seconds. */
static void
wait_for_stop(struct server *s)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (s->opts.seconds == 0) {
		while (sigwait(&set, &sig) != 0)
			;
	} else {
		struct timespec left = {.tv_sec = s->opts.seconds};
		struct timespec end, now;

		clock_gettime(CLOCK_MONOTONIC, &end);
		end.tv_sec += s->opts.seconds;
		for (;;) {
			sig = sigtimedwait(&set, NULL, &left);
			if (sig > 0 || errno == EAGAIN)
				break;
			/* EINTR: wait for what is left. */
			clock_gettime(CLOCK_MONOTONIC, &now);
			left.tv_sec = end.tv_sec - now.tv_sec;
			left.tv_nsec = end.tv_nsec - now.tv_nsec;
			if (left.tv_nsec < 0) {
				left.tv_nsec += 1000000000L;
				left.tv_sec--;
			}
			if (left.tv_sec < 0) {
				sig = 0;
				break;
			}
		}
	}
	if (sig > 0)
		printf("%s: stopping: %s\n", s->ops->name, strsignal(sig));
	else
		printf("%s: stopping: %u seconds are up\n", s->ops->name,
		       s->opts.seconds);
	fflush(stdout);
}

static void
report_served(struct server *s, FILE *out)
{
	struct served t = {0};

	for (unsigned i = 0; i < s->started; i++) {
		struct served *w = &s->workers[i]->served;

		t.connections += w->connections;
		t.requests += w->requests;
		for (size_t k = 0; k <= NSTATUS; k++)
			t.errors[k] += w->errors[k];
		t.vanished += w->vanished;
		t.dropped += w->dropped;
		t.idle += w->idle;
		t.slow += w->slow;
		t.accept_errors += w->accept_errors;
	}
	fprintf(out, "served: connections=%" PRIu64 " ok=%" PRIu64,
		t.connections, t.requests);
	for (size_t k = 0; k < NSTATUS; k++)
		fprintf(out, " %d=%" PRIu64, error_statuses[k], t.errors[k]);
	fprintf(out,
		" vanished=%" PRIu64 " dropped=%" PRIu64 " idle=%" PRIu64
		" slow=%" PRIu64 " accept_errors=%" PRIu64 "\n",
		t.vanished, t.dropped, t.idle, t.slow, t.accept_errors);
}

/*
 * The epoll and io_uring servers take their buffers from a heap: a request
 * that outgrows its first buffer moves to a larger class, up to
 * --max-request. The file server keeps one pool: its regions are
 * registered with io_uring once, at start, and a heap's classes are made
 * and grow later, in memory no registration covers. --pool gives the
 * others a pool too, and the limit of one buffer.
 */
static int
make_bufs(struct server *s)
{
	const struct opts *o = &s->opts;
	bool one_size = o->use_pool || s->ops->kind == SERVER_FILE;
	struct bufs_config cfg = {
		.name = s->ops->name,
		.source = o->use_malloc ? BUFS_MALLOC
			  : one_size	? BUFS_POOL
					: BUFS_HEAP,
		.size = o->buf_size,
		.max_size = one_size ? o->buf_size : o->max_request,
		.capacity = o->buffers,
		.max_capacity = o->max_buffers,
		.align = o->buf_align,
	};
	int rc = bufs_create(&s->bufs, &cfg);

	s->max_request = one_size ? s->bufs.size : o->max_request;
	return rc;
}

int
server_main(int argc, char **argv, const struct server_ops *ops)
{
	struct server s = {.ops = ops};
	sigset_t set;
	int rc, status = 0;
	bool whole;

	rc = opts_parse(&s.opts, argc, argv, ops->kind);
	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	http_init();
	raise_fd_limit();
	/* Every send says MSG_NOSIGNAL; this covers anything else. */
	signal(SIGPIPE, SIG_IGN);
	/* Blocked here, so in every worker: only wait_for_stop takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	rc = make_bufs(&s);
	if (rc) {
		fprintf(stderr,
			"%s: cannot make the buffers (%zu x %zu bytes): %s\n",
			ops->name, s.opts.buffers, s.opts.buf_size,
			strerror(-rc));
		return EXIT_LOST;
	}
	rc = ops->prepare ? ops->prepare(&s) : 0;
	if (rc) {
		bufs_fini(&s.bufs);
		return rc;
	}
	s.port = (uint16_t)s.opts.port;
	s.nworkers = s.opts.threads;
	if (start_workers(&s)) {
		status = EXIT_LOST;
	} else {
		printf("%s: listening on %s:%u (%u workers, ", ops->name,
		       s.opts.addr, (unsigned)s.port, s.nworkers);
		if (s.bufs.heap)
			printf("cbm heap of at most %zu bytes, first buffers "
			       "of %zu, requests up to %zu)\n",
			       s.bufs.capacity, s.bufs.size, s.max_request);
		else
			printf("%s, %zu buffers of %zu bytes, requests up to "
			       "%zu)\n",
			       s.bufs.pool ? "cbm pool" : "malloc",
			       s.opts.buffers, s.bufs.size, s.max_request);
		fflush(stdout);
		wait_for_stop(&s);
	}
	stop_workers(&s);
	for (unsigned i = 0; i < s.started; i++)
		if (s.workers[i]->failed)
			status = EXIT_LOST;
	if (ops->finish)
		ops->finish(&s);
	/* What workers retired is back after this; then nothing is out. */
	bufs_barrier(&s.bufs);
	report_served(&s, stdout);
	if (ops->report)
		ops->report(&s, stdout);
	whole = bufs_report(&s.bufs, stdout);
	if (!whole)
		status = EXIT_LOST;
	free_workers(&s);
	bufs_fini(&s.bufs);
	return status;
}
