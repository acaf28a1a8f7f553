/* SPDX-License-Identifier: MIT */
/*
 * What file_server needs to turn a request into a file and a byte range:
 * the request target made a path beneath the served root (or refused),
 * the file opened without leaving the root, and a single Range header.
 */
#ifndef EXAMPLES_FILES_H
#define EXAMPLES_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FILES_PATH_MAX 1024

/*
 * The origin-form target t[0..n) (a '/', a path, maybe '?query') as a
 * path relative to the root in out (NUL-terminated, FILES_PATH_MAX bytes):
 * percent-decoded, the query dropped. Returns 0; 400 for a target that is
 * not origin-form, a bad %-escape, a NUL or a path too long; 403 for a
 * ".." segment, in whatever encoding (it is looked for after decoding, so
 * "%2e%2e", "%2E." and "..%2f" are caught too); 404 for a directory (an
 * empty path, or one ending in '/').
 */
int files_path(const char *t, size_t n, char *out);

/*
 * Open path beneath the directory root_fd, read-only, with O_DIRECT when
 * direct and the file system allows it (*got_direct says). No step of the
 * walk may leave the root: not "..", not a symlink that points outside
 * (openat2 RESOLVE_BENEATH, Linux 5.6; before that every symlink is
 * refused). Only regular files. Returns the descriptor and its size in
 * *size, or minus an HTTP status: -403 (leaves the root, or not
 * readable), -404 (no such regular file), -500.
 */
int files_open(int root_fd, const char *path, bool direct, bool *got_direct,
	       uint64_t *size);

enum files_range {
	RANGE_NONE,	     /* the whole file: 200 */
	RANGE_PARTIAL,	     /* [*start, *start + *len): 206 */
	RANGE_UNSATISFIABLE, /* 416 */
};

/*
 * The Range header's value v[0..n) against a file of size bytes: a single
 * "bytes=A-B", "bytes=A-" or "bytes=-N". Several ranges, another unit or a
 * value that does not parse are ignored (RFC 9110 14.2: a server may), so
 * the answer is the whole file.
 */
enum files_range files_range(const char *v, size_t n, uint64_t size,
			     uint64_t *start, uint64_t *len);

#endif /* EXAMPLES_FILES_H */
