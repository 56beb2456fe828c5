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
#include <sys/xattr.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/idmap.h"
#include "common/banned.h"

/* ---- paths ---- */

char *builder_path_clean(const char *path)
{
        struct kbuf b = KBUF_INIT;
        const char *p = path;

        kbuf_putc(&b, '/');
        while (*p) {
                const char *s = p;
                size_t n;

                while (*p && *p != '/')
                        p++;
                n = (size_t)(p - s);
                if (*p == '/')
                        p++;
                if (n == 0 || (n == 1 && s[0] == '.'))
                        continue;
                if (n == 2 && s[0] == '.' && s[1] == '.') {
                        /* Drop the last component; at the root ".." stays there. */
                        while (b.len > 1 && b.data[b.len - 1] != '/')
                                b.len--;
                        if (b.len > 1)
                                b.len--;
                        b.data[b.len] = '\0';
                        continue;
                }
                if (b.len > 1)
                        kbuf_putc(&b, '/');
                kbuf_append(&b, s, n);
        }
        return kbuf_detach(&b);
}

char *builder_path_join(const char *dir, const char *path)
{
        struct kbuf b = KBUF_INIT;

        /* No printf: this runs for every entry a COPY or a cache key walks. */
        if (path[0] != '/') {
                kbuf_puts(&b, dir ? dir : "/");
                kbuf_putc(&b, '/');
        }
        kbuf_puts(&b, path);
        _cleanup_free_ char *s = kbuf_detach(&b);
        return builder_path_clean(s);
}

int builder_path_resolve(builder_lookup_fn lookup, void *root, const char *path, bool follow_last,
                         char **ret, struct kerr **err)
{
        /* todo holds what is left to walk; done is the resolved prefix. */
        _cleanup_free_ char *todo = builder_path_clean(path);
        struct kbuf done = KBUF_INIT;
        unsigned links = 0;
        size_t pos = 1;
        bool missing = false;

        kbuf_puts(&done, "/");
        while (todo[pos]) {
                const char *s = todo + pos;
                const char *slash = strchr(s, '/');
                size_t n = slash ? (size_t)(slash - s) : strlen(s);
                size_t saved = done.len;
                bool last = !slash;
                struct stat st;
                _cleanup_free_ char *target = NULL;
                int r;

                pos += n + (slash ? 1 : 0);
                if (n == 0 || (n == 1 && s[0] == '.'))
                        continue;
                if (n == 2 && s[0] == '.' && s[1] == '.') {
                        while (done.len > 1 && done.data[done.len - 1] != '/')
                                done.len--;
                        if (done.len > 1)
                                done.len--;
                        done.data[done.len] = '\0';
                        continue;
                }
                if (done.len > 1)
                        kbuf_putc(&done, '/');
                kbuf_append(&done, s, n);
                if (missing)
                        continue;
                r = lookup(root, done.data, &st, &target, err);
                if (r == -ENOENT || r == -ENOTDIR) {
                        /* The rest is kept as written: it will be created. */
                        missing = true;
                        continue;
                }
                if (r < 0) {
                        kbuf_release(&done);
                        return r;
                }
                if (!S_ISLNK(st.st_mode) || (last && !follow_last))
                        continue;
                if (++links > 40) {
                        kerr_set(err, ELOOP, KERR_INVALID, "resolve '%s'", path);
                        kbuf_release(&done);
                        return -1;
                }
                /* Splice the target in front of what is left. */
                struct kbuf next = KBUF_INIT;
                if (target[0] == '/') {
                        done.len = 1;
                        done.data[1] = '\0';
                } else {
                        done.len = saved;
                        done.data[saved] = '\0';
                }
                kbuf_printf(&next, "/%s/%s", target, todo + pos);
                free(todo);
                todo = kbuf_detach(&next);
                /* Keep ".." in the spliced text: it is applied to done above. */
                pos = 1;
        }
        *ret = kbuf_detach(&done);
        return 0;
}

/* ---- rootfs views ----
 *
 * Everything goes through directory handles: a directory of the view holds one O_PATH fd
 * per layer that contributes to it, so an entry is looked up with one fstatat per such
 * layer and a path costs one step per component, never a walk from the root per layer.
 * Entries are only ever opened by a single name relative to such an fd with O_NOFOLLOW,
 * so no symlink in a layer is followed on the host. */

struct builder_rootfs {
        int *fds; /* lowers bottom first, then the upper (when there is one) */
        size_t n;
        int upper;
        struct builder_rootfs_dir *root;
};

