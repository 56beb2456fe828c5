/* SPDX-License-Identifier: Apache-2.0 */
/* Flattening: the bottom of a layer stack too deep to mount cheaply, merged once into one
 * plain tree that then stands for those layers as a single lower dir.
 *
 * The tree is the layers' own files, hard-linked, in directories of its own. A layer dir
 * never changes once committed, and overlayfs never writes to a lower dir (a write copies
 * the file up first), so sharing the inodes is safe, and a flat tree costs one link per file
 * whatever the files weigh: a Debian base is some 10 000 links, not 300 MB of copies.
 * Owners, modes, set-id bits, file capabilities and times come with the inode; a directory
 * takes those of the topmost layer that has it, as overlayfs shows it. Where a link cannot
 * be made (the inode has as many links as the file system allows, or the file system
 * refuses) the file is copied, and the other names of that inode in the same layer are
 * linked to the copy, so that hard links stay hard links. */
#include "builder/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/idmap.h"
#include "common/log.h"
#include "image/image.h"
#include "sandbox/sandbox.h"
#include "common/banned.h"

_Static_assert(BUILDER_FLAT_STEP < BUILDER_FLAT_MAX_LOWERS,
               "the layers above a flat tree must fit beside it");
_Static_assert(SANDBOX_LEGACY_MAX_LOWERS / 2 >= 1, "a step of at least one layer");

/* The names one inode of a layer was given in the tree so far. Links between layers do not
 * exist (each layer is a tree of its own), so groups last one layer. */
struct group {
        dev_t dev;
        ino_t ino;
        bool used;
        char **paths; /* linked to the layer's inode */
        size_t n_paths;
        char *copy; /* once the inode was copied: the copy, which the other names link to */
};

struct flattener {
        int root; /* the tree being made */
        unsigned flags;
        struct kbuf path;     /* the entry at hand, relative to the roots ("a/b"); "" for the top */
        struct group *groups; /* open addressing on (dev, ino) */
        size_t n_groups, cap_groups;
        size_t entries; /* entries of the layers merged, for the log */
};

static const char *path_of(const struct flattener *f)
{
        return f->path.len ? f->path.data : "";
}

/* Appends /name to the path; returns the length to go back to. */
static size_t path_push(struct flattener *f, const char *name)
{
        size_t len = f->path.len;

        if (len)
                kbuf_putc(&f->path, '/');
        kbuf_puts(&f->path, name);
        return len;
}

static void groups_reset(struct flattener *f)
{
        for (size_t i = 0; i < f->cap_groups; i++) {
                struct group *g = &f->groups[i];

                if (!g->used)
                        continue;
                for (size_t k = 0; k < g->n_paths; k++)
                        free(g->paths[k]);
                free(g->paths);
                free(g->copy);
        }
        free(f->groups);
        f->groups = NULL;
        f->n_groups = f->cap_groups = 0;
}

static size_t group_slot(const struct flattener *f, dev_t dev, ino_t ino)
{
        size_t i = (size_t)(((uint64_t)ino * 0x9e3779b97f4a7c15ull) ^ (uint64_t)dev) &
                   (f->cap_groups - 1);

        while (f->groups[i].used && (f->groups[i].ino != ino || f->groups[i].dev != dev))
                i = (i + 1) & (f->cap_groups - 1);
        return i;
}

/* The group of the inode st describes; valid until the next call. */
static struct group *group_get(struct flattener *f, const struct stat *st)
{
        struct group *g;

        if ((f->n_groups + 1) * 2 > f->cap_groups) {
                struct group *old = f->groups;
                size_t old_cap = f->cap_groups;

                f->cap_groups = old_cap ? old_cap * 2 : 64;
                f->groups = kcalloc(f->cap_groups, sizeof(*f->groups));
                for (size_t i = 0; i < old_cap; i++)
                        if (old[i].used)
                                f->groups[group_slot(f, old[i].dev, old[i].ino)] = old[i];
                free(old);
        }
        g = &f->groups[group_slot(f, st->st_dev, st->st_ino)];
        if (!g->used) {
                g->used = true;
                g->dev = st->st_dev;
                g->ino = st->st_ino;
                f->n_groups++;
        }
        return g;
}

