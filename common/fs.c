/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/banned.h"

static bool openat2_disabled;

void kfs_set_openat2_disabled(bool disabled)
{
        openat2_disabled = disabled;
}

int kfs_close(int fd)
{
        int r;

        if (fd < 0)
                return 0;
        r = close(fd);
        if (r < 0 && errno == EINTR)
                return 0;
        return r;
}

ssize_t kfs_read_all(int fd, void *buf, size_t n)
{
        size_t done = 0;

        while (done < n) {
                ssize_t r = read(fd, (char *)buf + done, n - done);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                if (r == 0)
                        break;
                done += (size_t)r;
        }
        return (ssize_t)done;
}

int kfs_write_all(int fd, const void *buf, size_t n)
{
        size_t done = 0;

        while (done < n) {
                ssize_t r = write(fd, (const char *)buf + done, n - done);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                if (r == 0) {
                        errno = EIO;
                        return -1;
                }
                done += (size_t)r;
        }
        return 0;
}

int kfs_read_fd(int fd, const char *name, size_t max, struct kbuf *out, struct kerr **err)
{
        char chunk[65536];

        for (;;) {
                ssize_t r = read(fd, chunk, sizeof(chunk));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return kerr_set(err, errno, KERR_IO, "read '%s'", name);
                }
                if (r == 0)
                        break;
                if (max && out->len + (size_t)r > max)
                        return kerr_set(err, 0, KERR_INVALID, "'%s' is larger than %zu bytes", name,
                                        max);
                kbuf_append(out, chunk, (size_t)r);
        }
        if (!out->data)
                kbuf_grow(out, 0), out->data[0] = '\0';
        return 0;
}

int kfs_read_file(int dirfd, const char *path, size_t max, struct kbuf *out, struct kerr **err)
{
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        int r;

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", path);
        r = kfs_read_fd(fd, path, max, out, err);
        kfs_close(fd);
        return r;
}

int kfs_mkdir_p(int dirfd, const char *path, mode_t mode, struct kerr **err)
{
        char *p = kstrdup(path);
        size_t len = strlen(p);
        struct stat st;
        int r = 0;

        while (len > 1 && p[len - 1] == '/')
                p[--len] = '\0';
        for (char *s = p + 1;; s++) {
                char c = *s;
                if (c != '/' && c != '\0')
                        continue;
                *s = '\0';
                if (mkdirat(dirfd, p, mode) < 0 && errno != EEXIST) {
                        r = kerr_set(err, errno, KERR_IO, "create directory '%s'", p);
                        break;
                }
                if (fstatat(dirfd, p, &st, 0) < 0) {
                        r = kerr_set(err, errno, KERR_IO, "stat '%s'", p);
                        break;
                }
                if (!S_ISDIR(st.st_mode)) {
                        r = kerr_set(err, ENOTDIR, KERR_IO, "create directory '%s'", p);
                        break;
                }
                *s = c;
                if (c == '\0')
                        break;
        }
        free(p);
        return r;
}

int kfs_write_atomic(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                     struct kerr **err)
{
        struct kbuf tmp = KBUF_INIT;
        const char *slash = strrchr(path, '/');
        char *dir = slash ? kstrndup(path, (size_t)(slash - path + (slash == path))) : NULL;
        int fd = -1, dfd = -1, r = -1;

        kbuf_printf(&tmp, "%s.tmp-%d-%lx", path, (int)getpid(), (unsigned long)random());
        fd = openat(dirfd, tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0) {
                kerr_set(err, errno, KERR_IO, "create '%s'", tmp.data);
                goto out;
        }
        if (kfs_write_all(fd, data, len) < 0) {
                kerr_set(err, errno, KERR_IO, "write '%s'", tmp.data);
                goto fail;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                kerr_set(err, errno, KERR_IO, "sync '%s'", tmp.data);
                goto fail;
        }
        if (kfs_close(fd) < 0) {
                fd = -1;
                kerr_set(err, errno, KERR_IO, "close '%s'", tmp.data);
                goto fail;
        }
        fd = -1;
        if (renameat(dirfd, tmp.data, dirfd, path) < 0) {
                kerr_set(err, errno, KERR_IO, "rename '%s' to '%s'", tmp.data, path);
                goto fail;
        }
        /* The rename is durable only once the directory itself is synced. */
        dfd = openat(dirfd, dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0) {
                kerr_set(err, errno, KERR_IO, "sync directory of '%s'", path);
                goto out;
        }
        r = 0;
        goto out;
fail:
        unlinkat(dirfd, tmp.data, 0);
out:
        kfs_close(fd);
        kfs_close(dfd);
        kbuf_release(&tmp);
        free(dir);
        return r;
}

int kfs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, unsigned resolve,
                     struct kerr **err)
{
        struct open_how how = {
                .flags = (unsigned long long)(flags | O_CLOEXEC),
                .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        long fd;

        if (resolve & KFS_RESOLVE_NO_XDEV)
                how.resolve |= RESOLVE_NO_XDEV;
        if (resolve & KFS_RESOLVE_NO_SYMLINKS)
                how.resolve |= RESOLVE_NO_SYMLINKS;
        if (openat2_disabled) {
                errno = ENOSYS;
                fd = -1;
        } else {
                /* RESOLVE_IN_ROOT answers EAGAIN when a rename raced the lookup. */
                int tries = 0;
                do
                        fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
                while (fd < 0 && errno == EAGAIN && ++tries < 32);
        }
        if (fd < 0 && errno == ENOSYS)
                return kerr_set(err, 0, KERR_UNSUPPORTED,
                                "open '%s': this kernel has no openat2 (Linux 5.6 or newer is "
                                "needed to resolve paths safely inside a root)",
                                path);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", path);
        return (int)fd;
}
