/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/karchive.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/banned.h"

DEFINE_CLEANUP(struct archive *, archive_write_free)
DEFINE_CLEANUP(struct archive_entry *, archive_entry_free)
DEFINE_CLEANUP(struct kdigest *, kdigest_free)

/* Inodes already written, so that a second name becomes a hard link to the first. */
struct inode_ref {
        dev_t dev;
        ino_t ino;
        char *path;
};

struct tar_writer {
        struct archive *a;
        const struct image_tar_opts *opts;
        image_sink_fn sink;
        void *ctx;
        struct kdigest *digest;
        uint64_t size;
        struct kerr *sink_err;
        struct inode_ref *inodes; /* open addressing, power-of-two capacity */
        size_t n_inodes, cap_inodes;
};

static la_ssize_t write_cb(struct archive *a, void *data, const void *p, size_t n)
{
        struct tar_writer *w = data;

        (void)a;
        if (w->sink(w->ctx, p, n, &w->sink_err) < 0)
                return -1;
        kdigest_update(w->digest, p, n);
        w->size += n;
        return (la_ssize_t)n;
}

static size_t inode_slot(const struct tar_writer *w, dev_t dev, ino_t ino)
{
        uint64_t h =
                ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xff51afd7ed558ccdull);
        size_t i = (size_t)(h ^ (h >> 29)) & (w->cap_inodes - 1);

        while (w->inodes[i].path && (w->inodes[i].dev != dev || w->inodes[i].ino != ino))
                i = (i + 1) & (w->cap_inodes - 1);
        return i;
}

/* Returns the first path of (dev, ino), or records path for it and returns NULL. */
static const char *inode_seen(struct tar_writer *w, dev_t dev, ino_t ino, const char *path)
{
        size_t i;

        if (2 * (w->n_inodes + 1) > w->cap_inodes) {
                struct inode_ref *old = w->inodes;
                size_t old_cap = w->cap_inodes;

                w->cap_inodes = old_cap ? 2 * old_cap : 64;
                w->inodes = kcalloc(w->cap_inodes, sizeof(*w->inodes));
                for (size_t j = 0; j < old_cap; j++)
                        if (old[j].path)
                                w->inodes[inode_slot(w, old[j].dev, old[j].ino)] = old[j];
                free(old);
        }
        i = inode_slot(w, dev, ino);
        if (w->inodes[i].path)
                return w->inodes[i].path;
        w->inodes[i] = (struct inode_ref){dev, ino, kstrdup(path)};
        w->n_inodes++;
        return NULL;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void image_free_names(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

int image_list_dir(int dirfd, const char *path, char ***ret, size_t *ret_n, struct kerr **err)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open directory '%s'", path);
        d = fdopendir(fd);
        if (!d) {
                kfs_close(fd);
                return kerr_set(err, errno, KERR_IO, "open directory '%s'", path);
        }
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de)
                        break;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 16;
                        names = kreallocarray(names, cap, sizeof(*names));
                }
                names[n++] = kstrdup(de->d_name);
        }
        if (errno != 0) {
                int e = errno;
                closedir(d);
                image_free_names(names, n);
                return kerr_set(err, e, KERR_IO, "read directory '%s'", path);
        }
        closedir(d);
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

static bool keep_xattr(const char *name)
{
        if (strcmp(name, "security.capability") == 0)
                return true;
        return strncmp(name, "user.", 5) == 0 && strncmp(name, "user.overlay.", 13) != 0;
}

/* Adds the xattrs a layer keeps, in name order (the listing order depends on the file
 * system). Sets *opaque when overlay marks the directory opaque. */
static int add_xattrs(struct archive_entry *e, int fd, const char *path, bool *opaque,
                      struct kerr **err)
{
        _cleanup_free_ char *list = NULL;
        _cleanup_free_ char **names = NULL;
        ssize_t len;
        size_t n = 0;

