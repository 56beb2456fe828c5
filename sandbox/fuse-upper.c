/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
#include "common/log.h"
#include "common/banned.h"

/* What fuse-overlayfs (1.x) leaves in an upper dir, against what overlayfs writes there:
 *
 *   whiteout       a 0/0 character device, as overlayfs, or a file ".wh.NAME" where it
 *                  cannot make one; and one for a name no lower layer has (mkdir x; rmdir x)
 *   opaque dir     trusted.overlay.opaque, or user.fuseoverlayfs.opaque where trusted.* is
 *                  not allowed, always with a file ".wh..wh..opq" in it (and a whiteout
 *                  ".wh..opq" beside it); and every new directory is one, even where no
 *                  lower layer has the name
 *   copy-up        user.fuseoverlayfs.origin
 *
 * overlayfs makes a whiteout only for a name that a lower layer shows, and a directory
 * opaque only where it replaces one that a lower layer shows; kiln's layers, which serve
 * as lower dirs as they are, are in its format. Names starting with ".wh." never come from
 * the container: fuse-overlayfs refuses them. */

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define FUSE_XATTR_PREFIX "user.fuseoverlayfs."
#define FUSE_OPAQUE "user.fuseoverlayfs.opaque"

struct norm {
        int *lowers; /* top first */
        size_t n;
};

static bool is_whiteout(const struct stat *st)
{
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static char *join(const char *dir, const char *name)
{
        struct kbuf b = KBUF_INIT;

        kbuf_printf(&b, "%s%s%s", dir, *dir ? "/" : "", name);
        return kbuf_detach(&b);
}

/* "/proc/self/fd/DIRFD/NAME" (or the dir itself for NAME ""): the l*xattr calls reach any
 * entry through it without opening it (a fifo, a device) or following it (a symlink). */
static char *fd_path(int dirfd, const char *name)
{
        struct kbuf b = KBUF_INIT;

        kbuf_printf(&b, "/proc/self/fd/%d%s%s", dirfd, *name ? "/" : "", name);
        return kbuf_detach(&b);
}

static bool xattr_is_y(const char *path, const char *name)
{
        char v[2];

        return lgetxattr(path, name, v, sizeof(v)) == 1 && v[0] == 'y';
}

/* overlayfs' own opaque mark, as overlayfs reads it in lower dirs. */
static bool overlay_opaque(const char *path)
{
        return xattr_is_y(path, "trusted.overlay.opaque") ||
               xattr_is_y(path, "user.overlay.opaque");
}

/* In one lower layer: 1 when it shows rel, -1 when it hides it (a whiteout at rel, a
 * whiteout or non-directory above it, or an opaque directory above it that lacks it), 0
 * when it says nothing about it. */
static int layer_shows(int fd, const char *rel)
{
        _cleanup_free_ char *p = kstrdup(rel);
        bool opaque = false;
        struct stat st;

        /* Each prefix is checked to be a directory before the next is looked up through it,
         * so no symlink is followed. */
        for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return opaque ? -1 : 0;
                if (!S_ISDIR(st.st_mode))
                        return -1;
                {
                        _cleanup_free_ char *fp = fd_path(fd, p);

                        opaque = opaque || overlay_opaque(fp);
                }
                *s = '/';
        }
        if (fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return opaque ? -1 : 0;
        return is_whiteout(&st) ? -1 : 1;
}

/* Whether the lower layers merged show rel. */
static bool lowers_show(const struct norm *nm, const char *rel)
{
        for (size_t i = 0; i < nm->n; i++) {
                int r = layer_shows(nm->lowers[i], rel);

                if (r)
                        return r > 0;
        }
        return false;
}

/* Removes the user.fuseoverlayfs.* xattrs of path; sets *opaque when one said opaque. */
static int strip_xattrs(const char *path, const char *rel, bool *opaque, struct kerr **err)
{
        _cleanup_free_ char *list = NULL;
        ssize_t len = llistxattr(path, NULL, 0);

        if (len < 0 && (errno == ENOTSUP || errno == EPERM))
                return 0;
        if (len < 0)
                return kerr_set(err, errno, KERR_IO, "list the xattrs of '/%s'", rel);
        if (len == 0)
                return 0;
        list = kcalloc(1, (size_t)len);
        len = llistxattr(path, list, (size_t)len);
        if (len < 0)
                return kerr_set(err, errno, KERR_IO, "list the xattrs of '/%s'", rel);
        for (char *p = list; p < list + len; p += strlen(p) + 1) {
                if (strncmp(p, FUSE_XATTR_PREFIX, strlen(FUSE_XATTR_PREFIX)) != 0)
                        continue;
                if (opaque && strcmp(p, FUSE_OPAQUE) == 0 && xattr_is_y(path, p))
                        *opaque = true;
                if (lremovexattr(path, p) < 0 && errno != ENODATA)
                        return kerr_set(err, errno, KERR_IO, "remove xattr '%s' of '/%s'", p, rel);
        }
        return 0;
}

/* Marks fd opaque as overlayfs does (trusted.*, which a user namespace does not allow,
 * then user.*), or takes the marks off. -1 with errno on failure. */
static int set_opaque(int fd, bool on)
{
        static const char *const names[] = {"trusted.overlay.opaque", "user.overlay.opaque"};

        if (on) {
                for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                        if (fsetxattr(fd, names[i], "y", 1, 0) == 0)
                                return 0;
                return -1;
        }
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                if (fremovexattr(fd, names[i]) < 0 && errno != ENODATA && errno != EPERM &&
                    errno != ENOTSUP)
                        return -1;
        return 0;
}

static void names_free(char **v)
{
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}
DEFINE_CLEANUP(char **, names_free)

/* The names in dir (read before any is changed). */
static int read_names(int dirfd, const char *rel, char ***ret, struct kerr **err)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char **v = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;

        if (fd < 0 || !(d = fdopendir(fd))) {
                if (fd >= 0)
                        kfs_close(fd);
                return kerr_set(err, errno, KERR_IO, "read the directory '/%s'", rel);
        }
        v = kcalloc(1, sizeof(*v));
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                v = kreallocarray(v, n + 2, sizeof(*v));
                v[n++] = kstrdup(de->d_name);
                v[n] = NULL;
        }
        if (errno) {
                int en = errno;

                closedir(d);
                names_free(v);
                return kerr_set(err, en, KERR_IO, "read the directory '/%s'", rel);
        }
        closedir(d);
        *ret = v;
        return 0;
}

