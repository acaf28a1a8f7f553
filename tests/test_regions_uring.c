/* SPDX-License-Identifier: MIT */
/*
 * A pool registered with io_uring (io_uring_register_buffers of
 * cbm_pool_regions) and read into with IORING_OP_READ_FIXED, the buffer
 * index from cbm_region_index: every buffer gets its block of a file, and
 * a read that starts in the middle of a buffer lands there; each byte is
 * checked against the file. O_DIRECT where the file system allows it.
 *
 *   test_regions_uring DIR   (a directory for the scratch file)
 *
 * Then an elastic pool whose region callbacks (on_map, on_unmap) keep a
 * sparse registered table in step (io_uring_register_buffers_update_tag):
 * READ_FIXED works into buffers that growth added past what was registered
 * at create, a released region leaves the table (a read into it is
 * refused), and its reuse puts it back. One region only: a second would
 * pin over 512 MiB (regions are up to 1 GiB; cbm.h).
 *
 * Exit 77 (skipped), saying why, where io_uring is not available.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cbm.h>
#include <liburing.h>

#define BLOCK (64 * 1024)
#define BUFFERS 48
#define SKIP 77

static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
			failures++;                                            \
		}                                                              \
	} while (0)

/* The file's byte at off: not periodic in any power of two. */
static unsigned char
byte_at(size_t off)
{
	return (unsigned char)((off * 2654435761u) >> 13 ^ off / 4093);
}

static int
make_file(const char *dir, char *path, size_t size)
{
	unsigned char *data = malloc(size);
	int fd;

	snprintf(path, 4096, "%s/regions-uring.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0 || data == NULL) {
		perror("scratch file");
		exit(1);
	}
	for (size_t i = 0; i < size; i++)
		data[i] = byte_at(i);
	if (write(fd, data, size) != (ssize_t)size || fsync(fd)) {
		perror("write scratch file");
		exit(1);
	}
	free(data);
	close(fd);
	return 0;
}

/* One READ_FIXED of len bytes at off into p, waited for; its result. */
static int
read_fixed(struct io_uring *ring, int fd, void *p, unsigned len, off_t off,
	   int index)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int rc;

	io_uring_prep_read_fixed(sqe, fd, p, len, off, index);
	rc = io_uring_submit_and_wait(ring, 1);
	if (rc < 0)
		return rc;
	rc = io_uring_wait_cqe(ring, &cqe);
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return rc;
}

static bool
same_as_file(const unsigned char *p, size_t len, size_t off)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != byte_at(off + i)) {
			printf("byte %zu of the file (at %p) is %u, expected "
			       "%u\n",
			       off + i, (const void *)(p + i), p[i],
			       byte_at(off + i));
			return false;
		}
	return true;
}

/* The application's side of the region callbacks: the ring's table. */
struct table {
	struct io_uring *ring;
	int maps, unmaps, errors;
	size_t len[4]; /* what each slot holds now (0: empty) */
};

static void
update_slot(struct table *t, void *addr, size_t len, unsigned index)
{
	struct iovec iov = {.iov_base = addr, .iov_len = len};
	__u64 tag = 0;
	int rc;

	if (index >= 4) {
		t->errors++;
		return;
	}
	rc = io_uring_register_buffers_update_tag(t->ring, index, &iov, &tag,
						  1);
	if (rc != 1) {
		printf("update of slot %u to %zu bytes: %d (%s)\n", index, len,
		       rc, rc < 0 ? strerror(-rc) : "?");
		t->errors++;
		return;
	}
	t->len[index] = len;
}

static void
table_map(void *arg, void *addr, size_t len, unsigned index)
{
	struct table *t = arg;

	t->maps++;
	update_slot(t, addr, len, index);
}

static void
table_unmap(void *arg, void *addr, size_t len, unsigned index)
{
	struct table *t = arg;

	(void)addr;
	(void)len;
	t->unmaps++;
	update_slot(t, NULL, 0, index); /* an empty slot */
}

