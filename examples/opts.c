/* SPDX-License-Identifier: MIT */
/* The servers' command line: defaults, limits, and --help. */
#include "opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "http.h"

#define DEFAULT_MAX_REQUEST (64 * 1024)

enum {
	OPT_ADDR = 256,
	OPT_PORT,
	OPT_THREADS,
	OPT_SECONDS,
	OPT_BUFFERS,
	OPT_MAX_BUFFERS,
	OPT_BUF_SIZE,
	OPT_MAX_REQUEST,
	OPT_POOL,
	OPT_BODY_SIZE,
	OPT_IDLE,
	OPT_MALLOC,
	OPT_REFRESH,
	OPT_HEADER_TIMEOUT,
	OPT_RING,
	OPT_SINGLE_SHOT,
	OPT_ROOT,
	OPT_SENDFILE,
	OPT_HELP,
};

static const struct option long_options[] = {
	{"addr", required_argument, NULL, OPT_ADDR},
	{"port", required_argument, NULL, OPT_PORT},
	{"threads", required_argument, NULL, OPT_THREADS},
	{"seconds", required_argument, NULL, OPT_SECONDS},
	{"buffers", required_argument, NULL, OPT_BUFFERS},
	{"max-buffers", required_argument, NULL, OPT_MAX_BUFFERS},
	{"buf-size", required_argument, NULL, OPT_BUF_SIZE},
	{"max-request", required_argument, NULL, OPT_MAX_REQUEST},
	{"pool", no_argument, NULL, OPT_POOL},
	{"body-size", required_argument, NULL, OPT_BODY_SIZE},
	{"idle-timeout", required_argument, NULL, OPT_IDLE},
	{"malloc", no_argument, NULL, OPT_MALLOC},
	{"refresh", required_argument, NULL, OPT_REFRESH},
	{"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
	{"ring-entries", required_argument, NULL, OPT_RING},
	{"single-shot", no_argument, NULL, OPT_SINGLE_SHOT},
	{"root", required_argument, NULL, OPT_ROOT},
	{"sendfile", no_argument, NULL, OPT_SENDFILE},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static const char *const about[] = {
	"An HTTP/1.1 server that answers every request with a fixed body:",
	"one worker thread per CPU, each with its own listening socket",
	"(SO_REUSEPORT), and every I/O buffer from one cbm heap (the file",
	"server: one cbm pool).",
	NULL,
};

static const char *const about_epoll[] = {
	"epoll: a connection holds one receive buffer from accept to close,",
	"so the heap's ceiling bounds the connections: when it is reached, a",
	"new one is answered 503. A request that outgrows its buffer moves to",
	"a larger one, up to --max-request. The response is a heap buffer",
	"that workers rebuild under load and hand back with cbm_retire.",
	NULL,
};

static const char *const about_uring[] = {
	"io_uring: multishot receives into a provided-buffer ring that the",
	"heap keeps full; the kernel picks a buffer for each receive, and",
	"idle connections hold none. A request that outgrows its first buffer",
	"moves to a larger one, up to --max-request.",
	NULL,
};

static const char *const about_file[] = {
	"file_server: serves the files under --root. Each file is read with",
	"O_DIRECT and io_uring READ_FIXED into pool buffers registered with "
	"the",
	"kernel, and sent from the same buffers with SEND_ZC fixed-buffer "
	"sends:",
	"no file byte is copied in user space. Single ranges and HEAD; paths",
	"that lead outside the root are refused.",
	NULL,
};

static const char *const file_options[] = {
	"  --root DIR        the directory served (required)",
	"  --sendfile        sendfile(2) instead of buffers, the kernel's own",
	"                    zero copy, to compare",
	"                    (file_server: --buffers defaults to 256 and",
	"                    --buf-size, a multiple of 4096 from 64 KiB to",
	"                    1 MiB, to 256 KiB: one block read per buffer;",
	"                    --malloc: malloc'd buffers, buffered read and",
	"                    plain send)",
	NULL,
};

static const char *const common_options[] = {
	"  --addr A          IPv4 address to listen on (127.0.0.1)",
	"  --port N          TCP port; 0 picks a free one (8080)",
	"  --threads N       worker threads (one per online CPU)",
	"  --seconds N       stop after N seconds (0: at SIGINT/SIGTERM)",
	"  --buffers N       the heap's ceiling, in buffers of --buf-size",
	"                    (raised to its largest class); with a pool, the",
	"                    buffers in it (4096)",
	"  --max-buffers N   the heap's ceiling instead; a pool: elastic,",
	"                    starts with --buffers and grows to N as load",
	"                    needs, memory back when idle",
	"  --buf-size N      bytes of a connection's first buffer; with a",
	"                    pool, of every buffer: the largest request (4096)",
	"  --body-size N     bytes of the response body (128)",
	"  --idle-timeout N  close connections quiet for N seconds (60)",
	"  --malloc          malloc/free instead of the heap or pool, to",
	"                    compare",
	NULL,
};

/* The epoll and io_uring servers' request buffers. */
static const char *const request_options[] = {
	"  --max-request N   the largest request, head and body: larger ones",
	"                    are 413 (65536, or --buf-size if larger)",
	"  --pool            one pool of --buffers buffers of --buf-size, as",
	"                    before the heap: requests larger than a buffer",
	"                    are 413, to compare",
	NULL,
};

static const char *const epoll_options[] = {
	"  --refresh N       rebuild the cached response every N requests",
	"                    of a worker; 0: never (1000)",
	"  --header-timeout N  close a connection whose request head is not",
	"                    whole N seconds after it was due to begin (at",
	"                    accept, or at its first byte): slowloris (10)",
	NULL,
};

static const char *const uring_options[] = {
	"  --ring-entries N  provided buffers per worker, a power of two",
	"                    (default: the most that buffers / 2 allows,",
	"                    up to 1024)",
	"  --single-shot     one receive per completion, not multishot (as",
	"                    on kernels before 6.0), to compare",
	NULL,
};

static const char *const epilogue[] = {
	"  --help            this text",
	"",
	"Prints 'listening on ADDR:PORT' when ready. On exit prints what it",
	"served and the pool's statistics, and checks that every buffer came",
	"back. Exit status: 0; 1 when a buffer was lost or a worker failed;",
	"2 for a bad command line; 3 when the kernel lacks what the server",
	"needs.",
	NULL,
};

static void
put_lines(FILE *out, const char *const *lines)
{
	while (*lines)
		fprintf(out, "%s\n", *lines++);
}

static void
usage(FILE *out, const char *prog, enum server_kind kind)
{
	fprintf(out, "usage: %s [options]\n\n", prog);
	put_lines(out, about);
	fprintf(out, "\n");
	put_lines(out, kind == SERVER_EPOLL   ? about_epoll
		       : kind == SERVER_URING ? about_uring
					      : about_file);
	fprintf(out, "\n");
	put_lines(out, common_options);
	if (kind != SERVER_FILE)
		put_lines(out, request_options);
	put_lines(out, kind == SERVER_EPOLL   ? epoll_options
		       : kind == SERVER_URING ? uring_options
					      : file_options);
	put_lines(out, epilogue);
}

/* A whole decimal number in [min, max], or a message and -1. */
static int
number(const char *name, const char *arg, uint64_t min, uint64_t max,
       uint64_t *out)
{
	char *end;
	uintmax_t v;

	errno = 0;
	v = strtoumax(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno || v < min ||
	    v > max) {
		fprintf(stderr,
			"--%s: '%s' is not a number from %" PRIu64
			" to %" PRIu64 "\n",
			name, arg, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

/* The largest power of two <= n, or 1. */
static unsigned
floor_pow2(size_t n)
{
	unsigned p = 1;

	while ((size_t)p * 2 <= n)
		p *= 2;
	return p;
}

static int
check(struct opts *o, enum server_kind kind)
{
	struct in_addr ignored;
	/* A response, and the epoll server's cache entry head, fit one
	 * buffer. */
	size_t most_body = o->buf_size - RESPONSE_HEAD_MAX - CACHE_ENTRY_HEAD;

	if (inet_pton(AF_INET, o->addr, &ignored) != 1) {
		fprintf(stderr, "--addr %s: not an IPv4 address\n", o->addr);
		return -1;
	}
	if (o->max_buffers != 0 && o->max_buffers < o->buffers) {
		fprintf(stderr, "--max-buffers %zu is below --buffers %zu\n",
			o->max_buffers, o->buffers);
		return -1;
	}
	if (o->body_size > most_body) {
		fprintf(stderr,
			"--body-size %zu does not fit a buffer of --buf-size "
			"%zu: at most %zu\n",
			o->body_size, o->buf_size, most_body);
		return -1;
	}
	if (kind != SERVER_FILE && o->use_pool && o->use_malloc) {
		fprintf(stderr, "--pool or --malloc, not both\n");
		return -1;
	}
	if (o->use_pool && o->max_request) {
		fprintf(stderr, "--max-request: a pool's buffers are one size, "
				"--buf-size bounds its requests\n");
		return -1;
	}
	if (o->max_request == 0)
		o->max_request = o->buf_size > DEFAULT_MAX_REQUEST
					 ? o->buf_size
					 : DEFAULT_MAX_REQUEST;
	if (o->max_request < o->buf_size) {
		fprintf(stderr, "--max-request %zu is below --buf-size %zu\n",
			o->max_request, o->buf_size);
		return -1;
	}
	if (kind == SERVER_FILE) {
		if (o->root == NULL) {
			fprintf(stderr, "--root DIR is required\n");
			return -1;
		}
		if (o->buf_size % 4096 || o->buf_size < 64 * 1024) {
			fprintf(stderr,
				"--buf-size %zu: file blocks are a multiple "
				"of 4096 from 64 KiB to 1 MiB\n",
				o->buf_size);
			return -1;
		}
		if (o->use_malloc && o->use_sendfile) {
			fprintf(stderr, "--malloc or --sendfile, not both\n");
			return -1;
		}
		/* The pool's regions are registered once, at start: buffers
		 * an elastic pool grew later would be in none of them. */
		if (o->max_buffers != 0 && !o->use_malloc && !o->use_sendfile) {
			fprintf(stderr,
				"--max-buffers: the file server registers its "
				"pool with io_uring once, so the pool is "
				"fixed (use --buffers)\n");
			return -1;
		}
		/* O_DIRECT: buffers aligned to the largest logical block
		 * size a disk has. */
		o->buf_align = 4096;
	}
	if (kind == SERVER_URING) {
		size_t share = o->buffers / 2 / o->threads;

		if (share > 1024)
			share = 1024;
		if (o->ring_entries == 0)
			o->ring_entries = floor_pow2(share);
		if (o->ring_entries & (o->ring_entries - 1)) {
			fprintf(stderr,
				"--ring-entries %u is not a power of two\n",
				o->ring_entries);
			return -1;
		}
	}
	return 0;
}

int
opts_parse(struct opts *o, int argc, char **argv, enum server_kind kind)
{
	const char *prog = argv[0];
	uint64_t v = 0; /* number() sets it, or fails and rc says so */
	int c, index = 0;

	*o = (struct opts){
		.addr = "127.0.0.1",
		.port = 8080,
		.threads = online_cpus(),
		.buffers = 4096,
		.buf_size = 4096,
		.body_size = 128,
		.idle_timeout = 60,
		.refresh = 1000,
		.header_timeout = 10,
	};
	if (kind == SERVER_FILE) {
		o->buffers = 256;
		o->buf_size = 256 * 1024;
	}
	opterr = 0;
	/* A leading ':' makes a missing value ':' rather than '?'. */
	while ((c = getopt_long(argc, argv, ":", long_options, &index)) != -1) {
		int rc = 0;

		switch (c) {
		case OPT_ADDR:
			o->addr = optarg;
			break;
		case OPT_PORT:
			rc = number("port", optarg, 0, 65535, &v);
			o->port = (unsigned)v;
			break;
		case OPT_THREADS:
			rc = number("threads", optarg, 1, 1024, &v);
			o->threads = (unsigned)v;
			break;
		case OPT_SECONDS:
			rc = number("seconds", optarg, 0, 1000000, &v);
			o->seconds = (unsigned)v;
			break;
		case OPT_BUFFERS:
			/* The cached response, a fresh one being built, and
			 * one connection. */
			rc = number("buffers", optarg, 4, UINT32_MAX - 2, &v);
			o->buffers = v;
			break;
		case OPT_MAX_BUFFERS:
			rc = number("max-buffers", optarg, 4, UINT32_MAX - 2,
				    &v);
			o->max_buffers = v;
			break;
		case OPT_BUF_SIZE:
			rc = number("buf-size", optarg, 512, 1 << 20, &v);
			o->buf_size = v;
			break;
		case OPT_MAX_REQUEST:
			if (kind == SERVER_FILE)
				goto other_server;
			rc = number("max-request", optarg, 512, 1 << 30, &v);
			o->max_request = v;
			break;
		case OPT_POOL:
			if (kind == SERVER_FILE)
				goto other_server;
			o->use_pool = true;
			break;
		case OPT_BODY_SIZE:
			rc = number("body-size", optarg, 0, 1 << 20, &v);
			o->body_size = v;
			break;
		case OPT_IDLE:
			rc = number("idle-timeout", optarg, 1, 86400, &v);
			o->idle_timeout = (unsigned)v;
			break;
		case OPT_MALLOC:
			o->use_malloc = true;
			break;
		case OPT_HEADER_TIMEOUT:
			if (kind != SERVER_EPOLL)
				goto other_server;
			rc = number("header-timeout", optarg, 1, 86400, &v);
			o->header_timeout = (unsigned)v;
			break;
		case OPT_REFRESH:
			if (kind != SERVER_EPOLL)
				goto other_server;
			rc = number("refresh", optarg, 0, UINT32_MAX, &v);
			o->refresh = (unsigned)v;
			break;
		case OPT_RING:
			if (kind != SERVER_URING)
				goto other_server;
			rc = number("ring-entries", optarg, 1, 32768, &v);
			o->ring_entries = (unsigned)v;
			break;
		case OPT_SINGLE_SHOT:
			if (kind != SERVER_URING)
				goto other_server;
			o->single_shot = true;
			break;
		case OPT_ROOT:
			if (kind != SERVER_FILE)
				goto other_server;
			o->root = optarg;
			break;
		case OPT_SENDFILE:
			if (kind != SERVER_FILE)
				goto other_server;
			o->use_sendfile = true;
			break;
		case OPT_HELP:
			usage(stdout, prog, kind);
			return 1;
		case ':':
			fprintf(stderr, "%s: %s needs a value\n", prog,
				argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr,
				"%s: unknown option '%s' (try --help)\n", prog,
				argv[optind - 1]);
			return -1;
		other_server:
			fprintf(stderr, "%s: --%s is for another server\n",
				prog, long_options[index].name);
			return -1;
		}
		if (rc)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n",
			prog, argv[optind]);
		return -1;
	}
	return check(o, kind);
}
