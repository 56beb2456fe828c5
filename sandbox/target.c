/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* Symlinks followed while resolving one target, as the kernel's MAXSYMLINKS. */
#define MAX_LINKS 40

void sbx_fd_path(char *buf, size_t size, int fd)
{
        snprintf(buf, size, SBX_OLDROOT "/proc/self/fd/%d", fd);
}

int sbx_mount_id(int fd, uint64_t *ret)
{
        struct statx stx;

        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0)
                return -1;
        if (!(stx.stx_mask & STATX_MNT_ID)) {
                errno = ENOSYS;
                return -1;
        }
        *ret = stx.stx_mnt_id;
        return 0;
}

struct level {
        int fd;
        char *rel; /* "" for the root */
};

struct walk {
        struct level *v;
        size_t n, cap;
};

static void walk_push(struct walk *w, int fd, const char *rel)
{
        if (w->n == w->cap) {
                w->cap = w->cap ? 2 * w->cap : 8;
                w->v = kreallocarray(w->v, w->cap, sizeof(*w->v));
        }
        w->v[w->n].fd = fd;
        w->v[w->n].rel = kstrdup(rel);
        w->n++;
}

static void walk_pop(struct walk *w)
{
        w->n--;
        kfs_close(w->v[w->n].fd);
        free(w->v[w->n].rel);
}

static void walk_release(struct walk *w)
{
        while (w->n)
                walk_pop(w);
        free(w->v);
}

static char *join(const char *dir, const char *name)
{
        struct kbuf b = KBUF_INIT;

        kbuf_printf(&b, "%s%s%s", dir, *dir ? "/" : "", name);
        return kbuf_detach(&b);
}

static int record(struct sbx_root *r, enum sbx_created_kind kind, const char *path,
                  const struct stat *st, struct kerr **err)
{
        struct sbx_created c = {.kind = kind, .path = (char *)path};

        if (st) {
                c.mode = st->st_mode;
                c.uid = st->st_uid;
                c.gid = st->st_gid;
        }
        sbx_created_list_add(&r->seen, &c);
        if (sbx_chan_send_created(r->chan, &c) < 0)
                return kerr_set(err, errno, KERR_IO, "report the creation of '/%s'", path);
        return 0;
}

/* Creating in the overlay copies the directory (and its parents) up from the lower layers:
 * record each one that is not in the upper dir yet, so that the parent can drop it again
 * when the command left it as it was. */
static int record_copy_ups(struct sbx_root *r, const char *rel, struct kerr **err)
{
        _cleanup_free_ char *prefix = NULL;

        if (r->upperfd < 0 || !*rel)
                return 0;
        prefix = kstrdup(rel);
        for (char *p = prefix;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                {
                        char save = *p;
                        struct stat st;
                        int fd;

                        *p = '\0';
                        if (!sbx_created_list_has(&r->seen, prefix)) {
                                fd = kfs_open_in_root(r->upperfd, prefix,
                                                      O_PATH | O_DIRECTORY | O_NOFOLLOW, 0,
                                                      KFS_RESOLVE_NO_SYMLINKS, NULL);
                                if (fd >= 0) {
                                        kfs_close(fd);
                                } else if (errno == ENOENT) {
                                        if (fstatat(r->rootfd, prefix, &st, AT_SYMLINK_NOFOLLOW) <
                                            0)
                                                return kerr_set(err, errno, KERR_IO, "stat '/%s'",
                                                                prefix);
                                        if (record(r, SBX_CREATED_COPYUP, prefix, &st, err) < 0)
                                                return -1;
                                }
                        }
                        *p = save;
                        if (save == '\0')
                                break;
                }
        }
        return 0;
}

/* May the sandbox create an entry in dirfd? In the root file system yes (recorded, and
 * removed after the run); in a tmpfs yes (it goes away with the run); anywhere else (a bind
 * mount of a host directory, /proc, /sys) no. Sets *in_root. */
static int check_creatable(struct sbx_root *r, int dirfd, const char *rel, const char *target,
                           bool *in_root, struct kerr **err)
{
        struct statfs sf;
        uint64_t id = 0;

        if (sbx_mount_id(dirfd, &id) == 0 && id == r->mnt_id) {
                *in_root = true;
                return 0;
        }
        *in_root = false;
        if (fstatfs(dirfd, &sf) == 0 && sf.f_type == TMPFS_MAGIC)
                return 0;
        return kerr_set(err, 0, KERR_INVALID,
                        "create the mount target '%s': '/%s' is on another mount than the "
                        "container's root file system",
                        target, rel);
}

