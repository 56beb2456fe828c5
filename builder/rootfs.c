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

        if (path[0] != '/')
                kbuf_printf(&b, "%s/", dir ? dir : "/");
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

/* ---- rootfs views ---- */

struct builder_rootfs {
        int *fds; /* lowers bottom first, then the upper (when there is one) */
        size_t n;
        int upper;
};

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
        return r;
}

void builder_rootfs_free(struct builder_rootfs *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                kfs_close(r->fds[i]);
        free(r->fds);
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

/* Opens path in one layer without following any symlink (O_PATH). -ENOENT/-ENOTDIR when
 * the layer has nothing there. */
static int layer_open(int layerfd, const char *path, int flags, struct kerr **err)
{
        struct kerr *e = NULL;
        int fd = kfs_open_in_root(layerfd, path, flags | O_NOFOLLOW | O_CLOEXEC, 0,
                                  KFS_RESOLVE_NO_SYMLINKS, &e);

        if (fd >= 0)
                return fd;
        int en = e ? e->errnum : EIO;
        if (en == ENOENT || en == ENOTDIR || en == ELOOP) {
                /* ELOOP: a symlink on the way, so the path is not a directory here. */
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

static bool dir_is_opaque(int layerfd, const char *path)
{
        _cleanup_close_ int fd =
                kfs_open_in_root(layerfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                                 KFS_RESOLVE_NO_SYMLINKS, NULL);
        char v[2];

        if (fd < 0)
                return false;
        if (fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y')
                return true;
        return fgetxattr(fd, "user.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

/* The merged lookup of a resolved path among layers [lo, hi): *ret_top is the layer whose
 * entry is seen and [*ret_lo, *ret_top] the layers that make up a directory there. */
static int merged_lookup(struct builder_rootfs *r, size_t lo, size_t hi, const char *path,
                         struct stat *st, size_t *ret_top, size_t *ret_lo, struct kerr **err)
{
        _cleanup_free_ char *p = builder_path_clean(path);
        size_t top = hi, bottom = lo;
        size_t end = 1;

        if (hi <= lo)
                return -ENOENT;
        /* Walk the path one component at a time, narrowing the layers that can still
         * contribute below it. */
        for (;;) {
                char *slash = strchr(p + end, '/');
                char saved = 0;
                bool found = false;
                size_t new_bottom = bottom;

                if (p[1] && slash) {
                        saved = *slash;
                        *slash = '\0';
                }
                for (size_t i = top; i-- > bottom;) {
                        struct stat s;
                        int fd = layer_open(r->fds[i], p, O_PATH, err);
                        if (fd == -ENOENT || fd == -ENOTDIR)
                                continue;
                        if (fd < 0)
                                return kerr_wrap(err, "look up '%s'", p);
                        int rs = fstat(fd, &s);
                        kfs_close(fd);
                        if (rs < 0)
                                return kerr_set(err, errno, KERR_IO, "stat '%s'", p);
                        if (is_whiteout(&s)) {
                                new_bottom = i + 1;
                                break;
                        }
                        if (!found) {
                                found = true;
                                *st = s;
                                top = i + 1;
                                new_bottom = i;
                                if (!S_ISDIR(s.st_mode))
                                        break;
                                /* Opacity only matters with layers left below. */
                                if (p[1] && i > bottom && dir_is_opaque(r->fds[i], p))
                                        break;
                                continue;
                        }
                        if (!S_ISDIR(s.st_mode))
                                break;
                        new_bottom = i;
                        if (i > bottom && dir_is_opaque(r->fds[i], p))
                                break;
                }
                if (!found)
                        return -ENOENT;
                bottom = new_bottom;
                if (!slash || !p[1]) {
                        *ret_top = top - 1;
                        *ret_lo = bottom;
                        return 0;
                }
                if (!S_ISDIR(st->st_mode))
                        return -ENOTDIR;
                *slash = saved;
                end = (size_t)(slash - p) + 1;
        }
}

int builder_rootfs_lookup(void *root, const char *path, struct stat *st, char **ret_target,
                          struct kerr **err)
{
        struct builder_rootfs *r = root;
        size_t top, lo;
        int rr = merged_lookup(r, 0, r->n, path, st, &top, &lo, err);

        if (rr < 0)
                return rr;
        if (S_ISLNK(st->st_mode) && ret_target) {
                _cleanup_free_ char *buf = kcalloc(1, (size_t)PATH_MAX + 1);
                _cleanup_close_ int fd = layer_open(r->fds[top], path, O_PATH, err);
                if (fd < 0)
                        return kerr_wrap(err, "read link '%s'", path);
                ssize_t n = readlinkat(fd, "", buf, PATH_MAX);
                if (n < 0)
                        return kerr_set(err, errno, KERR_IO, "read link '%s'", path);
                buf[n] = '\0';
                *ret_target = TAKE_PTR(buf);
        }
        return 0;
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
        size_t top, lo;
        int rr;

        if (builder_rootfs_resolve(r, path, follow, &res, err) < 0)
                return -1;
        rr = merged_lookup(r, 0, r->n, res, st, &top, &lo, err);
        if (rr == -ENOENT || rr == -ENOTDIR)
                return kerr_set(err, -rr, KERR_NOTFOUND, "'%s'", path);
        if (rr < 0)
                return -1;
        if (ret_path)
                *ret_path = TAKE_PTR(res);
        return 0;
}

int builder_rootfs_open(struct builder_rootfs *r, const char *path, struct kerr **err)
{
        _cleanup_free_ char *res = NULL;
        struct stat st;
        size_t top, lo;
        int rr;

        if (builder_rootfs_resolve(r, path, true, &res, err) < 0)
                return -1;
        rr = merged_lookup(r, 0, r->n, res, &st, &top, &lo, err);
        if (rr == -ENOENT || rr == -ENOTDIR)
                return kerr_set(err, -rr, KERR_NOTFOUND, "open '%s'", path);
        if (rr < 0)
                return -1;
        if (!S_ISREG(st.st_mode))
                return kerr_set(err, EISDIR, KERR_INVALID, "open '%s': not a regular file", path);
        int fd = layer_open(r->fds[top], res, O_RDONLY | O_NOCTTY, err);
        if (fd < 0)
                return kerr_set(err, EIO, KERR_IO, "open '%s'", path);
        return fd;
}

int builder_rootfs_read_file(struct builder_rootfs *r, const char *path, size_t max,
                             struct kbuf *out, struct kerr **err)
{
        _cleanup_close_ int fd = builder_rootfs_open(r, path, err);

        if (fd < 0)
                return -1;
        return kfs_read_fd(fd, path, max, out, err);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool names_has(char **v, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], name) == 0)
                        return true;
        return false;
}

int builder_rootfs_readdir(struct builder_rootfs *r, const char *path, char ***ret_names,
                           size_t *ret_n, struct kerr **err)
{
        struct stat st;
        size_t top, lo, n = 0, n_seen = 0;
        char **names = NULL, **seen = NULL;
        int rr = merged_lookup(r, 0, r->n, path, &st, &top, &lo, err);

        if (rr == -ENOENT || rr == -ENOTDIR)
                return kerr_set(err, -rr, KERR_NOTFOUND, "read directory '%s'", path);
        if (rr < 0)
                return -1;
        if (!S_ISDIR(st.st_mode))
                return kerr_set(err, ENOTDIR, KERR_INVALID, "read directory '%s'", path);
        for (size_t i = top + 1; i-- > lo;) {
                int fd = layer_open(r->fds[i], path, O_RDONLY | O_DIRECTORY, err);
                if (fd == -ENOENT || fd == -ENOTDIR)
                        continue;
                if (fd < 0)
                        goto fail;
                DIR *d = fdopendir(fd);
                if (!d) {
                        kfs_close(fd);
                        kerr_set(err, errno, KERR_IO, "read directory '%s'", path);
                        goto fail;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        if (names_has(seen, n_seen, de->d_name))
                                continue;
                        seen = kreallocarray(seen, n_seen + 1, sizeof(*seen));
                        seen[n_seen++] = kstrdup(de->d_name);
                        struct stat s;
                        if (fstatat(dirfd(d), de->d_name, &s, AT_SYMLINK_NOFOLLOW) == 0 &&
                            is_whiteout(&s))
                                continue;
                        names = kreallocarray(names, n + 2, sizeof(*names));
                        names[n++] = kstrdup(de->d_name);
                        names[n] = NULL;
                }
                closedir(d);
        }
        for (size_t i = 0; i < n_seen; i++)
                free(seen[i]);
        free(seen);
        if (!names)
                names = kcalloc(1, sizeof(*names));
        qsort(names, n, sizeof(*names), cmp_str);
        *ret_names = names;
        *ret_n = n;
        return 0;
fail:
        for (size_t i = 0; i < n_seen; i++)
                free(seen[i]);
        free(seen);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return -1;
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

/* Makes the directory at resolved path p exist in the upper dir. */
static int upper_dir(struct builder_rootfs *r, const char *p, mode_t mode, uid_t uid, gid_t gid,
                     bool replace, struct kerr **err)
{
        struct stat st, lst;
        size_t top, lo;
        int rr;

        if (strcmp(p, "/") == 0)
                return 0;
        rr = merged_lookup(r, 0, r->n, p, &st, &top, &lo, err);
        if (rr < 0 && rr != -ENOENT && rr != -ENOTDIR)
                return -1;
        if (rr == 0 && S_ISDIR(st.st_mode) && top == r->n - 1)
                return 0; /* already in the upper dir */
        if (rr == 0 && !S_ISDIR(st.st_mode) && !replace)
                return kerr_set(err, ENOTDIR, KERR_INVALID,
                                "create directory '%s': a non-directory is in the way", p);
        if (rr == 0 && !S_ISDIR(st.st_mode))
                rr = -ENOENT; /* replaced below */

        _cleanup_free_ char *parent = builder_path_join(p, "..");
        const char *name = strrchr(p, '/') + 1;
        _cleanup_close_ int pfd = kfs_open_in_root(r->upper, parent, O_PATH | O_DIRECTORY, 0,
                                                   KFS_RESOLVE_NO_SYMLINKS, err);
        if (pfd < 0)
                return kerr_wrap(err, "create directory '%s'", p);
        /* A whiteout in the upper dir is replaced; the new directory then must hide what the
         * whiteout hid. */
        bool hide_lower = false;
        if (fstatat(pfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISDIR(lst.st_mode) || (!is_whiteout(&lst) && !replace))
                        return kerr_set(err, EEXIST, KERR_IO, "create directory '%s'", p);
                if (unlinkat(pfd, name, 0) < 0)
                        return kerr_set(err, errno, KERR_IO, "replace '%s'", p);
        }
        if (rr != 0) {
                struct stat ls;
                hide_lower = merged_lookup(r, 0, r->n - 1, p, &ls, &top, &lo, NULL) == 0 &&
                             S_ISDIR(ls.st_mode);
        } else {
                /* Copy-up of a lower directory keeps its metadata. */
                mode = st.st_mode & 07777;
                uid = st.st_uid;
                gid = st.st_gid;
        }
        if (mkdirat(pfd, name, 0700) < 0)
                return kerr_set(err, errno, KERR_IO, "create directory '%s'", p);
        _cleanup_close_ int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open directory '%s'", p);
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
                return kidmap_owner_error(err, errno, uid, gid, "set owner and mode of '%s'", p);
        if (hide_lower && set_opaque(fd) < 0)
                return kerr_set(err, errno, KERR_IO, "mark '%s' opaque", p);
        if (rr == 0 && !hide_lower) {
                struct timespec ts[2] = {st.st_atim, st.st_mtim};
                if (futimens(fd, ts) < 0)
                        return kerr_set(err, errno, KERR_IO, "set times of '%s'", p);
        }
        return 0;
}

static int mkdir_p(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid, gid_t gid,
                   bool replace, struct kerr **err)
{
        _cleanup_free_ char *p = builder_path_clean(path);

        if (r->upper < 0)
                return kerr_set(err, EROFS, KERR_INTERNAL, "write '%s': read-only view", path);
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char c = *s;
                *s = '\0';
                int rr = upper_dir(r, p, c ? 0755 : mode, uid, gid, replace && !c, err);
                *s = c;
                if (rr < 0)
                        return -1;
                if (!c)
                        break;
        }
        return 0;
}

int builder_rootfs_mkdir_p(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                           gid_t gid, struct kerr **err)
{
        return mkdir_p(r, path, mode, uid, gid, false, err);
}

int builder_rootfs_mkdir_replace(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                                 gid_t gid, struct kerr **err)
{
        return mkdir_p(r, path, mode, uid, gid, true, err);
}

int builder_rootfs_prepare(struct builder_rootfs *r, const char *path, uid_t uid, gid_t gid,
                           const char **ret_name, struct kerr **err)
{
        _cleanup_free_ char *parent = builder_path_join(path, "..");
        const char *name = strrchr(path, '/');
        struct stat st;

        if (r->upper < 0)
                return kerr_set(err, EROFS, KERR_INTERNAL, "write '%s': read-only view", path);
        if (!name || !name[1])
                return kerr_set(err, EINVAL, KERR_INVALID, "write '%s': not a file path", path);
        name++;
        if (builder_rootfs_mkdir_p(r, parent, 0755, uid, gid, err) < 0)
                return -1;
        int pfd = kfs_open_in_root(r->upper, parent, O_PATH | O_DIRECTORY, 0,
                                   KFS_RESOLVE_NO_SYMLINKS, err);
        if (pfd < 0)
                return kerr_wrap(err, "write '%s'", path);
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
            unlinkat(pfd, name, 0) < 0) {
                kerr_set(err, errno, KERR_IO, "replace '%s'", path);
                kfs_close(pfd);
                return -1;
        }
        *ret_name = name;
        return pfd;
}
