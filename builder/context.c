/* SPDX-License-Identifier: Apache-2.0 */
#include "builder/builder.h"
#include "builder/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "parser/parser.h"
#include "common/banned.h"

/* Ignore files larger than this are refused rather than read into memory. */
#define IGNORE_MAX (16u << 20)

struct builder_context {
        int fd;
        struct parser_ignore *ignore; /* NULL: no ignore file */
        char *ignore_name;
};

void builder_context_free(struct builder_context *c)
{
        if (!c)
                return;
        kfs_close(c->fd);
        parser_ignore_free(c->ignore);
        free(c->ignore_name);
        free(c);
}

DEFINE_CLEANUP(struct builder_context *, builder_context_free)

static int load_ignore(struct builder_context *c, const char *ignorefile, struct kerr **err)
{
        static const char *const names[] = {".containerignore", ".dockerignore"};
        struct kbuf data = KBUF_INIT;
        _cleanup_close_ int fd = -1;
        const char *name = NULL;

        if (ignorefile) {
                /* Given on the command line: the user's own path, not the context's. */
                fd = open(ignorefile, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return kerr_set(err, errno, KERR_IO, "open ignore file '%s'", ignorefile);
                name = ignorefile;
        } else {
                for (size_t i = 0; i < ARRAY_SIZE(names) && fd < 0; i++) {
                        struct kerr *e = NULL;
                        fd = kfs_open_in_root(c->fd, names[i], O_RDONLY | O_NOCTTY, 0,
                                              KFS_RESOLVE_NO_XDEV, &e);
                        if (fd < 0 && e->errnum != ENOENT) {
                                int en = e->errnum;
                                kerr_free(e);
                                return kerr_set(err, en, KERR_IO, "read '%s' in the build context",
                                                names[i]);
                        }
                        kerr_free(e);
                        name = names[i];
                }
                if (fd < 0)
                        return 0;
        }
        if (kfs_read_fd(fd, name, IGNORE_MAX, &data, err) < 0) {
                kbuf_release(&data);
                return -1;
        }
        c->ignore = parser_ignore_parse(name, data.data, data.len, err);
        kbuf_release(&data);
        if (!c->ignore)
                return -1;
        c->ignore_name = kstrdup(name);
        return 0;
}

struct builder_context *builder_context_open(const char *dir, const char *ignorefile,
                                             struct kerr **err)
{
        _cleanup_(builder_context_freep) struct builder_context *c = kcalloc(1, sizeof(*c));

        c->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->fd < 0) {
                kerr_set(err, errno, errno == ENOENT ? KERR_NOTFOUND : KERR_IO,
                         "open build context '%s'", dir);
                return NULL;
        }
        if (load_ignore(c, ignorefile, err) < 0)
                return NULL;
        return TAKE_PTR(c);
}

int builder_context_fd(const struct builder_context *c)
{
        return c->fd;
}

const char *builder_context_ignore_name(const struct builder_context *c)
{
        if (!c->ignore_name)
                return ".containerignore";
        const char *slash = strrchr(c->ignore_name, '/');
        return slash ? slash + 1 : c->ignore_name;
}

bool builder_context_ignored(const struct builder_context *c, const char *path)
{
        while (*path == '/')
                path++;
        if (!c->ignore || !*path)
                return false;
        return parser_ignore_match(c->ignore, path);
}

bool builder_context_has_ignore(const struct builder_context *c)
{
        return c->ignore && parser_ignore_count(c->ignore) > 0;
}

bool builder_context_ignore_has_exceptions(const struct builder_context *c)
{
        return c->ignore && parser_ignore_has_exceptions(c->ignore);
}

/* Opens path in the context. Resolved paths have no symlinks on the way, so none is
 * followed: a link swapped in meanwhile makes the open fail instead of escaping. */
static int ctx_open(const struct builder_context *c, const char *path, int flags, struct kerr **err)
{
        struct kerr *e = NULL;
        int fd = kfs_open_in_root(c->fd, path, flags | O_NOFOLLOW, 0,
                                  KFS_RESOLVE_NO_XDEV | KFS_RESOLVE_NO_SYMLINKS, &e);

        if (fd >= 0)
                return fd;
        int en = e->errnum;
        if (en == ENOENT || en == ENOTDIR || en == ELOOP) {
                kerr_free(e);
                return en == ENOENT ? -ENOENT : -ENOTDIR;
        }
        if (err) {
                kerr_free(*err);
                *err = e;
        } else {
                kerr_free(e);
        }
        return -EIO;
}

int builder_context_lookup(void *root, const char *path, struct stat *st, char **ret_target,
                           struct kerr **err)
{
        struct builder_context *c = root;
        _cleanup_close_ int fd = ctx_open(c, path, O_PATH, err);

        if (fd == -ENOENT || fd == -ENOTDIR)
                return fd;
        if (fd < 0)
                return kerr_wrap(err, "look up '%s' in the build context", path);
        if (fstat(fd, st) < 0)
                return kerr_set(err, errno, KERR_IO, "stat '%s' in the build context", path);
        if (S_ISLNK(st->st_mode) && ret_target) {
                _cleanup_free_ char *buf = kcalloc(1, (size_t)PATH_MAX + 1);
                ssize_t n = readlinkat(fd, "", buf, PATH_MAX);
                if (n < 0)
                        return kerr_set(err, errno, KERR_IO, "read link '%s'", path);
                buf[n] = '\0';
                *ret_target = TAKE_PTR(buf);
        }
        return 0;
}