static int create_entry(struct sbx_root *r, const struct level *top, const char *name, bool as_dir,
                        mode_t file_mode, const char *target, struct kerr **err)
{
        _cleanup_free_ char *rel = join(top->rel, name);
        bool in_root = false;

        if (check_creatable(r, top->fd, top->rel, target, &in_root, err) < 0)
                return -1;
        if (in_root && record_copy_ups(r, top->rel, err) < 0)
                return -1;
        if (as_dir) {
                if (mkdirat(top->fd, name, 0755) < 0)
                        return kerr_set(err, errno, KERR_IO, "create the directory '/%s'", rel);
        } else {
                int fd = openat(top->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                file_mode);

                if (fd < 0)
                        return kerr_set(err, errno, KERR_IO, "create the file '/%s'", rel);
                kfs_close(fd);
        }
        if (in_root)
                return record(r, as_dir ? SBX_CREATED_DIR : SBX_CREATED_FILE, rel, NULL, err);
        return 0;
}

/* Takes the first component off *rest (skipping slashes); NULL when none is left. Sets
 * *last when nothing but slashes follows it. */
static char *next_component(const char **rest, bool *last)
{
        const char *p = *rest, *end;
        char *c;

        while (*p == '/')
                p++;
        if (!*p)
                return NULL;
        end = strchrnul(p, '/');
        c = kstrndup(p, (size_t)(end - p));
        while (*end == '/')
                end++;
        *rest = end;
        *last = *end == '\0';
        return c;
}

