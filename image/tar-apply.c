/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <archive.h>
#include <archive_entry.h>
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
#include "common/fs.h"
#include "common/log.h"
#include "common/idmap.h"
#include "common/banned.h"

DEFINE_CLEANUP(struct archive *, archive_read_free)
DEFINE_CLEANUP(struct kdigest *, kdigest_free)

/* A layer is read by two libarchive readers chained in one pass: `raw` undoes any
 * compression (raw format, every filter) and hands the plain tar bytes to `tar` through
 * read_cb, which hashes them on the way, so the diff_id covers exactly the uncompressed
 * stream. Entries are applied by hand (not archive_write_disk): every name is resolved
 * with openat2 RESOLVE_IN_ROOT and created through its parent's fd, so neither "..",
 * absolute names nor symlinks planted by earlier entries can reach outside the root. */

struct deferred_dir {
        char *path;
        mode_t mode;
        struct timespec ts[2];
};

struct applier {
        int rootfd;
        unsigned flags;
        struct archive *raw, *tar;
        struct kdigest *digest;
        /* Paths written by this layer (and their parents), kept by an opaque marker. */
        char **written;
        size_t n_written, cap_written;
        struct deferred_dir *dirs;
        size_t n_dirs, cap_dirs;
        char buf[128 * 1024];
};

static la_ssize_t read_cb(struct archive *a, void *data, const void **ret)
{
        struct applier *ap = data;
        const void *p;
        size_t n;
        la_int64_t off;
        int r = archive_read_data_block(ap->raw, &p, &n, &off);

        if (r == ARCHIVE_EOF)
                return 0;
        if (r < ARCHIVE_WARN) {
                archive_set_error(a, archive_errno(ap->raw) > 0 ? archive_errno(ap->raw) : -1, "%s",
                                  archive_error_string(ap->raw) ? archive_error_string(ap->raw)
                                                                : "decompression failed");
                return -1;
        }
        kdigest_update(ap->digest, p, n);
        *ret = p;
        return (la_ssize_t)n;
}

/* ---- the written set (open addressing on an FNV-1a hash) ---- */

static uint64_t hash_str(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ull;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
        return h;
}

static size_t written_slot(const struct applier *ap, const char *path)
{
        size_t i = (size_t)hash_str(path) & (ap->cap_written - 1);

        while (ap->written[i] && strcmp(ap->written[i], path) != 0)
                i = (i + 1) & (ap->cap_written - 1);
        return i;
}

static bool written_has(const struct applier *ap, const char *path)
{
        return ap->cap_written && ap->written[written_slot(ap, path)];
}

static void written_add1(struct applier *ap, const char *path, size_t len)
{
        _cleanup_free_ char *p = kstrndup(path, len);
        size_t i;

        if (2 * (ap->n_written + 1) > ap->cap_written) {
                char **old = ap->written;
                size_t old_cap = ap->cap_written;

                ap->cap_written = old_cap ? 2 * old_cap : 256;
                ap->written = kcalloc(ap->cap_written, sizeof(*ap->written));
                for (size_t j = 0; j < old_cap; j++)
                        if (old[j])
                                ap->written[written_slot(ap, old[j])] = old[j];
                free(old);
        }
        i = written_slot(ap, p);
        if (!ap->written[i]) {
                ap->written[i] = TAKE_PTR(p);
                ap->n_written++;
        }
}

/* Records path and each of its parents. */
static void written_add(struct applier *ap, const char *path)
{
        for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/'))
                written_add1(ap, path, (size_t)(s - path));
        written_add1(ap, path, strlen(path));
}

/* ---- names ---- */

/* Cleans a layer name: "./a//b/" -> "a/b"; "a/../b" -> "b". Fails for absolute names and
 * for ".." that would climb above the root. "" is the root itself. */