        for (;;) {
                len = flistxattr(fd, NULL, 0);
                if (len < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))
                        return 0;
                if (len < 0)
                        return kerr_set(err, errno, KERR_IO, "list xattrs of '%s'", path);
                if (len == 0)
                        return 0;
                free(list);
                list = malloc((size_t)len + 1);
                if (!list)
                        abort();
                len = flistxattr(fd, list, (size_t)len);
                if (len >= 0)
                        break;
                if (errno != ERANGE)
                        return kerr_set(err, errno, KERR_IO, "list xattrs of '%s'", path);
        }
        list[len] = '\0';
        names = kcalloc((size_t)len, sizeof(*names));
        for (char *p = list; p < list + len; p += strlen(p) + 1) {
                if (opaque && (strcmp(p, "trusted.overlay.opaque") == 0 ||
                               strcmp(p, "user.overlay.opaque") == 0)) {
                        char v[2];
                        ssize_t k = fgetxattr(fd, p, v, sizeof(v));
                        if (k == 1 && v[0] == 'y')
                                *opaque = true;
                }
                if (keep_xattr(p))
                        names[n++] = p;
        }
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp_names);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *value = NULL;
                ssize_t k;

                for (;;) {
                        k = fgetxattr(fd, names[i], NULL, 0);
                        if (k < 0 && errno == ENODATA)
                                break;
                        if (k < 0)
                                return kerr_set(err, errno, KERR_IO, "read xattr '%s' of '%s'",
                                                names[i], path);
                        free(value);
                        value = malloc((size_t)k + 1);
                        if (!value)
                                abort();
                        k = fgetxattr(fd, names[i], value, (size_t)k);
                        if (k >= 0 || errno != ERANGE)
                                break;
                }
                if (k < 0 && errno == ENODATA)
                        continue;
                if (k < 0)
                        return kerr_set(err, errno, KERR_IO, "read xattr '%s' of '%s'", names[i],
                                        path);
                archive_entry_xattr_add_entry(e, names[i], value, (size_t)k);
        }
        return 0;
}

static void set_common(struct tar_writer *w, struct archive_entry *e, const char *name,
                       const struct stat *st)
{
        int64_t mtime = (int64_t)st->st_mtim.tv_sec;

        /* Whole seconds, no atime or ctime, numeric owners only: a pure function of the
         * tree that survives a round trip through a file system. */
        if (w->opts && w->opts->clamp_mtime >= 0 && mtime > w->opts->clamp_mtime)
                mtime = w->opts->clamp_mtime;
        archive_entry_set_pathname(e, name);
        archive_entry_set_mode(e, st->st_mode);
        archive_entry_set_uid(e, st->st_uid);
        archive_entry_set_gid(e, st->st_gid);
        archive_entry_set_mtime(e, (time_t)mtime, 0);
}

static int write_header(struct tar_writer *w, struct archive_entry *e, struct kerr **err)
{
        int r = archive_write_header(w->a, e);

        /* ARCHIVE_WARN: a name that is not text in the locale's charset went out as its
         * bytes (pax hdrcharset=BINARY), as Go's archive/tar writes every name. */
        if (r != ARCHIVE_OK && (r != ARCHIVE_WARN || w->sink_err)) {
                if (w->sink_err) {
                        *err = TAKE_PTR(w->sink_err);
                        return kerr_wrap(err, "write layer entry '%s'", archive_entry_pathname(e));
                }
                return kerr_from_archive(err, w->a, "write layer entry '%s'",
                                         archive_entry_pathname(e));
        }
        return 0;
}