int sbx_target_open(struct sbx_root *r, const char *target, bool dir, mode_t file_mode,
                    char **ret_rel, struct kerr **err)
{
        struct walk w = {0};
        _cleanup_free_ char *path = kstrdup(target);
        const char *rest = path;
        int links = 0, ret = -1, fd;

        fd = fcntl(r->rootfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "duplicate the root fd");
        walk_push(&w, fd, "");
        for (;;) {
                struct level *top = &w.v[w.n - 1];
                _cleanup_free_ char *c = NULL;
                struct stat st;
                bool last = false;

                c = next_component(&rest, &last);
                if (!c) {
                        /* The target is the directory we are in ("/", or ending in ".."). */
                        if (!dir) {
                                kerr_set(err, 0, KERR_INVALID, "mount target '%s' is a directory",
                                         target);
                                goto out;
                        }
                        ret = fcntl(top->fd, F_DUPFD_CLOEXEC, 3);
                        if (ret < 0)
                                kerr_set(err, errno, KERR_IO, "duplicate an fd");
                        else if (ret_rel)
                                *ret_rel = kstrdup(top->rel);
                        goto out;
                }
                if (strcmp(c, ".") == 0)
                        continue;
                if (strcmp(c, "..") == 0) {
                        if (w.n > 1)
                                walk_pop(&w);
                        continue;
                }
                if (fstatat(top->fd, c, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT) {
                                kerr_set(err, errno, KERR_IO, "stat '/%s/%s'", top->rel, c);
                                goto out;
                        }
                        if (create_entry(r, top, c, !last || dir, file_mode, target, err) < 0)
                                goto out;
                        if (fstatat(top->fd, c, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                kerr_set(err, errno, KERR_IO, "stat '/%s/%s'", top->rel, c);
                                goto out;
                        }
                }
                if (S_ISLNK(st.st_mode)) {
                        char link[4096];
                        ssize_t k;
                        char *next;

                        if (++links > MAX_LINKS) {
                                kerr_set(err, ELOOP, KERR_INVALID, "resolve the mount target '%s'",
                                         target);
                                goto out;
                        }
                        k = readlinkat(top->fd, c, link, sizeof(link) - 1);
                        if (k < 0) {
                                kerr_set(err, errno, KERR_IO, "read the link '/%s/%s'", top->rel,
                                         c);
                                goto out;
                        }
                        link[k] = '\0';
                        /* An absolute link starts again at the container's root. */
                        if (link[0] == '/')
                                while (w.n > 1)
                                        walk_pop(&w);
                        if (asprintf(&next, "%s/%s", link, rest) < 0)
                                abort();
                        free(path);
                        path = next;
                        rest = path;
                        continue;
                }
                if (last) {
                        if (dir && !S_ISDIR(st.st_mode)) {
                                kerr_set(err, 0, KERR_INVALID,
                                         "mount target '%s' is not a directory", target);
                                goto out;
                        }
                        if (!dir && S_ISDIR(st.st_mode)) {
                                kerr_set(err, 0, KERR_INVALID, "mount target '%s' is a directory",
                                         target);
                                goto out;
                        }
                        ret = openat(top->fd, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (ret < 0)
                                kerr_set(err, errno, KERR_IO, "open the mount target '%s'", target);
                        else if (ret_rel)
                                *ret_rel = join(top->rel, c);
                        goto out;
                }
                if (!S_ISDIR(st.st_mode)) {
                        kerr_set(err, ENOTDIR, KERR_INVALID, "resolve the mount target '%s'",
                                 target);
                        goto out;
                }
                fd = openat(top->fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        kerr_set(err, errno, KERR_IO, "open '/%s/%s'", top->rel, c);
                        goto out;
                }
                {
                        _cleanup_free_ char *rel = join(top->rel, c);

                        walk_push(&w, fd, rel);
                }
        }
out:
        walk_release(&w);
        return ret;
}

static bool is_opaque(int dirfd, const char *name)
{
        _cleanup_close_ int fd =
                openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char v[2];

        if (fd < 0)
                return true; /* cannot tell: keep it */
        if (fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) >= 1)
                return true;
        return fgetxattr(fd, "user.overlay.opaque", v, sizeof(v)) >= 1;
}

/* Removes one recorded entry if it is still what the sandbox left there. 1 when removed, 0
 * when kept, -1 on an error. */
static int remove_created(int upperfd, const struct sbx_created *c, struct kerr **err)
{
        _cleanup_free_ char *dir = kstrdup(c->path);
        _cleanup_close_ int dfd = -1;
        char *slash = strrchr(dir, '/');
        const char *base = c->path;
        struct stat st;
        int flags = 0;

        if (slash) {
                *slash = '\0';
                base = slash + 1;
                dfd = kfs_open_in_root(upperfd, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0,
                                       KFS_RESOLVE_NO_SYMLINKS, NULL);
        } else {
                dfd = fcntl(upperfd, F_DUPFD_CLOEXEC, 3);
        }
        /* A parent the command removed or replaced: nothing of ours is left there. */
        if (dfd < 0)
                return 0;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : kerr_set(err, errno, KERR_IO, "stat '%s'", c->path);
        switch (c->kind) {
        case SBX_CREATED_FILE:
                if (!S_ISREG(st.st_mode) || st.st_size != 0)
                        return 0;
                break;
        case SBX_CREATED_DIR:
                if (!S_ISDIR(st.st_mode))
                        return 0;
                flags = AT_REMOVEDIR;
                break;
        case SBX_CREATED_COPYUP:
                if (!S_ISDIR(st.st_mode) || (st.st_mode & 07777) != (c->mode & 07777) ||
                    st.st_uid != c->uid || st.st_gid != c->gid || is_opaque(dfd, base))
                        return 0;
                flags = AT_REMOVEDIR;
                break;
        default:
                return 0;
        }
        if (unlinkat(dfd, base, flags) == 0)
                return 1;
        if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOENT)
                return 0; /* the command put something in it: it is the command's now */
        return kerr_set(err, errno, KERR_IO, "remove '%s'", c->path);
}

int sbx_created_cleanup(const char *upper, const struct sbx_created_list *l, struct kerr **err)
{
        _cleanup_close_ int upperfd = -1;
        int ret = 0;

        if (!l->n)
                return 0;
        upperfd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (upperfd < 0)
                return kerr_set(err, errno, KERR_IO, "open the upper dir '%s'", upper);
        for (size_t i = l->n; i-- > 0;) {
                struct kerr *e = NULL;
                int r = remove_created(upperfd, &l->v[i], &e);

                if (r < 0 && ret == 0) {
                        ret = -1;
                        if (err) {
                                kerr_free(*err);
                                *err = TAKE_PTR(e);
                                kerr_wrap(err, "remove the mount points the sandbox created");
                        }
                }
                kerr_free(e);
                if (r == 0)
                        klog_debug("sandbox: left '%s' in the upper dir: the command changed it",
                                   l->v[i].path);
        }
        return ret;
}