struct builder_rootfs_dir {
        struct builder_rootfs *r;
        char *path;    /* resolved path in the view */
        int *fds;      /* r->n slots: the directory in layer i (O_PATH), or -1 */
        size_t lo, hi; /* the layers [lo, hi) make up the directory */
        bool borrowed; /* the root: fds are the view's own */
};

static struct builder_rootfs_dir *dir_new(struct builder_rootfs *r, const char *path)
{
        struct builder_rootfs_dir *d = kcalloc(1, sizeof(*d));

        d->r = r;
        d->path = kstrdup(path);
        d->fds = kcalloc(r->n ? r->n : 1, sizeof(int));
        for (size_t i = 0; i < r->n; i++)
                d->fds[i] = -1;
        return d;
}

void builder_rootfs_dir_free(struct builder_rootfs_dir *d)
{
        if (!d || d->borrowed)
                return;
        for (size_t i = 0; i < d->r->n; i++)
                kfs_close(d->fds[i]);
        free(d->fds);
        free(d->path);
        free(d);
}

const char *builder_rootfs_dir_path(const struct builder_rootfs_dir *d)
{
        return d->path;
}

struct builder_rootfs *builder_rootfs_new(const int *lower_fds, size_t n_lowers, int upper_fd,
                                          struct kerr **err)
{
        struct builder_rootfs *r = kcalloc(1, sizeof(*r));

        r->fds = kcalloc(n_lowers + 1, sizeof(int));
        r->upper = -1;
        for (size_t i = 0; i < n_lowers + (upper_fd >= 0); i++) {
                int fd = i < n_lowers ? lower_fds[i] : upper_fd;
                int c = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (c < 0) {
                        kerr_set(err, errno, KERR_IO, "duplicate layer directory fd");
                        builder_rootfs_free(r);
                        return NULL;
                }
                r->fds[r->n++] = c;
        }
        if (upper_fd >= 0)
                r->upper = r->fds[r->n - 1];
        r->root = kcalloc(1, sizeof(*r->root));
        r->root->r = r;
        r->root->path = kstrdup("/");
        r->root->fds = r->fds;
        r->root->lo = 0;
        r->root->hi = r->n;
        r->root->borrowed = true;
        return r;
}

void builder_rootfs_free(struct builder_rootfs *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                kfs_close(r->fds[i]);
        free(r->fds);
        if (r->root)
                free(r->root->path);
        free(r->root);
        free(r);
}

int builder_rootfs_upper_fd(const struct builder_rootfs *r)
{
        return r->upper;
}