static int clean_name(const char *raw, const char *entry, char **ret, struct kerr **err)
{
        struct kbuf b = KBUF_INIT;
        const char *p = raw;

        if (*raw == '/')
                return kerr_set(err, 0, KERR_INVALID, "layer entry '%s' leaves the root", entry);
        kbuf_puts(&b, "");
        while (*p) {
                const char *end = strchr(p, '/');
                size_t len = end ? (size_t)(end - p) : strlen(p);

                if (len == 0 || (len == 1 && p[0] == '.')) {
                        /* skip */
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        char *slash;

                        if (b.len == 0) {
                                kbuf_release(&b);
                                return kerr_set(err, 0, KERR_INVALID,
                                                "layer entry '%s' leaves the root", entry);
                        }
                        slash = strrchr(b.data, '/');
                        kbuf_truncate(&b, slash ? (size_t)(slash - b.data) : 0);
                } else {
                        if (b.len)
                                kbuf_putc(&b, '/');
                        kbuf_append(&b, p, len);
                }
                p += len;
                if (*p == '/')
                        p++;
        }
        *ret = kbuf_detach(&b);
        return 0;
}

/* Splits a clean name into its parent ("" for the root) and last component. */
static void split_name(char *clean, const char **ret_parent, const char **ret_base)
{
        char *slash = strrchr(clean, '/');

        if (!slash) {
                *ret_parent = "";
                *ret_base = clean;
                return;
        }
        *slash = '\0';
        *ret_parent = clean;
        *ret_base = slash + 1;
}

/* ---- file system helpers, all relative to fds inside the root ---- */

static int rm_rf_at(int dfd, const char *name, const char *entry, struct kerr **err);

static int empty_dir(int fd, const char *entry, struct applier *ap, const char *keep_prefix,
                     struct kerr **err)
{
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        if (image_list_dir(fd, entry, &names, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n && r == 0; i++) {
                if (ap) {
                        struct kbuf b = KBUF_INIT;
                        bool keep;

                        kbuf_printf(&b, "%s%s%s", keep_prefix, *keep_prefix ? "/" : "", names[i]);
                        keep = written_has(ap, b.data);
                        kbuf_release(&b);
                        if (keep)
                                continue;
                }
                r = rm_rf_at(fd, names[i], entry, err);
        }
        image_free_names(names, n);
        return r;
}

/* rm -rf of name in dfd; a missing name is fine. Never follows symlinks. */
static int rm_rf_at(int dfd, const char *name, const char *entry, struct kerr **err)
{
        struct stat st;
        _cleanup_close_ int fd = -1;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': stat '%s'", entry, name);
        }
        if (!S_ISDIR(st.st_mode)) {
                if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                        return kerr_set(err, errno, KERR_IO, "layer entry '%s': remove '%s'", entry,
                                        name);
                return 0;
        }
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': open '%s'", entry, name);
        if (empty_dir(fd, entry, NULL, NULL, err) < 0)
                return -1;
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': remove '%s'", entry, name);
        return 0;
}

/* Opens the directory parent (a clean name) inside the root as an O_PATH fd, creating
 * what is missing (mode 0755) when create is set. */
static int open_parent(struct applier *ap, const char *parent, bool create, const char *entry,
                       struct kerr **err)
{
        _cleanup_kerr_ struct kerr *e = NULL;
        _cleanup_close_ int cur = -1;
        _cleanup_free_ char *prefix = NULL;
        int fd;

        fd = kfs_open_in_root(ap->rootfd, *parent ? parent : ".", O_PATH | O_DIRECTORY, 0, 0, &e);
        if (fd >= 0)
                return fd;
        if (!create || e->errnum != ENOENT) {
                *err = TAKE_PTR(e);
                return kerr_wrap(err, "layer entry '%s'", entry);
        }
        /* Walk down from the root, making each missing directory through the fd of the
         * one above it. */
        cur = fcntl(ap->rootfd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s'", entry);
        prefix = kstrdup(parent);
        for (char *p = prefix;;) {
                char *slash = strchr(p, '/');
                char save = 0;

                if (slash) {
                        save = *slash;
                        *slash = '\0';
                }
                kerr_freep(&e);
                fd = kfs_open_in_root(ap->rootfd, prefix, O_PATH | O_DIRECTORY, 0, 0, &e);
                if (fd < 0 && e->errnum == ENOENT) {
                        if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST)
                                return kerr_set(err, errno, KERR_IO,
                                                "layer entry '%s': create directory '%s'", entry,
                                                prefix);
                        kerr_freep(&e);
                        fd = kfs_open_in_root(ap->rootfd, prefix, O_PATH | O_DIRECTORY, 0, 0, &e);
                }
                if (fd < 0) {
                        *err = TAKE_PTR(e);
                        return kerr_wrap(err, "layer entry '%s'", entry);
                }
                kfs_close(cur);
                cur = fd;
                if (!slash)
                        break;
                *slash = save;
                p = slash + 1;
        }
        return TAKE_FD(cur);
}