/* READ_FIXED into each of bufs[0..n), its own block of the file. */
static void
read_each(struct io_uring *ring, int fd, cbm_pool *pool, void **bufs, int n,
	  const char *when)
{
	for (int i = 0; i < n; i++) {
		int rc = read_fixed(ring, fd, bufs[i], BLOCK, (off_t)i * BLOCK,
				    cbm_region_index(pool, bufs[i]));

		CHECK(rc == BLOCK, "%s: READ_FIXED into buffer %d: %d (%s)",
		      when, i, rc, rc < 0 ? strerror(-rc) : "short");
		CHECK(rc == BLOCK &&
			      same_as_file(bufs[i], BLOCK, (size_t)i * BLOCK),
		      "%s: buffer %d", when, i);
	}
}

/* 0, or SKIP when the kernel has no sparse buffer table. */
static int
elastic_registered(struct io_uring *ring, int fd)
{
	enum { START = 8 };
	struct table t = {.ring = ring};
	cbm_pool_config cfg = {.block_size = BLOCK,
			       .capacity = START,
			       .max_capacity = BUFFERS,
			       .align = 4096,
			       .release_ms = CBM_RELEASE_OFF,
			       .name = "regions-uring-elastic",
			       .on_map = table_map,
			       .on_unmap = table_unmap,
			       .region_arg = &t};
	void *bufs[BUFFERS];
	cbm_pool *pool;
	int rc;

	rc = io_uring_register_buffers_sparse(ring, 4);
	if (rc < 0) {
		printf("skipped: no sparse registered buffers here (%s; Linux "
		       "5.19+)\n",
		       strerror(-rc));
		return SKIP;
	}
	if (cbm_pool_create(&cfg, &pool)) {
		printf("FAIL: cannot make the elastic pool\n");
		return 1;
	}
	CHECK(t.maps == 1 && t.len[0] == START * BLOCK,
	      "at create: %d maps, slot 0 %zu bytes", t.maps, t.len[0]);
	/* Growth past the first START: the slot must follow, or the reads
	 * into the new buffers fault. */
	CHECK(cbm_alloc_bulk(pool, bufs, BUFFERS) == 0, "alloc_bulk");
	CHECK(t.len[0] == (size_t)BUFFERS * BLOCK, "after growth slot 0 %zu",
	      t.len[0]);
	read_each(ring, fd, pool, bufs, BUFFERS, "after growth");
	/* Release: the region leaves the table first. */
	cbm_free_bulk(pool, bufs, BUFFERS);
	CHECK(cbm_pool_trim(pool) >= 0, "trim");
	CHECK(cbm_pool_release(pool) > 0, "release gave nothing back");
	CHECK(t.unmaps == 1 && t.len[0] == 0, "after release: %d unmaps",
	      t.unmaps);
	rc = read_fixed(ring, fd, bufs[0], BLOCK, 0, 0);
	CHECK(rc < 0, "a read into a released region gave %d", rc);
	/* Reuse: back in the table before any buffer is handed out. */
	CHECK(cbm_alloc_bulk(pool, bufs, BUFFERS) == 0, "alloc_bulk again");
	CHECK(t.len[0] == (size_t)BUFFERS * BLOCK, "after reuse slot 0 %zu",
	      t.len[0]);
	read_each(ring, fd, pool, bufs, BUFFERS, "after reuse");
	cbm_free_bulk(pool, bufs, BUFFERS);
	CHECK(cbm_pool_verify(pool) == 0, "verify");
	cbm_pool_destroy(pool);
	CHECK(t.unmaps == 2 && t.len[0] == 0, "destroy: %d unmaps", t.unmaps);
	CHECK(t.errors == 0, "%d table updates failed", t.errors);
	io_uring_unregister_buffers(ring);
	return 0;
}