static int write_data(struct tar_writer *w, int fd, const char *name, off_t size, struct kerr **err)
{
        _cleanup_free_ char *buf = malloc(128 * 1024);
        off_t left = size;

        if (!buf)
                abort();
        while (left > 0) {
                size_t want = left < 128 * 1024 ? (size_t)left : 128 * 1024;
                ssize_t k = kfs_read_all(fd, buf, want);

                if (k < 0)
                        return kerr_set(err, errno, KERR_IO, "read '%s'", name);
                if ((size_t)k != want)
                        return kerr_set(err, 0, KERR_IO, "'%s' shrank while it was read", name);
                if (archive_write_data(w->a, buf, want) != (la_ssize_t)want) {
                        if (w->sink_err) {
                                *err = TAKE_PTR(w->sink_err);
                                return kerr_wrap(err, "write layer entry '%s'", name);
                        }
                        return kerr_from_archive(err, w->a, "write layer entry '%s'", name);
                }
                left -= (off_t)want;
        }
        return 0;
}

static int walk(struct tar_writer *w, int dirfd, const char *prefix, struct kerr **err);

static int write_one(struct tar_writer *w, int dirfd, const char *prefix, const char *base,
                     struct kerr **err)
{
        _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int fd = -1;
        struct kbuf nb = KBUF_INIT;
        struct stat st, st2;
        bool opaque = false;

        if (!e)
                abort();
        kbuf_printf(&nb, "%s%s", prefix, base);
        name = kbuf_detach(&nb);
        if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return kerr_set(err, errno, KERR_IO, "stat '%s'", name);