/* Removes what is at pfd/base unless it is a directory and keep_dir is set. Returns 1
 * when a directory was kept. */
static int clear_place(int pfd, const char *base, bool keep_dir, const char *entry,
                       struct kerr **err)
{
        struct stat st;

        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': stat", entry);
        }
        if (keep_dir && S_ISDIR(st.st_mode))
                return 1;
        return rm_rf_at(pfd, base, entry, err);
}

static bool xattr_wanted(const char *name, bool *ret_optional)
{
        *ret_optional = false;
        if (strcmp(name, "security.capability") == 0)
                return true;
        /* overlay's own attributes would change how the layer is mounted (opaque,
         * redirect, metacopy): a layer never sets them directly. */
        if (strncmp(name, "user.overlay.", 13) == 0 || strncmp(name, "trusted.overlay.", 16) == 0)
                return false;
        if (strncmp(name, "user.", 5) == 0) {
                /* Some file systems (tmpfs before 6.6) have no user xattrs. */
                *ret_optional = true;
                return true;
        }
        if (strncmp(name, "trusted.", 8) == 0) {
                *ret_optional = true;
                return true;
        }
        return false;
}

static int set_xattrs(int fd, struct archive_entry *e, const char *entry, struct kerr **err)
{
        const char *name;
        const void *value;
        size_t size;

        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                bool optional;

                if (!xattr_wanted(name, &optional))
                        continue;
                if (fsetxattr(fd, name, value, size, 0) == 0)
                        continue;
                if (optional && (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP))
                        continue;
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': set xattr '%s'", entry,
                                name);
        }
        return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
        ts[1].tv_sec = archive_entry_mtime(e);
        ts[1].tv_nsec = archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0;
        ts[0] = ts[1];
}