/* A ".wh.TARGET" entry: a whiteout of TARGET, where overlayfs would have one. */
static int whiteout_file(const struct norm *nm, int dirfd, const char *rel, const char *name,
                         bool below, struct kerr **err)
{
        const char *target = name + strlen(WH_PREFIX);
        _cleanup_free_ char *trel = join(rel, target);
        struct stat st;

        if (*target && !strchr(target, '/') && below &&
            fstatat(dirfd, target, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
            lowers_show(nm, trel)) {
                if (mknodat(dirfd, target, S_IFCHR, makedev(0, 0)) < 0) {
                        if (errno != EPERM)
                                return kerr_set(err, errno, KERR_IO, "make the whiteout '/%s'",
                                                trel);
                        /* No whiteouts here (before Linux 5.8 without privilege; on an
                         * overlayfs): the file says it the way a layer tar does, and goes
                         * out as a whiteout would. */
                        klog_debug("sandbox: '/%s/%s' stays: no whiteouts here", rel, name);
                        (void)fchmodat(dirfd, name, 0600, 0);
                        (void)fchownat(dirfd, name, 0, 0, AT_SYMLINK_NOFOLLOW);
                        return 0;
                }
        }
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return kerr_set(err, errno, KERR_IO, "remove '/%s/%s'", rel, name);
        return 0;
}

/* Marks the directory fd opaque where no xattr can say it (an upper dir on overlayfs,
 * which reserves the overlay xattrs): with the file a layer tar has, which goes out as the
 * directory's own would (its owner and permissions). */
static int opaque_file(int fd, const struct stat *dir, const char *rel, struct kerr **err)
{
        int f = openat(fd, WH_OPAQUE, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (f < 0)
                return kerr_set(err, errno, KERR_IO, "mark '/%s' opaque", rel);
        (void)fchown(f, dir->st_uid, dir->st_gid);
        (void)fchmod(f, dir->st_mode & 0777);
        kfs_close(f);
        klog_debug("sandbox: '/%s' is opaque by its " WH_OPAQUE ": no xattr for it here", rel);
        return 0;
}

/* dirfd is rel in the upper dir; below: whether the lower layers may show names in it;
 * keep_opq: its ".wh..wh..opq" file stays, as its only opaque mark. */
static int normalize_dir(const struct norm *nm, int dirfd, const char *rel, bool below,
                         bool keep_opq, struct kerr **err)
{
        _cleanup_(names_freep) char **names = NULL;
        struct stat self;

        /* What is taken out or put in here must not change the time the command left. */
        if (fstat(dirfd, &self) < 0)
                return kerr_set(err, errno, KERR_IO, "stat '/%s'", rel);
        if (read_names(dirfd, rel, &names, err) < 0)
                return -1;
        for (char **np = names; *np; np++) {
                const char *name = *np;
                _cleanup_free_ char *crel = join(rel, name), *path = NULL;
                _cleanup_close_ int cfd = -1;
                bool marked = false, shown, keep;
                struct stat st;

                if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue; /* an entry whiteout_file() took away */
                        return kerr_set(err, errno, KERR_IO, "stat '/%s'", crel);
                }
                if (strcmp(name, WH_OPAQUE) == 0 && !S_ISDIR(st.st_mode)) {
                        /* Seen by the caller, when it decided about this directory. */
                        if (!keep_opq && unlinkat(dirfd, name, 0) < 0)
                                return kerr_set(err, errno, KERR_IO, "remove '/%s'", crel);
                        continue;
                }
                /* fuse-overlayfs reads any ".wh.NAME" as a whiteout of NAME (the device
                 * ".wh..opq" it leaves in opaque directories whites out ".opq"). */
                if (strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0 && !S_ISDIR(st.st_mode)) {
                        if (whiteout_file(nm, dirfd, rel, name, below, err) < 0)
                                return -1;
                        continue;
                }
                if (is_whiteout(&st)) {
                        if (!(below && lowers_show(nm, crel)) && unlinkat(dirfd, name, 0) < 0)
                                return kerr_set(err, errno, KERR_IO, "remove '/%s'", crel);
                        continue;
                }
                path = fd_path(dirfd, name);
                if (strip_xattrs(path, crel, S_ISDIR(st.st_mode) ? &marked : NULL, err) < 0)
                        return -1;
                if (!S_ISDIR(st.st_mode))
                        continue;
                cfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (cfd < 0)
                        return kerr_set(err, errno, KERR_IO, "open '/%s'", crel);
                {
                        struct stat o;

                        marked = marked || overlay_opaque(path) ||
                                 fstatat(cfd, WH_OPAQUE, &o, AT_SYMLINK_NOFOLLOW) == 0;
                }
                shown = below && lowers_show(nm, crel);
                keep = false;
                if (marked && set_opaque(cfd, shown) < 0) {
                        if (!shown || (errno != EPERM && errno != ENOTSUP))
                                return kerr_set(err, errno, KERR_IO, "%s '/%s' opaque",
                                                shown ? "mark" : "unmark", crel);
                        if (opaque_file(cfd, &st, crel, err) < 0)
                                return -1;
                        keep = true;
                }
                /* Below an opaque directory, or one no lower layer has, the lower layers
                 * show nothing. */
                if (normalize_dir(nm, cfd, crel, shown && !marked, keep, err) < 0)
                        return -1;
        }
        if (futimens(dirfd, (const struct timespec[]){self.st_atim, self.st_mtim}) < 0)
                return kerr_set(err, errno, KERR_IO, "set the times of '/%s'", rel);
        return 0;
}

int sbx_fuse_upper_normalize(const char *upper, const char *const *lowers, size_t n_lowers,
                             struct kerr **err)
{
        _cleanup_close_ int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct norm nm = {.lowers = kcalloc(n_lowers + 1, sizeof(int)), .n = 0};
        _cleanup_free_ char *path = NULL;
        int ret = -1;

        if (fd < 0) {
                kerr_set(err, errno, KERR_IO, "open the upper dir '%s'", upper);
                goto out;
        }
        for (size_t i = n_lowers; i-- > 0;) {
                int lfd = open(lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);

                if (lfd < 0) {
                        kerr_set(err, errno, KERR_IO, "open the layer '%s'", lowers[i]);
                        goto out;
                }
                nm.lowers[nm.n++] = lfd;
        }
        path = fd_path(fd, "");
        if (strip_xattrs(path, "", NULL, err) < 0 ||
            normalize_dir(&nm, fd, "", nm.n > 0, false, err) < 0)
                goto out;
        ret = 0;
out:
        for (size_t i = 0; i < nm.n; i++)
                kfs_close(nm.lowers[i]);
        free(nm.lowers);
        if (ret < 0)
                kerr_wrap(err, "turn the upper dir of fuse-overlayfs into a layer");
        return ret;
}