        switch (st.st_mode & S_IFMT) {
        case S_IFDIR: {
                _cleanup_free_ char *dname = NULL;

                fd = openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return kerr_set(err, errno, KERR_IO, "open directory '%s'", name);
                if (fstat(fd, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)
                        return kerr_set(err, 0, KERR_IO, "'%s' changed while it was read", name);
                kbuf_printf(&nb, "%s/", name);
                dname = kbuf_detach(&nb);
                set_common(w, e, dname, &st);
                if (add_xattrs(e, fd, name, &opaque, err) < 0)
                        return -1;
                if (write_header(w, e, err) < 0)
                        return -1;
                if (opaque) {
                        /* As docker's overlay converter: a regular file that inherits the
                         * directory's owner, permissions and time. */
                        struct stat o = st;
                        _cleanup_free_ char *oname = NULL;

                        kbuf_printf(&nb, "%s.wh..wh..opq", dname);
                        oname = kbuf_detach(&nb);
                        o.st_mode = S_IFREG | (st.st_mode & 0777);
                        archive_entry_clear(e);
                        set_common(w, e, oname, &o);
                        archive_entry_set_size(e, 0);
                        if (write_header(w, e, err) < 0)
                                return -1;
                }
                return walk(w, fd, dname, err);
        }
        case S_IFCHR:
                if (major(st.st_rdev) == 0 && minor(st.st_rdev) == 0) {
                        /* An overlay whiteout (checked before hard links: overlay shares
                         * one whiteout inode between many names). */
                        _cleanup_free_ char *wname = NULL;
                        struct stat o = st;

                        kbuf_printf(&nb, "%s.wh.%s", prefix, base);
                        wname = kbuf_detach(&nb);
                        o.st_mode = S_IFREG | 0600;
                        set_common(w, e, wname, &o);
                        archive_entry_set_size(e, 0);
                        return write_header(w, e, err);
                }
                break;
        case S_IFSOCK:
                return 0;
        default:
                break;
        }

        set_common(w, e, name, &st);
        if (st.st_nlink > 1) {
                const char *first = inode_seen(w, st.st_dev, st.st_ino, name);
                if (first) {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_perm(e, st.st_mode & 07777);
                        archive_entry_set_hardlink(e, first);
                        archive_entry_set_size(e, 0);
                        return write_header(w, e, err);
                }
        }

        switch (st.st_mode & S_IFMT) {
        case S_IFREG:
                fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
                if (fd < 0)
                        return kerr_set(err, errno, KERR_IO, "open '%s'", name);
                if (fstat(fd, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)
                        return kerr_set(err, 0, KERR_IO, "'%s' changed while it was read", name);
                archive_entry_set_size(e, st.st_size);
                if (add_xattrs(e, fd, name, NULL, err) < 0)
                        return -1;
                if (write_header(w, e, err) < 0)
                        return -1;
                return write_data(w, fd, name, st.st_size, err);
        case S_IFLNK: {
                _cleanup_free_ char *target = malloc((size_t)st.st_size + 2);
                ssize_t k;

                if (!target)
                        abort();
                k = readlinkat(dirfd, base, target, (size_t)st.st_size + 1);
                if (k < 0)
                        return kerr_set(err, errno, KERR_IO, "read link '%s'", name);
                if (k > st.st_size)
                        return kerr_set(err, 0, KERR_IO, "'%s' changed while it was read", name);
                target[k] = '\0';
                archive_entry_set_symlink(e, target);
                return write_header(w, e, err);
        }
        case S_IFCHR:
        case S_IFBLK:
                archive_entry_set_rdevmajor(e, major(st.st_rdev));
                archive_entry_set_rdevminor(e, minor(st.st_rdev));
                return write_header(w, e, err);
        case S_IFIFO:
                return write_header(w, e, err);
        default:
                return kerr_set(err, 0, KERR_UNSUPPORTED, "'%s' has an unknown file type 0%o", name,
                                (unsigned)(st.st_mode & S_IFMT));
        }
}

/* Writes the entries under dirfd (a directory whose entries are named prefix + name). */
static int walk(struct tar_writer *w, int dirfd, const char *prefix, struct kerr **err)
{
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        if (image_list_dir(dirfd, *prefix ? prefix : ".", &names, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n && r == 0; i++)
                r = write_one(w, dirfd, prefix, names[i], err);
        image_free_names(names, n);
        return r;
}

int image_layer_tar(int dirfd, const struct image_tar_opts *opts, image_sink_fn sink, void *ctx,
                    char ret_diff_id[KDIGEST_STRLEN], uint64_t *ret_size, struct kerr **err)
{
        /* digest first: cleanups run in reverse, and freeing the archive flushes it. */
        _cleanup_(kdigest_freep) struct kdigest *digest = NULL;
        _cleanup_(archive_write_freep) struct archive *a = NULL;
        struct tar_writer w = {.opts = opts, .sink = sink, .ctx = ctx};
        char id[KDIGEST_STRLEN];
        int r = -1;

        if (karchive_load(err) < 0)
                return -1;
        digest = kdigest_new(err);
        a = archive_write_new();

        if (!a)
                abort();
        if (!digest)
                return -1;
        w.a = a;
        w.digest = digest;
        /* pax only where ustar cannot say it; SCHILY xattr records as Go's archive/tar
         * reads them; 10240-byte blocks but no padding of the last one, so the stream ends
         * right after the two zero blocks as docker's and containerd's layers do. */
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY") < ARCHIVE_OK ||
            archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_set_bytes_per_block(a, 10240) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK)
                return kerr_from_archive(err, a, "set up the layer writer");
        if (archive_write_open2(a, &w, NULL, write_cb, NULL, NULL) != ARCHIVE_OK)
                return kerr_from_archive(err, a, "start the layer stream");

        if (walk(&w, dirfd, "", err) < 0)
                goto out;
        if (archive_write_close(a) != ARCHIVE_OK) {
                if (w.sink_err) {
                        *err = TAKE_PTR(w.sink_err);
                        kerr_wrap(err, "finish the layer stream");
                } else {
                        kerr_from_archive(err, a, "finish the layer stream");
                }
                goto out;
        }
        if (kdigest_final(digest, id, err) < 0)
                goto out;
        memcpy(ret_diff_id, id, KDIGEST_STRLEN);
        if (ret_size)
                *ret_size = w.size;
        r = 0;
out:
        kerr_free(w.sink_err);
        for (size_t i = 0; i < w.cap_inodes; i++)
                free(w.inodes[i].path);
        free(w.inodes);
        return r;
}