static bool is_whiteout(const struct stat *st)
{
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* Names looked up in a layer directory are single components: anything else would walk. */
static int check_name(const struct builder_rootfs_dir *d, const char *name, struct kerr **err)
{
        if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return kerr_set(err, EINVAL, KERR_INTERNAL, "bad entry name '%s' in '%s'", name,
                                d->path);
        return 0;
}

static char *child_path(const struct builder_rootfs_dir *d, const char *name)
{
        return builder_path_join(d->path, name);
}

/* The entry name of d as the layers [d->lo, hi) show it: 0 with *st and *ret_layer (the
 * layer whose entry is seen), -ENOENT when there is none or a whiteout hides it (then
 * *ret_layer is the whiteout's layer, or hi when there is none). */
static int entry_stat(const struct builder_rootfs_dir *d, const char *name, size_t hi,
                      struct stat *st, size_t *ret_layer, struct kerr **err)
{
        if (check_name(d, name, err) < 0)
                return -1;
        if (ret_layer)
                *ret_layer = hi;
        for (size_t i = hi; i-- > d->lo;) {
                if (d->fds[i] < 0)
                        continue;
                if (fstatat(d->fds[i], name, st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        _cleanup_free_ char *p = child_path(d, name);
                        return kerr_set(err, errno, KERR_IO, "look up '%s'", p);
                }
                if (ret_layer)
                        *ret_layer = i;
                return is_whiteout(st) ? -ENOENT : 0;
        }
        return -ENOENT;
}

int builder_rootfs_dir_stat(struct builder_rootfs_dir *d, const char *name, struct stat *st,
                            struct kerr **err)
{
        return entry_stat(d, name, d->hi, st, NULL, err);
}

static bool dir_is_opaque_at(int parentfd, const char *name)
{
        _cleanup_close_ int fd =
                openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char v[2];

        if (fd < 0)
                return false;
        if (fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y')
                return true;
        return fgetxattr(fd, "user.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

int builder_rootfs_dir_child(struct builder_rootfs_dir *d, const char *name,
                             struct builder_rootfs_dir **ret, struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *c = NULL;

        if (check_name(d, name, err) < 0)
                return -1;
        for (size_t i = d->hi; i-- > d->lo;) {
                struct stat s;

                if (d->fds[i] < 0)
                        continue;
                int fd = openat(d->fds[i], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT)
                        continue;
                if (fd < 0 || fstat(fd, &s) < 0) {
                        int en = errno;
                        _cleanup_free_ char *p = child_path(d, name);
                        kfs_close(fd);
                        return kerr_set(err, en, KERR_IO, "look up '%s'", p);
                }
                if (!S_ISDIR(s.st_mode)) {
                        /* A whiteout or a non-directory ends the directory here. */
                        kfs_close(fd);
                        if (c)
                                break;
                        return is_whiteout(&s) ? -ENOENT : -ENOTDIR;
                }
                if (!c) {
                        _cleanup_free_ char *p = child_path(d, name);
                        c = dir_new(d->r, p);
                        c->hi = i + 1;
                }
                c->fds[i] = fd;
                c->lo = i;
                /* Opacity only matters with layers left below. */
                if (i > d->lo && dir_is_opaque_at(d->fds[i], name))
                        break;
        }
        if (!c)
                return -ENOENT;
        *ret = TAKE_PTR(c);
        return 0;
}

/* Walks a resolved path from the root; *ret may be the root itself (free it all the same). */
static int dir_walk(struct builder_rootfs *r, const char *path, struct builder_rootfs_dir **ret,
                    struct kerr **err)
{
        _cleanup_free_ char *p = builder_path_clean(path);
        struct builder_rootfs_dir *cur = r->root;

        for (char *s = p + 1; *s;) {
                char *e = strchrnul(s, '/');
                char c = *e;
                struct builder_rootfs_dir *next = NULL;

                *e = '\0';
                int rr = builder_rootfs_dir_child(cur, s, &next, err);
                builder_rootfs_dir_free(cur);
                if (rr < 0)
                        return rr;
                cur = next;
                s = c ? e + 1 : e;
        }
        *ret = cur;
        return 0;
}

int builder_rootfs_dir_open(struct builder_rootfs *r, const char *path,
                            struct builder_rootfs_dir **ret, struct kerr **err)
{
        int rr = dir_walk(r, path, ret, err);

        if (rr == -ENOENT || rr == -ENOTDIR)
                return kerr_set(err, -rr, KERR_NOTFOUND, "open directory '%s'", path);
        return rr;
}

/* Where a resolved path is: the directory above it and the layer whose entry is seen (for
 * "/", parent is NULL and layer the top one). 0, -ENOENT / -ENOTDIR, or -1 with *err. */
struct located {
        struct builder_rootfs_dir *parent;
        char *name;
        size_t layer;
        struct stat st;
};

static void located_release(struct located *l)
{
        builder_rootfs_dir_free(l->parent);
        free(l->name);
}

static int locate(struct builder_rootfs *r, const char *path, struct located *l, struct kerr **err)
{
        _cleanup_free_ char *p = builder_path_clean(path);
        char *slash = strrchr(p, '/');
        int rr;

        *l = (struct located){0};
        if (!p[1]) {
                if (r->n == 0)
                        return -ENOENT;
                l->layer = r->n - 1;
                if (fstat(r->fds[l->layer], &l->st) < 0)
                        return kerr_set(err, errno, KERR_IO, "stat '/'");
                return 0;
        }
        l->name = kstrdup(slash + 1);
        *slash = '\0';
        rr = dir_walk(r, p[0] ? p : "/", &l->parent, err);
        if (rr == 0)
                rr = entry_stat(l->parent, l->name, l->parent->hi, &l->st, &l->layer, err);
        if (rr < 0) {
                located_release(l);
                *l = (struct located){0};
        }
        return rr;
}

static int readlink_at(int dirfd, const char *name, const char *what, char **ret, struct kerr **err)
{
        _cleanup_free_ char *buf = kcalloc(1, (size_t)PATH_MAX + 1);
        ssize_t n = readlinkat(dirfd, name, buf, PATH_MAX);

        if (n < 0)
                return kerr_set(err, errno, KERR_IO, "read link '%s'", what);
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

int builder_rootfs_lookup(void *root, const char *path, struct stat *st, char **ret_target,
                          struct kerr **err)
{
        struct located l;
        int rr = locate(root, path, &l, err);

        if (rr < 0)
                return rr;
        *st = l.st;
        if (S_ISLNK(l.st.st_mode) && ret_target)
                rr = readlink_at(l.parent->fds[l.layer], l.name, path, ret_target, err);
        located_release(&l);
        return rr;
}

int builder_rootfs_resolve(struct builder_rootfs *r, const char *path, bool follow_last, char **ret,
                           struct kerr **err)
{
        return builder_path_resolve(builder_rootfs_lookup, r, path, follow_last, ret, err);
}

int builder_rootfs_stat(struct builder_rootfs *r, const char *path, bool follow, struct stat *st,
                        char **ret_path, struct kerr **err)
{
        _cleanup_free_ char *res = NULL;
        struct located l;
        int rr;

        if (builder_rootfs_resolve(r, path, follow, &res, err) < 0)
                return -1;
        rr = locate(r, res, &l, err);
        if (rr == -ENOENT || rr == -ENOTDIR)
                return kerr_set(err, -rr, KERR_NOTFOUND, "'%s'", path);
        if (rr < 0)
                return -1;
        *st = l.st;
        located_release(&l);
        if (ret_path)
                *ret_path = TAKE_PTR(res);
        return 0;
}

static int open_entry(const struct builder_rootfs_dir *d, const char *name, size_t layer,
                      const struct stat *st, const char *what, struct kerr **err)
{
        struct stat now;

        if (!S_ISREG(st->st_mode))
                return kerr_set(err, EISDIR, KERR_INVALID, "open '%s': not a regular file", what);
        int fd = openat(d->fds[layer], name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", what);
        /* Only what was looked up is opened, even if the entry was swapped meanwhile. */
        if (fstat(fd, &now) < 0 || now.st_ino != st->st_ino || now.st_dev != st->st_dev) {
                kfs_close(fd);
                return kerr_set(err, EAGAIN, KERR_IO, "open '%s': it changed", what);
        }
        return fd;
}

int builder_rootfs_open(struct builder_rootfs *r, const char *path, struct kerr **err)
{
        _cleanup_free_ char *res = NULL;
        struct located l;
        int rr;

        if (builder_rootfs_resolve(r, path, true, &res, err) < 0)
                return -1;
        rr = locate(r, res, &l, err);
        if (rr == -ENOENT || rr == -ENOTDIR)
                return kerr_set(err, -rr, KERR_NOTFOUND, "open '%s'", path);
        if (rr < 0)
                return -1;
        if (!l.parent)
                rr = kerr_set(err, EISDIR, KERR_INVALID, "open '%s': not a regular file", path);
        else
                rr = open_entry(l.parent, l.name, l.layer, &l.st, path, err);
        located_release(&l);
        return rr;
}

/* The entry name of d as the view shows it, for opening it: 0 with *st, *ret_layer and
 * *ret_path (its path, for messages; caller frees), or -1 with KERR_NOTFOUND. */
static int entry_for(struct builder_rootfs_dir *d, const char *name, const char *what,
                     struct stat *st, size_t *ret_layer, char **ret_path, struct kerr **err)
{
        int rr = entry_stat(d, name, d->hi, st, ret_layer, err);

        if (rr == -1)
                return -1;
        *ret_path = child_path(d, name);
        if (rr < 0)
                return kerr_set(err, -rr, KERR_NOTFOUND, "%s '%s'", what, *ret_path);
        return 0;
}

int builder_rootfs_dir_open_file(struct builder_rootfs_dir *d, const char *name, struct kerr **err)
{
        _cleanup_free_ char *p = NULL;
        struct stat st;
        size_t layer;

        if (entry_for(d, name, "open", &st, &layer, &p, err) < 0)
                return -1;
        return open_entry(d, name, layer, &st, p, err);
}

int builder_rootfs_dir_readlink(struct builder_rootfs_dir *d, const char *name, char **ret,
                                struct kerr **err)
{
        _cleanup_free_ char *p = NULL;
        struct stat st;
        size_t layer;

        if (entry_for(d, name, "read link", &st, &layer, &p, err) < 0)
                return -1;
        if (!S_ISLNK(st.st_mode))
                return kerr_set(err, EINVAL, KERR_NOTFOUND, "read link '%s': not a symlink", p);
        return readlink_at(d->fds[layer], name, p, ret, err);
}

int builder_rootfs_read_file(struct builder_rootfs *r, const char *path, size_t max,
                             struct kbuf *out, struct kerr **err)
{
        _cleanup_close_ int fd = builder_rootfs_open(r, path, err);

        if (fd < 0)
                return -1;
        return kfs_read_fd(fd, path, max, out, err);
}

void builder_dirents_free(struct builder_dirent *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
}

struct layer_ent {
        char *name;
        size_t layer;
        struct stat st;
};

static int cmp_layer_ent(const void *a, const void *b)
{
        const struct layer_ent *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c)
                return c;
        /* The upper of two layers first: its entry is the one seen. */
        return x->layer < y->layer ? 1 : x->layer > y->layer ? -1 : 0;
}

int builder_rootfs_dir_list(struct builder_rootfs_dir *d, struct builder_dirent **ret,
                            size_t *ret_n, struct kerr **err)
{
        struct layer_ent *all = NULL;
        struct builder_dirent *out = NULL;
        size_t n_all = 0, n = 0;
        int rc = -1;

        for (size_t i = d->hi; i-- > d->lo;) {
                if (d->fds[i] < 0)
                        continue;
                int fd = openat(d->fds[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                DIR *dir = fd < 0 ? NULL : fdopendir(fd);
                struct dirent *de;

                if (!dir) {
                        kerr_set(err, errno, KERR_IO, "read directory '%s'", d->path);
                        kfs_close(fd);
                        goto out;
                }
                while ((errno = 0, de = readdir(dir))) {
                        struct stat s;

                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        if (fstatat(dirfd(dir), de->d_name, &s, AT_SYMLINK_NOFOLLOW) < 0) {
                                if (errno == ENOENT)
                                        continue;
                                kerr_set(err, errno, KERR_IO, "read directory '%s'", d->path);
                                closedir(dir);
                                goto out;
                        }
                        all = kreallocarray(all, n_all + 1, sizeof(*all));
                        all[n_all++] = (struct layer_ent){kstrdup(de->d_name), i, s};
                }
                if (errno) {
                        kerr_set(err, errno, KERR_IO, "read directory '%s'", d->path);
                        closedir(dir);
                        goto out;
                }
                closedir(dir);
        }
        if (n_all > 1)
                qsort(all, n_all, sizeof(*all), cmp_layer_ent);
        out = kcalloc(n_all + 1, sizeof(*out));
        for (size_t i = 0, first = 0; i < n_all; i++) {
                if (i > 0 && strcmp(all[i].name, all[first].name) == 0)
                        continue; /* hidden by the same name higher up */
                first = i;
                if (is_whiteout(&all[i].st))
                        continue;
                out[n].name = kstrdup(all[i].name);
                out[n].st = all[i].st;
                n++;
        }
        *ret = TAKE_PTR(out);
        *ret_n = n;
        rc = 0;
out:
        for (size_t i = 0; i < n_all; i++)
                free(all[i].name);
        free(all);
        return rc;
}

int builder_rootfs_readdir(struct builder_rootfs *r, const char *path, char ***ret_names,
                           size_t *ret_n, struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *d = NULL;
        struct builder_dirent *ents = NULL;
        size_t n = 0;
        int rr = dir_walk(r, path, &d, err);

        if (rr == -ENOENT)
                return kerr_set(err, ENOENT, KERR_NOTFOUND, "read directory '%s'", path);
        if (rr == -ENOTDIR)
                return kerr_set(err, ENOTDIR, KERR_INVALID, "read directory '%s'", path);
        if (rr < 0 || builder_rootfs_dir_list(d, &ents, &n, err) < 0)
                return -1;
        char **names = kcalloc(n + 1, sizeof(*names));
        for (size_t i = 0; i < n; i++)
                names[i] = TAKE_PTR(ents[i].name);
        builder_dirents_free(ents, n);
        *ret_names = names;
        *ret_n = n;
        return 0;
}

/* ---- writing into the upper dir ---- */

static int set_opaque(int dirfd)
{
        /* trusted.* needs CAP_SYS_ADMIN in the initial namespace; in a user namespace
         * overlayfs is mounted with userxattr and reads user.overlay.* instead. */
        if (fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0) == 0)
                return 0;
        return fsetxattr(dirfd, "user.overlay.opaque", "y", 1, 0);
}

static int dir_walk_mkdir(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                          gid_t gid, bool replace, struct builder_rootfs_dir **ret,
                          struct kerr **err);

int builder_rootfs_dir_upper(struct builder_rootfs_dir *d, struct kerr **err)
{
        size_t u = d->r->n - 1;
        struct builder_rootfs_dir *nd = NULL;

        if (d->r->upper < 0)
                return kerr_set(err, EROFS, KERR_INTERNAL, "write '%s': read-only view", d->path);
        if (d->fds[u] >= 0)
                return d->fds[u];
        /* Only in lower layers so far: copy it (and what is above it) up. */
        if (dir_walk_mkdir(d->r, d->path, 0755, 0, 0, false, &nd, err) < 0)
                return -1;
        d->fds[u] = nd->fds[u];
        nd->fds[u] = -1;
        d->hi = u + 1;
        builder_rootfs_dir_free(nd);
        return d->fds[u];
}

int builder_rootfs_dir_mkdir(struct builder_rootfs_dir *d, const char *name, mode_t mode, uid_t uid,
                             gid_t gid, bool replace, struct builder_rootfs_dir **ret_child,
                             bool *ret_existed, struct kerr **err)
{
        _cleanup_free_ char *p = NULL;
        struct stat st, lst;
        size_t layer = 0, u = d->r->n - 1;
        bool copy_up = false, hide_lower = false;
        int upfd = builder_rootfs_dir_upper(d, err);
        int rr;

        if (upfd < 0)
                return -1;
        rr = entry_stat(d, name, d->hi, &st, &layer, err);
        if (rr == -1)
                return -1;
        p = child_path(d, name);
        if (rr == 0 && S_ISDIR(st.st_mode)) {
                if (ret_existed)
                        *ret_existed = true;
                if (layer == u)
                        return ret_child ? builder_rootfs_dir_child(d, name, ret_child, err) : 0;
                copy_up = true;
        } else {
                if (ret_existed)
                        *ret_existed = false;
                if (rr == 0 && !replace)
                        return kerr_set(err, ENOTDIR, KERR_INVALID,
                                        "create directory '%s': a non-directory is in the way", p);
        }
        /* The upper dir may hold a whiteout, or the non-directory being replaced. The new
         * directory must then hide a lower directory that the whiteout hid. */
        if (fstatat(upfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISDIR(lst.st_mode) || (!is_whiteout(&lst) && !replace))
                        return kerr_set(err, EEXIST, KERR_IO, "create directory '%s'", p);
                if (unlinkat(upfd, name, 0) < 0)
                        return kerr_set(err, errno, KERR_IO, "replace '%s'", p);
        }
        if (copy_up) {
                /* Copy-up of a lower directory keeps its metadata. */
                mode = st.st_mode & 07777;
                uid = st.st_uid;
                gid = st.st_gid;
        } else {
                struct stat ls;
                hide_lower = entry_stat(d, name, u, &ls, NULL, NULL) == 0 && S_ISDIR(ls.st_mode);
        }
        if (mkdirat(upfd, name, 0700) < 0)
                return kerr_set(err, errno, KERR_IO, "create directory '%s'", p);
        _cleanup_close_ int fd =
                openat(upfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open directory '%s'", p);
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
                return kidmap_owner_error(err, errno, uid, gid, "set owner and mode of '%s'", p);
        if (hide_lower && set_opaque(fd) < 0)
                return kerr_set(err, errno, KERR_IO, "mark '%s' opaque", p);
        if (copy_up) {
                struct timespec ts[2] = {st.st_atim, st.st_mtim};
                if (futimens(fd, ts) < 0)
                        return kerr_set(err, errno, KERR_IO, "set times of '%s'", p);
        }
        if (!ret_child)
                return 0;
        if (copy_up)
                return builder_rootfs_dir_child(d, name, ret_child, err);
        /* A new directory: only the upper dir has it (or it hides what is below). */
        struct builder_rootfs_dir *c = dir_new(d->r, p);
        c->fds[u] = TAKE_FD(fd);
        c->lo = u;
        c->hi = u + 1;
        *ret_child = c;
        return 0;
}

static int dir_walk_mkdir(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                          gid_t gid, bool replace, struct builder_rootfs_dir **ret,
                          struct kerr **err)
{
        _cleanup_free_ char *p = builder_path_clean(path);
        struct builder_rootfs_dir *cur = r->root;

        if (r->upper < 0)
                return kerr_set(err, EROFS, KERR_INTERNAL, "write '%s': read-only view", path);
        for (char *s = p + 1; *s;) {
                char *e = strchrnul(s, '/');
                char c = *e;
                struct builder_rootfs_dir *next = NULL;

                *e = '\0';
                int rr = builder_rootfs_dir_mkdir(cur, s, c ? 0755 : mode, uid, gid, replace && !c,
                                                  &next, NULL, err);
                builder_rootfs_dir_free(cur);
                if (rr < 0)
                        return -1;
                cur = next;
                s = c ? e + 1 : e;
        }
        *ret = cur;
        return 0;
}

int builder_rootfs_dir_mkdir_p(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                               gid_t gid, struct builder_rootfs_dir **ret, struct kerr **err)
{
        return dir_walk_mkdir(r, path, mode, uid, gid, false, ret, err);
}

int builder_rootfs_mkdir_p(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                           gid_t gid, struct kerr **err)
{
        struct builder_rootfs_dir *d = NULL;

        if (dir_walk_mkdir(r, path, mode, uid, gid, false, &d, err) < 0)
                return -1;
        builder_rootfs_dir_free(d);
        return 0;
}

int builder_rootfs_mkdir_replace(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                                 gid_t gid, struct kerr **err)
{
        struct builder_rootfs_dir *d = NULL;

        if (dir_walk_mkdir(r, path, mode, uid, gid, true, &d, err) < 0)
                return -1;
        builder_rootfs_dir_free(d);
        return 0;
}

int builder_rootfs_dir_prepare(struct builder_rootfs_dir *d, const char *name, bool keep_dir,
                               struct kerr **err)
{
        size_t layer, u = d->r->n - 1;
        struct stat st;
        int upfd = builder_rootfs_dir_upper(d, err);
        int rr;

        if (upfd < 0)
                return -1;
        rr = entry_stat(d, name, d->hi, &st, &layer, err);
        if (rr == -1)
                return -1;
        if (rr == 0 && S_ISDIR(st.st_mode)) {
                _cleanup_free_ char *p = child_path(d, name);
                if (keep_dir)
                        return kerr_set(err, EISDIR, KERR_INVALID,
                                        "cannot replace directory '%s' with a file", p);
                return upfd;
        }
        /* What the upper dir has there (the entry seen, or a whiteout) makes way. */
        if (layer == u && unlinkat(upfd, name, 0) < 0) {
                _cleanup_free_ char *p = child_path(d, name);
                return kerr_set(err, errno, KERR_IO, "replace '%s'", p);
        }
        return upfd;
}

int builder_rootfs_prepare(struct builder_rootfs *r, const char *path, uid_t uid, gid_t gid,
                           const char **ret_name, struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *d = NULL;
        _cleanup_free_ char *parent = builder_path_join(path, "..");
        const char *name = strrchr(path, '/');

        if (r->upper < 0)
                return kerr_set(err, EROFS, KERR_INTERNAL, "write '%s': read-only view", path);
        if (!name || !name[1])
                return kerr_set(err, EINVAL, KERR_INVALID, "write '%s': not a file path", path);
        name++;
        if (dir_walk_mkdir(r, parent, 0755, uid, gid, false, &d, err) < 0)
                return -1;
        int upfd = builder_rootfs_dir_prepare(d, name, false, err);
        if (upfd < 0)
                return -1;
        int fd = fcntl(upfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "write '%s'", path);
        *ret_name = name;
        return fd;
}

/* ---- what a step changed ---- */

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The xattrs a layer keeps (as image/tar-write.c chooses them), as "name\0size:value"
 * records in name order, so that two directories compare with one memcmp. */
static int kept_xattrs(int fd, const char *path, struct kbuf *out, struct kerr **err)
{
        _cleanup_free_ char *list = NULL;
        _cleanup_free_ char **names = NULL;
        size_t n = 0;
        ssize_t len = flistxattr(fd, NULL, 0);

        if (len < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))
                return 0;
        if (len < 0)
                return kerr_set(err, errno, KERR_IO, "list xattrs of '%s'", path);
        list = kcalloc(1, (size_t)len + 1);
        len = len ? flistxattr(fd, list, (size_t)len) : 0;
        if (len < 0)
                return kerr_set(err, errno, KERR_IO, "list xattrs of '%s'", path);
        for (char *p = list; p < list + len; p += strlen(p) + 1) {
                if (strcmp(p, "security.capability") != 0 &&
                    (strncmp(p, "user.", 5) != 0 || strncmp(p, "user.overlay.", 13) == 0))
                        continue;
                names = kreallocarray(names, n + 1, sizeof(*names));
                names[n++] = p;
        }
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
                ssize_t k = fgetxattr(fd, names[i], NULL, 0);
                _cleanup_free_ char *v = NULL;

                if (k >= 0) {
                        v = kcalloc(1, (size_t)k + 1);
                        k = k ? fgetxattr(fd, names[i], v, (size_t)k) : 0;
                }
                if (k < 0)
                        return kerr_set(err, errno, KERR_IO, "read xattr '%s' of '%s'", names[i],
                                        path);
                kbuf_append(out, names[i], strlen(names[i]) + 1);
                kbuf_printf(out, "%zd:", k);
                kbuf_append(out, v, (size_t)k);
        }
        return 0;
}

static int upper_dir_empty(int dfd, const char *path, bool *ret_empty, struct kerr **err)
{
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *dir = fd < 0 ? NULL : fdopendir(fd);
        struct dirent *de;
        bool empty = true;

        if (!dir) {
                kerr_set(err, errno, KERR_IO, "read directory '%s'", path);
                kfs_close(fd);
                return -1;
        }
        while ((errno = 0, de = readdir(dir)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        empty = false;
                        break;
                }
        if (empty && errno) {
                kerr_set(err, errno, KERR_IO, "read directory '%s'", path);
                closedir(dir);
                return -1;
        }
        closedir(dir);
        *ret_empty = empty;
        return 0;
}

static int prune_dir(struct builder_rootfs_dir *lower, int ufd, const char *path, bool *ret_empty,
                     struct kerr **err);

/* Whether the directory name of the upper dir (ufd at path, over lower) changes nothing
 * once what is below it has been pruned: *ret_same. */
static int prune_entry(struct builder_rootfs_dir *lower, int ufd, const char *path,
                       const char *name, bool *ret_same, struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *lc = NULL;
        _cleanup_free_ char *p = builder_path_join(path, name);
        _cleanup_close_ int cfd = -1, lfd = -1;
        struct kbuf ux = KBUF_INIT, lx = KBUF_INIT;
        struct stat ust, lst;
        size_t layer = 0;
        bool opaque, empty = false;
        int rr;

        *ret_same = false;
        if (fstatat(ufd, name, &ust, AT_SYMLINK_NOFOLLOW) < 0)
                return kerr_set(err, errno, KERR_IO, "look up '%s'", p);
        if (!S_ISDIR(ust.st_mode))
                return 0;
        if (lower) {
                rr = builder_rootfs_dir_child(lower, name, &lc, err);
                if (rr == -1)
                        return -1;
        }
        /* A directory the lowers do not have is new, and so is all below it. */
        if (!lc)
                return 0;
        opaque = dir_is_opaque_at(ufd, name);
        cfd = openat(ufd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", p);
        /* Below an opaque directory nothing of the lowers shows: all of it stays. */
        if (opaque)
                rr = upper_dir_empty(cfd, p, &empty, err);
        else
                rr = prune_dir(lc, cfd, p, &empty, err);
        if (rr < 0 || !empty)
                return rr;
        if (entry_stat(lower, name, lower->hi, &lst, &layer, err) < 0)
                return -1;
        if (lst.st_mode != ust.st_mode || lst.st_uid != ust.st_uid || lst.st_gid != ust.st_gid)
                return 0;
        if (opaque) {
                struct builder_dirent *ents = NULL;
                size_t n = 0;

                if (builder_rootfs_dir_list(lc, &ents, &n, err) < 0)
                        return -1;
                builder_dirents_free(ents, n);
                if (n)
                        return 0;
        }
        lfd = openat(lower->fds[layer], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (lfd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s' in a layer", p);
        rr = kept_xattrs(cfd, p, &ux, err);
        if (rr == 0)
                rr = kept_xattrs(lfd, p, &lx, err);
        if (rr == 0)
                *ret_same = ux.len == lx.len && (!ux.len || memcmp(ux.data, lx.data, ux.len) == 0);
        kbuf_release(&ux);
        kbuf_release(&lx);
        return rr;
}

/* Prunes the directory ufd of the upper dir at path, over lower (NULL: nothing of the
 * lowers shows there); *ret_empty says whether it holds nothing afterwards. */
static int prune_dir(struct builder_rootfs_dir *lower, int ufd, const char *path, bool *ret_empty,
                     struct kerr **err)
{
        int fd = openat(ufd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *dir = fd < 0 ? NULL : fdopendir(fd);
        char **names = NULL;
        size_t n = 0, kept = 0;
        struct dirent *de;
        int rc = -1;

        if (!dir) {
                kerr_set(err, errno, KERR_IO, "read directory '%s'", path);
                kfs_close(fd);
                return -1;
        }
        /* Names first: entries are removed below, which readdir need not survive. */
        while ((errno = 0, de = readdir(dir))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                names = kreallocarray(names, n + 1, sizeof(*names));
                names[n++] = kstrdup(de->d_name);
        }
        if (errno) {
                kerr_set(err, errno, KERR_IO, "read directory '%s'", path);
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                bool same = false;

                if (prune_entry(lower, ufd, path, names[i], &same, err) < 0)
                        goto out;
                if (!same) {
                        kept++;
                        continue;
                }
                if (unlinkat(ufd, names[i], AT_REMOVEDIR) < 0) {
                        _cleanup_free_ char *p = builder_path_join(path, names[i]);
                        kerr_set(err, errno, KERR_IO, "remove '%s'", p);
                        goto out;
                }
        }
        *ret_empty = kept == 0;
        rc = 0;
out:
        closedir(dir);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return rc;
}

int builder_rootfs_prune_upper(struct builder_rootfs *r, int upper_fd, struct kerr **err)
{
        bool empty = false;

        return prune_dir(r->root, upper_fd, "/", &empty, err);
}
