/* SPDX-License-Identifier: MIT */
/* Request targets to files beneath the root, and ranges (files.h). */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int
hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
files_path(const char *t, size_t n, char *out)
{
	size_t o = 0, seg;

	if (n == 0 || t[0] != '/')
		return 400;
	for (size_t i = 1; i < n && t[i] != '?'; i++) {
		char c = t[i];

		if (c == '%') {
			int hi = i + 2 < n ? hex(t[i + 1]) : -1;
			int lo = i + 2 < n ? hex(t[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return 400;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0' || o + 1 >= FILES_PATH_MAX)
			return 400;
		/* Leading and repeated slashes name nothing. */
		if (c == '/' && (o == 0 || out[o - 1] == '/'))
			continue;
		out[o++] = c;
	}
	out[o] = '\0';
	/* Every segment, now that nothing is encoded any more. */
	for (size_t i = 0; i <= o; i = seg + 1) {
		seg = i;
		while (seg < o && out[seg] != '/')
			seg++;
		if (seg - i == 2 && out[i] == '.' && out[i + 1] == '.')
			return 403;
	}
	if (o == 0 || out[o - 1] == '/')
		return 404;
	return 0;
}

/* openat2 beneath root: -ENOSYS where the kernel has none. */
static int
open_beneath(int root_fd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)flags,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* Without openat2: walk the path one component at a time, refusing
 * every symlink (O_NOFOLLOW) and "." as well as "..". */
static int
open_walk(int root_fd, const char *path, int flags)
{
	char part[FILES_PATH_MAX];
	int dir = root_fd;

	for (;;) {
		const char *slash = strchr(path, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);
		int fd;

		memcpy(part, path, len);
		part[len] = '\0';
		if (strcmp(part, ".") == 0) {
			fd = -ELOOP;
		} else {
			fd = openat(dir, part,
				    slash ? O_PATH | O_DIRECTORY | O_NOFOLLOW |
						    O_CLOEXEC
					  : flags | O_NOFOLLOW);
			if (fd < 0)
				fd = -errno;
		}
		if (dir != root_fd)
			close(dir);
		if (fd < 0 || slash == NULL)
			return fd;
		dir = fd;
		path = slash + 1;
	}
}

static int
status_of(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ENAMETOOLONG:
		return 404;
	case EXDEV: /* RESOLVE_BENEATH: the walk would leave the root */
	case ELOOP: /* a symlink where none may be */
	case EACCES:
	case EPERM:
		return 403;
	default:
		return 500;
	}
}

int
files_open(int root_fd, const char *path, bool direct, bool *got_direct,
	   uint64_t *size)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct stat st;
	int fd = -EINVAL;

	*got_direct = false;
	/* O_NONBLOCK: a FIFO someone put in the tree must not block the
	 * open; it is refused below, as is anything but a regular file. */
	if (direct) {
		fd = open_beneath(root_fd, path, flags | O_DIRECT);
		if (fd == -ENOSYS)
			fd = open_walk(root_fd, path, flags | O_DIRECT);
		*got_direct = fd >= 0;
	}
	/* EINVAL: this file system has no O_DIRECT (tmpfs). */
	if (fd == -EINVAL) {
		fd = open_beneath(root_fd, path, flags);
		if (fd == -ENOSYS)
			fd = open_walk(root_fd, path, flags);
	}
	if (fd < 0)
		return -status_of(-fd);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -404;
	}
	/* Regular files ignore O_NONBLOCK for reads, but say what we mean. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*size = (uint64_t)st.st_size;
	return fd;
}

/* A decimal number at v[*i..n), up to a byte not a digit. */
static bool
number(const char *v, size_t n, size_t *i, uint64_t *out)
{
	uint64_t x = 0;
	size_t start = *i;

	while (*i < n && v[*i] >= '0' && v[*i] <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(v[*i] - '0');
		(*i)++;
	}
	*out = x;
	return *i > start;
}

enum files_range
files_range(const char *v, size_t n, uint64_t size, uint64_t *start,
	    uint64_t *len)
{
	uint64_t a, b;
	size_t i = 6;

	if (n < 7 || strncmp(v, "bytes=", 6) != 0)
		return RANGE_NONE;
	if (v[i] == '-') { /* the last b bytes */
		i++;
		if (!number(v, n, &i, &b) || i != n)
			return RANGE_NONE;
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		if (b > size)
			b = size;
		*start = size - b;
		*len = b;
		return RANGE_PARTIAL;
	}
	if (!number(v, n, &i, &a) || i == n || v[i++] != '-')
		return RANGE_NONE;
	if (i == n) {
		b = UINT64_MAX;
	} else if (!number(v, n, &i, &b) || i != n || b < a) {
		return RANGE_NONE;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	if (b >= size)
		b = size - 1;
	*start = a;
	*len = b - a + 1;
	return RANGE_PARTIAL;
}
