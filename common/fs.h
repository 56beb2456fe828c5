/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct kbuf;
struct kerr;

/* close() that treats EINTR as closed (Linux always releases the fd). */
int kfs_close(int fd);

/* Reads until n bytes or end of file, retrying EINTR and short reads. Returns the byte
 * count, or -1 with errno set. */
ssize_t kfs_read_all(int fd, void *buf, size_t n);
/* Writes all n bytes, retrying EINTR and short writes. Returns 0, or -1 with errno set. */
int kfs_write_all(int fd, const void *buf, size_t n);

/* Reads the whole file at path (relative to dirfd, AT_FDCWD allowed) into out; fails with
 * KERR_INVALID when it is larger than max bytes (0: no limit). */
int kfs_read_file(int dirfd, const char *path, size_t max, struct kbuf *out, struct kerr **err);
/* Reads fd to its end into out, as kfs_read_file; name is used in errors. */
int kfs_read_fd(int fd, const char *name, size_t max, struct kbuf *out, struct kerr **err);

/* mkdir -p relative to dirfd; existing directories are fine, anything else in the way is
 * an error. */
int kfs_mkdir_p(int dirfd, const char *path, mode_t mode, struct kerr **err);

/* Writes data to path (relative to dirfd) so that readers see either the old file or the
 * whole new one: a temp file in the same directory, fsync, rename, fsync of the directory. */
int kfs_write_atomic(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                     struct kerr **err);

#define KFS_RESOLVE_NO_XDEV (1u << 0)
#define KFS_RESOLVE_NO_SYMLINKS (1u << 1)

/* Opens path as if rootfd were "/": "..", absolute paths and symlinks cannot leave it
 * (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS). Kernels without openat2 get a clear
 * KERR_UNSUPPORTED error, never an unchecked open. Returns an O_CLOEXEC fd or -1. */
int kfs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, unsigned resolve,
                     struct kerr **err);

/* For tests: behave as if the kernel had no openat2. */
void kfs_set_openat2_disabled(bool disabled);