static bool is_whiteout(const struct stat *st)
{
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* Rootless layers carry user.overlay.opaque, since a user namespace cannot set trusted.*. */
static bool is_opaque(int dirfd)
{
        char v[2];

        if (fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y')
                return true;
        return fgetxattr(dirfd, "user.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

/* overlayfs's own attributes mark a layer (opaque, redirect, metacopy); the merged tree
 * must have none, or the mount would read them. */
static bool overlay_xattr(const char *name)
{
        return strncmp(name, "trusted.overlay.", 16) == 0 ||
               strncmp(name, "user.overlay.", 13) == 0;
}

/* The names of fd's xattrs, each NUL-terminated, in *ret_len bytes (NULL and 0: none). */
static int list_xattrs(struct flattener *f, int fd, char **ret, size_t *ret_len, struct kerr **err)
{
        _cleanup_free_ char *list = NULL;

        for (;;) {
                ssize_t len = flistxattr(fd, NULL, 0), k;

                if (len < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))
                        len = 0;
                if (len < 0)
                        return kerr_set(err, errno, KERR_IO, "list the xattrs of '/%s'",
                                        path_of(f));
                if (len == 0) {
                        *ret = NULL;
                        *ret_len = 0;
                        return 0;
                }
                free(list);
                list = malloc((size_t)len);
                if (!list)
                        abort();
                k = flistxattr(fd, list, (size_t)len);
                if (k >= 0) {
                        *ret = TAKE_PTR(list);
                        *ret_len = (size_t)k;
                        return 0;
                }
                if (errno != ERANGE)
                        return kerr_set(err, errno, KERR_IO, "list the xattrs of '/%s'",
                                        path_of(f));
        }
}

static bool list_has(const char *list, size_t len, const char *name)
{
        for (const char *p = list; p < list + len; p += strlen(p) + 1)
                if (strcmp(p, name) == 0)
                        return true;
        return false;
}

/* Gives to the xattrs of from, but overlay's. With replace, to's others are removed first
 * (a directory of a lower layer takes those of the one above). A file capability must be
 * kept; an attribute this file system or namespace cannot hold (trusted.* in a user
 * namespace, an ACL where there are none) is left out, as layers leave it out. */
static int copy_xattrs(struct flattener *f, int from, int to, bool replace, struct kerr **err)
{
        _cleanup_free_ char *names = NULL, *old = NULL;
        size_t len = 0, old_len = 0;

        if (list_xattrs(f, from, &names, &len, err) < 0)
                return -1;
        if (replace) {
                if (list_xattrs(f, to, &old, &old_len, err) < 0)
                        return -1;
                for (const char *p = old; p && p < old + old_len; p += strlen(p) + 1) {
                        if (overlay_xattr(p) || list_has(names, len, p))
                                continue;
                        if (fremovexattr(to, p) < 0 && errno != ENODATA && errno != EPERM &&
                            errno != ENOTSUP && errno != EOPNOTSUPP)
                                return kerr_set(err, errno, KERR_IO, "remove xattr '%s' of '/%s'",
                                                p, path_of(f));
                }
        }
        for (const char *p = names; p && p < names + len; p += strlen(p) + 1) {
                _cleanup_free_ char *value = NULL;
                ssize_t k;

                if (overlay_xattr(p))
                        continue;
                for (;;) {
                        k = fgetxattr(from, p, NULL, 0);
                        if (k < 0)
                                break;
                        free(value);
                        value = malloc((size_t)k + 1);
                        if (!value)
                                abort();
                        k = fgetxattr(from, p, value, (size_t)k);
                        if (k >= 0 || errno != ERANGE)
                                break;
                }
                if (k < 0 && errno == ENODATA)
                        continue;
                if (k < 0)
                        return kerr_set(err, errno, KERR_IO, "read xattr '%s' of '/%s'", p,
                                        path_of(f));
                if (fsetxattr(to, p, value, (size_t)k, 0) == 0)
                        continue;
                if (strcmp(p, "security.capability") != 0 &&
                    (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP)) {
                        klog_debug("flatten: '/%s': xattr '%s' left out: %s", path_of(f), p,
                                   strerror(errno));
                        continue;
                }
                return kerr_set(err, errno, KERR_IO, "set xattr '%s' of '/%s'", p, path_of(f));
        }
        return 0;
}

/* Errors of linkat after which a copy can stand in for the link. */
static bool link_refused(int en)
{
        return en == EMLINK || en == EPERM || en == EXDEV || en == ENOTSUP || en == EOPNOTSUPP ||
               en == ENOSYS;
}

/* Links fromfd/from as dfd/name, replacing what the tree has there: 0, 1 when the file
 * system refused the link (see link_refused), -1 with *err set. */
static int link_over(struct flattener *f, int fromfd, const char *from, int dfd, const char *name,
                     struct kerr **err)
{
        for (int tries = 0;; tries++) {
                /* No AT_SYMLINK_FOLLOW: a symlink is linked itself, never followed. */
                if (linkat(fromfd, from, dfd, name, 0) == 0)
                        return 0;
                if (errno == EEXIST && tries == 0) {
                        if (image_store_rmtree_at(dfd, name, err) < 0)
                                return kerr_wrap(err, "replace '/%s'", path_of(f));
                        continue;
                }
                if (link_refused(errno))
                        return 1;
                return kerr_set(err, errno, KERR_IO, "link '/%s'", path_of(f));
        }
}

/* The directory of the tree that holds path (a name the tree was given in this layer, all
 * of whose parents are directories of that layer) and its last component. */
static int open_parent(struct flattener *f, const char *path, const char **ret_base,
                       struct kerr **err)
{
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = slash ? kstrndup(path, (size_t)(slash - path)) : NULL;

        *ret_base = slash ? slash + 1 : path;
        return kfs_open_in_root(f->root, dir ? dir : ".", O_PATH | O_DIRECTORY, 0, 0, err);
}

/* Makes path (a name the tree has) a link to the copy that stands for its inode. */
static int relink(struct flattener *f, const char *copy, const char *path, struct kerr **err)
{
        const char *cbase, *base;
        _cleanup_close_ int cfd = open_parent(f, copy, &cbase, err);
        _cleanup_close_ int pfd = cfd < 0 ? -1 : open_parent(f, path, &base, err);

        if (pfd < 0)
                return -1;
        if (unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
                return kerr_set(err, errno, KERR_IO, "replace '/%s'", path);
        if (linkat(cfd, cbase, pfd, base, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "link '/%s' to '/%s'", path, copy);
        return 0;
}

/* A copy of the layer's lfd/name (not a directory) as dfd/name, which is free: 0, 1 when a
 * device node cannot be made here and is left out, -1 with *err set. */
static int copy_entry(struct flattener *f, int lfd, int dfd, const char *name,
                      const struct stat *st, struct kerr **err)
{
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        mode_t type = st->st_mode & S_IFMT;
        const char *p = path_of(f);

        if (type == S_IFREG) {
                _cleanup_close_ int in =
                        openat(lfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
                _cleanup_close_ int out = -1;

                if (in < 0)
                        return kerr_set(err, errno, KERR_IO, "open '/%s' of the layer", p);
                out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0)
                        return kerr_set(err, errno, KERR_IO, "create '/%s'", p);
                if (builder_copy_data(in, out, st->st_size, p, err) < 0)
                        return -1;
                if (fchown(out, st->st_uid, st->st_gid) < 0)
                        return kidmap_owner_error(err, errno, st->st_uid, st->st_gid,
                                                  "chown '/%s' to %u:%u", p, (unsigned)st->st_uid,
                                                  (unsigned)st->st_gid);
                /* After chown, which clears set-id bits and file capabilities. */
                if (fchmod(out, st->st_mode & 07777) < 0)
                        return kerr_set(err, errno, KERR_IO, "chmod '/%s'", p);
                if (copy_xattrs(f, in, out, false, err) < 0)
                        return -1;
                if (futimens(out, ts) < 0)
                        return kerr_set(err, errno, KERR_IO, "set the times of '/%s'", p);
                return 0;
        }
        if (type == S_IFLNK) {
                _cleanup_free_ char *target = malloc((size_t)st->st_size + 2);
                ssize_t k;

                if (!target)
                        abort();
                k = readlinkat(lfd, name, target, (size_t)st->st_size + 1);
                if (k < 0)
                        return kerr_set(err, errno, KERR_IO, "read link '/%s'", p);
                if (k > st->st_size)
                        return kerr_set(err, 0, KERR_IO, "'/%s' changed while it was read", p);
                target[k] = '\0';
                /* Stored as it is: it is only ever resolved inside a root. */
                if (symlinkat(target, dfd, name) < 0)
                        return kerr_set(err, errno, KERR_IO, "create '/%s'", p);
        } else if (mknodat(dfd, name, type | 0600, st->st_rdev) < 0) {
                if (errno == EPERM && type != S_IFIFO) {
                        /* As layers applied in a user namespace leave them out: a container
                         * gets its /dev from the sandbox. */
                        klog_debug("flatten: '/%s': device node left out (not permitted here)", p);
                        return 1;
                }
                return kerr_set(err, errno, KERR_IO, "create '/%s'", p);
        }
        if (fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return kidmap_owner_error(err, errno, st->st_uid, st->st_gid,
                                          "chown '/%s' to %u:%u", p, (unsigned)st->st_uid,
                                          (unsigned)st->st_gid);
        /* The node was made just now through its parent's fd: it is no symlink to follow. */
        if (type != S_IFLNK && fchmodat(dfd, name, st->st_mode & 07777, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "chmod '/%s'", p);
        if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return kerr_set(err, errno, KERR_IO, "set the times of '/%s'", p);
        return 0;
}

/* Puts the layer's lfd/name (not a directory) into the tree as dfd/name. */
static int place(struct flattener *f, int lfd, int dfd, const char *name, const struct stat *st,
                 struct kerr **err)
{
        struct group *g = st->st_nlink > 1 ? group_get(f, st) : NULL;
        int r;

        if (g && g->copy) {
                const char *cbase;
                _cleanup_close_ int cfd = open_parent(f, g->copy, &cbase, err);

                if (cfd < 0)
                        return -1;
                r = link_over(f, cfd, cbase, dfd, name, err);
                if (r > 0)
                        return kerr_set(err, errno, KERR_IO, "link '/%s' to '/%s'", path_of(f),
                                        g->copy);
                return r;
        }
        r = (f->flags & BUILDER_FLATTEN_COPY) ? 1 : link_over(f, lfd, name, dfd, name, err);
        if (r < 0)
                return -1;
        if (r == 0) {
                if (g) {
                        g->paths = kreallocarray(g->paths, g->n_paths + 1, sizeof(*g->paths));
                        g->paths[g->n_paths++] = kstrdup(path_of(f));
                }
                return 0;
        }
        if (image_store_rmtree_at(dfd, name, err) < 0)
                return kerr_wrap(err, "replace '/%s'", path_of(f));
        r = copy_entry(f, lfd, dfd, name, st, err);
        if (r != 0 || !g)
                return r < 0 ? -1 : 0;
        /* The names linked to the layer's inode before a link was refused join the copy. */
        g->copy = kstrdup(path_of(f));
        for (size_t i = 0; i < g->n_paths; i++)
                if (relink(f, g->copy, g->paths[i], err) < 0)
                        return -1;
        return 0;
}

static int merge_entry(struct flattener *f, int lfd, int dfd, const char *name, struct kerr **err);

/* Merges the layer's directory lfd into the tree's dfd, which takes its owner, xattrs
 * (replace: dfd had some of its own), mode and times. */
static int merge_dir(struct flattener *f, int lfd, int dfd, const struct stat *st, bool replace,
                     struct kerr **err)
{
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        if (fchown(dfd, st->st_uid, st->st_gid) < 0)
                return kidmap_owner_error(err, errno, st->st_uid, st->st_gid,
                                          "chown '/%s' to %u:%u", path_of(f), (unsigned)st->st_uid,
                                          (unsigned)st->st_gid);
        if (copy_xattrs(f, lfd, dfd, replace, err) < 0)
                return -1;
        fd = fcntl(lfd, F_DUPFD_CLOEXEC, 3);
        d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                r = kerr_set(err, errno, KERR_IO, "read '/%s' of the layer", path_of(f));
                kfs_close(fd);
                return r;
        }
        /* The dup shares its offset with lfd. */
        rewinddir(d);
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (merge_entry(f, lfd, dfd, de->d_name, err) < 0) {
                        r = -1;
                        break;
                }
        }
        if (r == 0 && errno)
                r = kerr_set(err, errno, KERR_IO, "read '/%s' of the layer", path_of(f));
        closedir(d);
        if (r < 0)
                return r;
        /* Last: a read-only directory still took its entries, and making them moved its
         * times. */
        if (fchmod(dfd, st->st_mode & 07777) < 0)
                return kerr_set(err, errno, KERR_IO, "chmod '/%s'", path_of(f));
        if (futimens(dfd, ts) < 0)
                return kerr_set(err, errno, KERR_IO, "set the times of '/%s'", path_of(f));
        return 0;
}

static int merge_subdir(struct flattener *f, int lfd, int dfd, const char *name,
                        const struct stat *st, struct kerr **err)
{
        _cleanup_close_ int from =
                openat(lfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int to = -1;
        struct stat cur;
        bool merge = false;

        if (from < 0)
                return kerr_set(err, errno, KERR_IO, "open '/%s' of the layer", path_of(f));
        if (fstatat(dfd, name, &cur, AT_SYMLINK_NOFOLLOW) == 0) {
                /* An opaque directory hides what is below it; a directory replaces
                 * anything else. */
                merge = S_ISDIR(cur.st_mode) && !is_opaque(from);
                if (!merge && image_store_rmtree_at(dfd, name, err) < 0)
                        return kerr_wrap(err, "replace '/%s'", path_of(f));
        } else if (errno != ENOENT) {
                return kerr_set(err, errno, KERR_IO, "stat '/%s'", path_of(f));
        }
        if (!merge && mkdirat(dfd, name, 0700) < 0)
                return kerr_set(err, errno, KERR_IO, "create '/%s'", path_of(f));
        to = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (to < 0)
                return kerr_set(err, errno, KERR_IO, "open '/%s'", path_of(f));
        return merge_dir(f, from, to, st, merge, err);
}

static int merge_entry(struct flattener *f, int lfd, int dfd, const char *name, struct kerr **err)
{
        size_t mark = path_push(f, name);
        struct stat st;
        int r;

        f->entries++;
        if (fstatat(lfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                r = kerr_set(err, errno, KERR_IO, "stat '/%s' of the layer", path_of(f));
        else if (is_whiteout(&st))
                r = image_store_rmtree_at(dfd, name, err);
        else if (S_ISDIR(st.st_mode))
                r = merge_subdir(f, lfd, dfd, name, &st, err);
        else
                r = place(f, lfd, dfd, name, &st, err);
        kbuf_truncate(&f->path, mark);
        return r;
}

/* Removes every entry of the tree's directory dfd. */
static int empty_dir(int dfd, struct kerr **err)
{
        int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        int r = 0;

        if (!d) {
                r = kerr_set(err, errno, KERR_IO, "read the flat tree");
                kfs_close(fd);
                return r;
        }
        rewinddir(d);
        while (r == 0 && (de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        r = image_store_rmtree_at(dfd, de->d_name, err);
        closedir(d);
        return r;
}

/* Merges one layer dir over the tree. */
static int flatten_layer(struct flattener *f, int lfd, struct kerr **err)
{
        struct stat st;
        int r;

        if (fstat(lfd, &st) < 0)
                return kerr_set(err, errno, KERR_IO, "stat the layer");
        kbuf_truncate(&f->path, 0);
        r = is_opaque(lfd) ? empty_dir(f->root, err) : 0;
        if (r == 0)
                r = merge_dir(f, lfd, f->root, &st, true, err);
        groups_reset(f);
        return r;
}

int builder_flatten(const int *layer_fds, size_t n, int dst_fd, unsigned flags, struct kerr **err)
{
        struct flattener f = {.root = dst_fd, .flags = flags, .path = KBUF_INIT};
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++)
                if (flatten_layer(&f, layer_fds[i], err) < 0)
                        r = kerr_wrap(err, "flatten layer %zu of %zu", i + 1, n);
        groups_reset(&f);
        kbuf_release(&f.path);
        return r;
}

size_t builder_flat_depth_for(size_t n, size_t max)
{
        /* 64 of 128; half of a smaller limit, so the rest always fits beside the tree. */
        size_t step = max >= BUILDER_FLAT_MAX_LOWERS ? BUILDER_FLAT_STEP : max / 2;
        size_t over;

        if (max > BUILDER_FLAT_MAX_LOWERS)
                max = BUILDER_FLAT_MAX_LOWERS;
        if (n <= max)
                return 0;
        /* The fewest whole steps that leave the rest, beside the flat tree, within the
         * limit. */
        over = n - (max - 1);
        return (over + step - 1) / step * step;
}

size_t builder_flat_max_lowers(void)
{
        size_t k = sandbox_overlay_max_lowers();

        return k < BUILDER_FLAT_MAX_LOWERS ? k : BUILDER_FLAT_MAX_LOWERS;
}

size_t builder_flat_depth(size_t n)
{
        return builder_flat_depth_for(n, builder_flat_max_lowers());
}

static double seconds_since(const struct timespec *t0)
{
        struct timespec t1;

        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Makes the flat tree of the bottom k layers of chain, in tmp/ and then in the store. */
static int make_flat(struct image_store *s, const char *const *chain, size_t k, struct kerr **err)
{
        struct flattener f = {.root = -1, .path = KBUF_INIT};
        _cleanup_free_ char *dir = NULL;
        struct timespec t0;
        int r = 0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (image_store_mkdtemp(s, &dir, err) < 0)
                return kerr_wrap(err, "flatten the bottom %zu layers", k);
        f.root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (f.root < 0)
                r = kerr_set(err, errno, KERR_IO, "open '%s'", dir);
        /* One layer open at a time: the stack may be deeper than the fds at hand. */
        for (size_t i = 0; i < k && r == 0; i++) {
                _cleanup_close_ int lfd = image_layer_open_diff(s, chain[i], err);

                if (lfd < 0 || flatten_layer(&f, lfd, err) < 0)
                        r = kerr_wrap(err, "layer %zu (%s)", i + 1, chain[i]);
        }
        kfs_close(f.root);
        if (r == 0)
                r = image_layer_commit_flat(s, chain[k - 1], dir, err);
        if (r == 0)
                klog_debug("flatten: layers 1-%zu (%zu entries) merged into %s in %.3f s", k,
                           f.entries, chain[k - 1], seconds_since(&t0));
        else
                image_store_rmtree(dir, NULL);
        groups_reset(&f);
        kbuf_release(&f.path);
        if (r < 0)
                return kerr_wrap(err, "flatten the bottom %zu layers", k);
        return 0;
}

/* The depth of chain's flat part (0: none), its tree made first when the store has none. */
static int flat_part(struct image_store *s, const char *const *chain, size_t n, size_t *ret_k,
                     struct kerr **err)
{
        size_t k = builder_flat_depth(n);

        if (k && !image_layer_has_flat(s, chain[k - 1]) && make_flat(s, chain, k, err) < 0)
                return -1;
        *ret_k = k;
        return 0;
}

int builder_flat_lowers(struct image_store *s, const char *const *chain, size_t n, char ***ret,
                        size_t *ret_n, struct kerr **err)
{
        size_t k, m = 0;
        char **v;

        if (flat_part(s, chain, n, &k, err) < 0)
                return -1;
        if (k)
                klog_debug("flatten: layers 1-%zu of %zu stand as the flat tree of %s", k, n,
                           chain[k - 1]);
        v = kcalloc(n - (k ? k - 1 : 0) + 1, sizeof(*v));
        if (k)
                v[m++] = image_layer_flat_path(s, chain[k - 1]);
        for (size_t i = k; i < n; i++)
                v[m++] = image_layer_diff_path(s, chain[i]);
        *ret = v;
        *ret_n = m;
        return 0;
}

int builder_flat_open(struct image_store *s, const char *const *chain, size_t n, int **ret_fds,
                      size_t *ret_n, struct kerr **err)
{
        size_t k, m = 0;
        int *fds;

        if (flat_part(s, chain, n, &k, err) < 0)
                return -1;
        fds = kcalloc(n - (k ? k - 1 : 0) + 1, sizeof(*fds));
        if (k) {
                fds[m] = image_layer_open_flat(s, chain[k - 1], err);
                if (fds[m] < 0)
                        goto fail;
                m++;
        }
        for (size_t i = k; i < n; i++, m++) {
                fds[m] = image_layer_open_diff(s, chain[i], err);
                if (fds[m] < 0)
                        goto fail;
        }
        *ret_fds = fds;
        *ret_n = m;
        return 0;
fail:
        for (size_t i = 0; i < m; i++)
                kfs_close(fds[i]);
        free(fds);
        return -1;
}