/* Owner, mode, xattrs and times of a file opened as fd. */
static int set_meta_fd(struct applier *ap, int fd, struct archive_entry *e, const char *entry,
                       bool times, struct kerr **err)
{
        struct timespec ts[2];

        if (!(ap->flags & IMAGE_APPLY_NO_OWNERS) &&
            fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
                return kidmap_owner_error(err, errno, archive_entry_uid(e), archive_entry_gid(e),
                                          "layer entry '%s': chown to %lld:%lld", entry,
                                          (long long)archive_entry_uid(e),
                                          (long long)archive_entry_gid(e));
        /* After chown, which clears set-id bits, and before the xattrs, since a write
         * or chown also drops security.capability. */
        if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': chmod", entry);
        if (set_xattrs(fd, e, entry, err) < 0)
                return -1;
        entry_times(e, ts);
        if (times && futimens(fd, ts) < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': set times", entry);
        return 0;
}

/* Owner and times of pfd/base without following it (symlinks, devices, fifos). */
static int set_meta_at(struct applier *ap, int pfd, const char *base, struct archive_entry *e,
                       const char *entry, struct kerr **err)
{
        struct timespec ts[2];

        if (!(ap->flags & IMAGE_APPLY_NO_OWNERS) &&
            fchownat(pfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
                     AT_SYMLINK_NOFOLLOW) < 0)
                return kidmap_owner_error(err, errno, archive_entry_uid(e), archive_entry_gid(e),
                                          "layer entry '%s': chown to %lld:%lld", entry,
                                          (long long)archive_entry_uid(e),
                                          (long long)archive_entry_gid(e));
        entry_times(e, ts);
        if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': set times", entry);
        return 0;
}

/* ---- entries ---- */

static int apply_whiteout(struct applier *ap, struct archive_entry *e, const char *parent,
                          const char *base, const char *entry, struct kerr **err)
{
        bool overlay = ap->flags & IMAGE_APPLY_OVERLAY;
        _cleanup_close_ int pfd = -1;

        if (strcmp(base, ".wh..wh..opq") == 0) {
                _cleanup_close_ int dfd = -1;

                pfd = open_parent(ap, parent, true, entry, err);
                if (pfd < 0)
                        return -1;
                dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        return kerr_set(err, errno, KERR_IO, "layer entry '%s': open", entry);
                if (!overlay)
                        return empty_dir(dfd, entry, ap, parent, err);
                /* Rootless overlay mounts use userxattr and read user.overlay.*. */
                if (fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) == 0)
                        return 0;
                if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP)
                        return kerr_set(err, errno, KERR_IO,
                                        "layer entry '%s': mark the directory opaque", entry);
                if (fsetxattr(dfd, "user.overlay.opaque", "y", 1, 0) < 0)
                        return kerr_set(err, errno, KERR_IO,
                                        "layer entry '%s': mark the directory opaque", entry);
                return 0;
        }

        base += 4;
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return kerr_set(err, 0, KERR_INVALID, "layer entry '%s' is not a valid whiteout",
                                entry);
        if (!overlay) {
                _cleanup_kerr_ struct kerr *e2 = NULL;

                pfd = open_parent(ap, parent, false, entry, &e2);
                if (pfd < 0 && e2->errnum == ENOENT)
                        return 0; /* nothing to delete */
                if (pfd < 0) {
                        *err = TAKE_PTR(e2);
                        return -1;
                }
                return rm_rf_at(pfd, base, entry, err);
        }
        pfd = open_parent(ap, parent, true, entry, err);
        if (pfd < 0)
                return -1;
        if (clear_place(pfd, base, false, entry, err) < 0)
                return -1;
        if (mknodat(pfd, base, S_IFCHR | 0, makedev(0, 0)) < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': create a whiteout", entry);
        return set_meta_at(ap, pfd, base, e, entry, err);
}

static int apply_hardlink(struct applier *ap, int pfd, const char *base, const char *target,
                          const char *entry, struct kerr **err)
{
        _cleanup_free_ char *clean = NULL;
        _cleanup_close_ int tpfd = -1;
        const char *tparent, *tbase;

        if (clean_name(target, entry, &clean, err) < 0 || !*clean)
                return kerr_set(err, 0, KERR_INVALID,
                                "layer entry '%s' links to '%s', outside the root", entry, target);
        split_name(clean, &tparent, &tbase);
        tpfd = open_parent(ap, tparent, false, entry, err);
        if (tpfd < 0)
                return -1;
        if (clear_place(pfd, base, false, entry, err) < 0)
                return -1;
        /* No AT_SYMLINK_FOLLOW: a symlink named as the target is linked itself, never
         * followed out of the root. */
        if (linkat(tpfd, tbase, pfd, base, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': link to '%s'", entry,
                                target);
        return 0;
}

static int apply_file(struct applier *ap, int pfd, const char *base, struct archive_entry *e,
                      const char *entry, struct kerr **err)
{
        _cleanup_close_ int fd = -1;

        if (clear_place(pfd, base, false, entry, err) < 0)
                return -1;
        fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': create", entry);
        for (;;) {
                la_ssize_t k = archive_read_data(ap->tar, ap->buf, sizeof(ap->buf));

                if (k == 0)
                        break;
                if (k < 0)
                        return kerr_from_archive(err, ap->tar, "layer entry '%s'", entry);
                if (kfs_write_all(fd, ap->buf, (size_t)k) < 0)
                        return kerr_set(err, errno, KERR_IO, "layer entry '%s': write", entry);
        }
        return set_meta_fd(ap, fd, e, entry, true, err);
}

static int apply_dir(struct applier *ap, int pfd, const char *base, const char *clean,
                     struct archive_entry *e, const char *entry, struct kerr **err)
{
        _cleanup_close_ int fd = -1;
        struct deferred_dir *d;
        int r = clear_place(pfd, base, true, entry, err);

        if (r < 0)
                return -1;
        if (r == 0 && mkdirat(pfd, base, 0700) < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': create", entry);
        fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': open", entry);
        if (!(ap->flags & IMAGE_APPLY_NO_OWNERS) &&
            fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
                return kidmap_owner_error(err, errno, archive_entry_uid(e), archive_entry_gid(e),
                                          "layer entry '%s': chown", entry);
        if (set_xattrs(fd, e, entry, err) < 0)
                return -1;
        /* The mode and times wait for the end: a read-only directory must still take its
         * children, and creating them would move the time. */
        if (ap->n_dirs == ap->cap_dirs) {
                ap->cap_dirs = ap->cap_dirs ? 2 * ap->cap_dirs : 64;
                ap->dirs = kreallocarray(ap->dirs, ap->cap_dirs, sizeof(*ap->dirs));
        }
        d = &ap->dirs[ap->n_dirs++];
        d->path = kstrdup(clean);
        d->mode = archive_entry_perm(e) & 07777;
        entry_times(e, d->ts);
        return 0;
}

static int apply_special(struct applier *ap, int pfd, const char *base, struct archive_entry *e,
                         const char *entry, struct kerr **err)
{
        mode_t type = archive_entry_filetype(e);
        dev_t dev = 0;

        if (type != AE_IFIFO)
                dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (clear_place(pfd, base, false, entry, err) < 0)
                return -1;
        if (mknodat(pfd, base, type | 0600, dev) < 0) {
                if (errno == EPERM && type != AE_IFIFO) {
                        /* In a user namespace no device node can be made. The node is left
                         * out, as rootless podman leaves it out: a container gets its /dev
                         * from the sandbox, and the layer's tar (kept as its blob) still
                         * has it for export. */
                        klog_debug("layer entry '%s': device node left out (not permitted "
                                   "here)",
                                   entry);
                        return 0;
                }
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': create", entry);
        }
        if (set_meta_at(ap, pfd, base, e, entry, err) < 0)
                return -1;
        /* The node was made just now by this process, through its parent's fd: it is not
         * a symlink, so following is moot. */
        if (fchmodat(pfd, base, archive_entry_perm(e) & 07777, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "layer entry '%s': chmod", entry);
        return 0;
}

static int apply_entry(struct applier *ap, struct archive_entry *e, struct kerr **err)
{
        const char *entry = archive_entry_pathname(e);
        const char *hardlink = archive_entry_hardlink(e);
        _cleanup_free_ char *clean = NULL;
        _cleanup_free_ char *whole = NULL;
        _cleanup_close_ int pfd = -1;
        const char *parent, *base;

        if (!entry)
                return kerr_set(err, 0, KERR_INVALID, "layer entry with an unreadable name");
        if (clean_name(entry, entry, &clean, err) < 0)
                return -1;
        if (!*clean)
                return 0; /* "./": the root keeps its own metadata */
        whole = kstrdup(clean);
        split_name(clean, &parent, &base);
        if (strncmp(base, ".wh.", 4) == 0)
                return apply_whiteout(ap, e, parent, base, entry, err);

        written_add(ap, whole);
        pfd = open_parent(ap, parent, true, entry, err);
        if (pfd < 0)
                return -1;
        if (hardlink)
                return apply_hardlink(ap, pfd, base, hardlink, entry, err);
        switch (archive_entry_filetype(e)) {
        case AE_IFREG:
                return apply_file(ap, pfd, base, e, entry, err);
        case AE_IFDIR:
                return apply_dir(ap, pfd, base, whole, e, entry, err);
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(e);

                if (!target || !*target)
                        return kerr_set(err, 0, KERR_INVALID,
                                        "layer entry '%s' is a symlink without a target", entry);
                if (clear_place(pfd, base, false, entry, err) < 0)
                        return -1;
                /* The target is stored as given; it is only ever resolved later inside
                 * the root, never followed while writing. */
                if (symlinkat(target, pfd, base) < 0)
                        return kerr_set(err, errno, KERR_IO, "layer entry '%s': create", entry);
                return set_meta_at(ap, pfd, base, e, entry, err);
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO:
                return apply_special(ap, pfd, base, e, entry, err);
        default:
                return kerr_set(err, 0, KERR_UNSUPPORTED,
                                "layer entry '%s' has an unsupported type 0%o", entry,
                                (unsigned)archive_entry_filetype(e));
        }
}

static int finish_dirs(struct applier *ap, struct kerr **err)
{
        for (size_t i = 0; i < ap->n_dirs; i++) {
                struct deferred_dir *d = &ap->dirs[i];
                _cleanup_kerr_ struct kerr *e = NULL;
                _cleanup_close_ int fd = kfs_open_in_root(
                        ap->rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, 0, &e);

                if (fd < 0) {
                        /* A later entry replaced or removed it. */
                        if (e->errnum == ENOENT || e->errnum == ENOTDIR || e->errnum == ELOOP)
                                continue;
                        *err = TAKE_PTR(e);
                        return -1;
                }
                if (fchmod(fd, d->mode) < 0)
                        return kerr_set(err, errno, KERR_IO, "layer entry '%s/': chmod", d->path);
                if (futimens(fd, d->ts) < 0)
                        return kerr_set(err, errno, KERR_IO, "layer entry '%s/': set times",
                                        d->path);
        }
        return 0;
}

static void applier_release(struct applier *ap)
{
        for (size_t i = 0; i < ap->cap_written; i++)
                free(ap->written[i]);
        free(ap->written);
        for (size_t i = 0; i < ap->n_dirs; i++)
                free(ap->dirs[i].path);
        free(ap->dirs);
}

static int apply_all(struct applier *ap, int fd, struct kerr **err)
{
        struct archive_entry *e;
        const void *p;
        size_t n;
        la_int64_t off;
        int r;

        if (archive_read_support_filter_all(ap->raw) != ARCHIVE_OK ||
            archive_read_support_format_raw(ap->raw) != ARCHIVE_OK ||
            archive_read_support_format_tar(ap->tar) != ARCHIVE_OK)
                return kerr_from_archive(err, ap->raw, "set up the layer reader");
        if (archive_read_open_fd(ap->raw, fd, 64 * 1024) != ARCHIVE_OK)
                return kerr_from_archive(err, ap->raw, "read layer");
        r = archive_read_next_header(ap->raw, &e);
        if (r == ARCHIVE_EOF)
                return kerr_set(err, 0, KERR_INVALID, "read layer: the stream is empty");
        if (r < ARCHIVE_WARN)
                return kerr_from_archive(err, ap->raw, "read layer");
        if (archive_read_open(ap->tar, ap, NULL, read_cb, NULL) != ARCHIVE_OK)
                return kerr_from_archive(err, ap->tar, "read layer");
        for (;;) {
                r = archive_read_next_header(ap->tar, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return kerr_from_archive(err, ap->tar, "read layer");
                if (apply_entry(ap, e, err) < 0)
                        return -1;
        }
        /* Hash whatever follows the end-of-archive blocks too: the diff_id is over the
         * whole uncompressed stream. */
        while ((r = archive_read_data_block(ap->raw, &p, &n, &off)) == ARCHIVE_OK ||
               r == ARCHIVE_WARN)
                kdigest_update(ap->digest, p, n);
        if (r != ARCHIVE_EOF)
                return kerr_from_archive(err, ap->raw, "read layer");
        return finish_dirs(ap, err);
}

int image_layer_apply(int fd, int rootfd, unsigned flags, char ret_diff_id[KDIGEST_STRLEN],
                      struct kerr **err)
{
        _cleanup_(archive_read_freep) struct archive *raw = NULL;
        _cleanup_(archive_read_freep) struct archive *tar = NULL;
        _cleanup_(kdigest_freep) struct kdigest *digest = NULL;
        struct applier *ap;
        char id[KDIGEST_STRLEN];
        int r;

        if (karchive_load(err) < 0)
                return -1;
        raw = archive_read_new();
        tar = archive_read_new();
        digest = kdigest_new(err);

        if (!raw || !tar)
                abort();
        if (!digest)
                return -1;
        ap = kcalloc(1, sizeof(*ap));
        ap->rootfd = rootfd;
        ap->flags = flags;
        ap->raw = raw;
        ap->tar = tar;
        ap->digest = digest;
        r = apply_all(ap, fd, err);
        applier_release(ap);
        free(ap);
        if (r < 0)
                return -1;
        if (kdigest_final(digest, id, err) < 0)
                return -1;
        if (ret_diff_id)
                memcpy(ret_diff_id, id, KDIGEST_STRLEN);
        return 0;
}