int builder_context_open_file(const struct builder_context *c, const char *path, struct kerr **err)
{
        int fd = ctx_open(c, path, O_RDONLY | O_NOCTTY, err);

        if (fd == -ENOENT || fd == -ENOTDIR)
                return kerr_set(err, -fd, KERR_NOTFOUND, "open '%s' in the build context", path);
        if (fd < 0)
                return kerr_wrap(err, "open '%s' in the build context", path);
        return fd;
}

int builder_context_readdir(const struct builder_context *c, const char *path, char ***ret_names,
                            size_t *ret_n, struct kerr **err)
{
        _cleanup_close_ int fd = builder_context_open_dir(c, path, err);
        struct builder_dirent *ents = NULL;
        size_t n = 0;

        if (fd < 0 || builder_context_list(c, fd, path, &ents, &n, err) < 0)
                return -1;
        char **names = kcalloc(n + 1, sizeof(*names));
        for (size_t i = 0; i < n; i++)
                names[i] = TAKE_PTR(ents[i].name);
        builder_dirents_free(ents, n);
        *ret_names = names;
        *ret_n = n;
        return 0;
}

int builder_context_open_dir(const struct builder_context *c, const char *path, struct kerr **err)
{
        int fd = ctx_open(c, path, O_RDONLY | O_DIRECTORY, err);

        if (fd == -ENOENT || fd == -ENOTDIR)
                return kerr_set(err, -fd, KERR_NOTFOUND, "read directory '%s'", path);
        if (fd < 0)
                return kerr_wrap(err, "read directory '%s' in the build context", path);
        return fd;
}

int builder_context_open_at(const struct builder_context *c, int dir_fd, const char *path,
                            const char *name, int flags, struct kerr **err)
{
        _cleanup_free_ char *p = builder_path_join(path, name);
        struct kerr *e = NULL;
        int fd;

        (void)c;
        if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return kerr_set(err, EINVAL, KERR_INTERNAL, "bad entry name '%s' in '%s'", name,
                                path);
        /* A single name below an fd of the context: nothing to resolve but the name itself,
         * which must be neither a symlink nor a mount point. O_NONBLOCK: a file swapped for
         * a FIFO meanwhile must not hang the build. */
        if (!(flags & O_DIRECTORY))
                flags |= O_NONBLOCK;
        fd = kfs_open_in_root(dir_fd, name, flags | O_NOFOLLOW | O_NOCTTY, 0,
                              KFS_RESOLVE_NO_XDEV | KFS_RESOLVE_NO_SYMLINKS, &e);
        if (fd >= 0)
                return fd;
        int en = e->errnum;
        kerr_free(e);
        if (en == ENOENT || en == ENOTDIR || en == ELOOP)
                return kerr_set(err, en == ELOOP ? ENOTDIR : en, KERR_NOTFOUND,
                                "open '%s' in the build context", p);
        return kerr_set(err, en, KERR_IO, "open '%s' in the build context", p);
}

static int cmp_dirent(const void *a, const void *b)
{
        return strcmp(((const struct builder_dirent *)a)->name,
                      ((const struct builder_dirent *)b)->name);
}

static void stat_from_statx(struct stat *st, const struct statx *sx)
{
        *st = (struct stat){
                .st_dev = makedev(sx->stx_dev_major, sx->stx_dev_minor),
                .st_ino = sx->stx_ino,
                .st_mode = sx->stx_mode,
                .st_nlink = sx->stx_nlink,
                .st_uid = sx->stx_uid,
                .st_gid = sx->stx_gid,
                .st_rdev = makedev(sx->stx_rdev_major, sx->stx_rdev_minor),
                .st_size = (off_t)sx->stx_size,
                .st_blksize = (blksize_t)sx->stx_blksize,
                .st_blocks = (blkcnt_t)sx->stx_blocks,
                .st_atim = {sx->stx_atime.tv_sec, sx->stx_atime.tv_nsec},
                .st_mtim = {sx->stx_mtime.tv_sec, sx->stx_mtime.tv_nsec},
                .st_ctim = {sx->stx_ctime.tv_sec, sx->stx_ctime.tv_nsec},
        };
}

int builder_context_list(const struct builder_context *c, int dir_fd, const char *path,
                         struct builder_dirent **ret, size_t *ret_n, struct kerr **err)
{
        /* Its own open file description: a dup would share (and move) dir_fd's offset. */
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct builder_dirent *v = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d = fd < 0 ? NULL : fdopendir(fd);

        (void)c;
        if (!d) {
                kfs_close(fd);
                return kerr_set(err, errno, KERR_IO, "read directory '%s' in the build context",
                                path);
        }
        while ((errno = 0, de = readdir(d))) {
                struct statx sx;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (statx(dirfd(d), de->d_name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                          STATX_BASIC_STATS, &sx) < 0) {
                        if (errno == ENOENT)
                                continue; /* removed meanwhile */
                        _cleanup_free_ char *p = builder_path_join(path, de->d_name);
                        kerr_set(err, errno, KERR_IO, "stat '%s' in the build context", p);
                        goto fail;
                }
                v = kreallocarray(v, n + 1, sizeof(*v));
                v[n].name = kstrdup(de->d_name);
                stat_from_statx(&v[n].st, &sx);
                v[n].mount_root = (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
                                  (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
                n++;
        }
        if (errno) {
                kerr_set(err, errno, KERR_IO, "read directory '%s' in the build context", path);
                goto fail;
        }
        closedir(d);
        if (n)
                qsort(v, n, sizeof(*v), cmp_dirent);
        *ret = v ? v : kcalloc(1, sizeof(*v));
        *ret_n = n;
        return 0;
fail:
        closedir(d);
        builder_dirents_free(v, n);
        return -1;
}