int
main(int argc, char **argv)
{
	cbm_pool_config cfg = {.block_size = BLOCK,
			       .capacity = BUFFERS,
			       .align = 4096,
			       .name = "regions-uring"};
	char path[4096];
	struct iovec iov[4];
	void *bufs[BUFFERS];
	struct io_uring ring;
	cbm_pool *pool;
	bool direct = true;
	int fd, n, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	rc = io_uring_queue_init(8, &ring, 0);
	if (rc < 0) {
		printf("skipped: io_uring is not available here (%s)\n",
		       strerror(-rc));
		return SKIP;
	}
	if (cbm_pool_create(&cfg, &pool)) {
		printf("FAIL: cannot make the pool\n");
		return 1;
	}
	n = cbm_pool_regions(pool, iov, 4);
	CHECK(n == 1, "%d regions for a pool of 3 MiB", n);
	rc = io_uring_register_buffers(&ring, iov, (unsigned)n);
	if (rc == -ENOMEM || rc == -EPERM) {
		printf("skipped: cannot register buffers here (%s; "
		       "RLIMIT_MEMLOCK?)\n",
		       strerror(-rc));
		return SKIP;
	}
	CHECK(rc == 0, "io_uring_register_buffers: %s", strerror(-rc));

	make_file(argv[1], path, (size_t)BUFFERS * BLOCK + 1000);
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		printf("note: %s has no O_DIRECT; buffered reads\n", argv[1]);
		direct = false;
		fd = open(path, O_RDONLY);
	}
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));

	/* Every buffer: its own block of the file, into its region. */
	CHECK(cbm_alloc_bulk(pool, bufs, BUFFERS) == 0, "alloc_bulk");
	for (int i = 0; i < BUFFERS; i++) {
		int index = cbm_region_index(pool, bufs[i]);

		CHECK(index >= 0 && index < n, "index %d", index);
		rc = read_fixed(&ring, fd, bufs[i], BLOCK, (off_t)i * BLOCK,
				index);
		CHECK(rc == BLOCK, "READ_FIXED into buffer %d: %d (%s)", i, rc,
		      rc < 0 ? strerror(-rc) : "short");
		CHECK(same_as_file(bufs[i], BLOCK, (size_t)i * BLOCK),
		      "buffer %d", i);
	}
	/* Starting 4 KiB into a buffer (aligned, for O_DIRECT), with the
	 * index of that interior address; the last buffer reads the file's
	 * tail, short. */
	for (int i = 0; i < BUFFERS; i += 7) {
		unsigned char *p = (unsigned char *)bufs[i] + 4096;
		size_t off = (size_t)(BUFFERS - 1 - i) * BLOCK + 8192;
		size_t want = BLOCK - 4096;

		if (off + want > (size_t)BUFFERS * BLOCK + 1000)
			want = (size_t)BUFFERS * BLOCK + 1000 - off;
		rc = read_fixed(&ring, fd, p, BLOCK - 4096, (off_t)off,
				cbm_region_index(pool, p));
		CHECK(rc == (int)want, "interior READ_FIXED %d: %d", i, rc);
		CHECK(rc > 0 && same_as_file(p, (size_t)rc, off),
		      "interior read into buffer %d", i);
	}
	/* A read that would run past the end of the region: the kernel
	 * refuses it, so the registration is exactly the regions. */
	rc = read_fixed(&ring, fd,
			(char *)iov[0].iov_base + iov[0].iov_len - 4096, 8192,
			0, 0);
	CHECK(rc == -EFAULT, "a read past the region's end gave %d", rc);

	cbm_free_bulk(pool, bufs, BUFFERS);
	io_uring_unregister_buffers(&ring);
	CHECK(cbm_pool_verify(pool) == 0, "verify");
	cbm_pool_destroy(pool);
	rc = elastic_registered(&ring, fd);
	close(fd);
	unlink(path);
	io_uring_queue_exit(&ring);
	if (rc == SKIP && failures == 0)
		return SKIP;
	if (failures == 0)
		printf("ok: %d buffers read with READ_FIXED%s, checked byte "
		       "for byte; an elastic pool's table kept in step through "
		       "growth, release and reuse\n",
		       BUFFERS, direct ? " and O_DIRECT" : "");
	return failures || rc ? 1 : 0;
}
