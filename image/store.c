/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

char *image_store_default_root(void)
{
        const char *xdg = getenv("XDG_DATA_HOME");
        const char *home = getenv("HOME");
        char *r = NULL;

        if (geteuid() == 0)
                return kstrdup("/var/lib/kiln");
        /* The XDG spec says relative values are invalid and must be ignored. */
        if (xdg && xdg[0] == '/') {
                if (asprintf(&r, "%s/kiln", xdg) < 0)
                        abort();
                return r;
        }
        if (!home || home[0] != '/') {
                struct passwd *pw = getpwuid(geteuid());
                home = pw && pw->pw_dir ? pw->pw_dir : "/";
        }
        if (asprintf(&r, "%s/.local/share/kiln", home) < 0)
                abort();
        return r;
}

void image_store_tmp_name(char *buf, size_t size, const char *suffix)
{
        unsigned long long rnd = 0;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
                rnd = (unsigned long long)random() << 32 ^ (unsigned long long)random();
        snprintf(buf, size, "%d-%016llx%s", (int)getpid(), rnd, suffix);
}

int image_store_rmtree_at(int dirfd, const char *name, struct kerr **err)
{
        struct stat st;
        DIR *d;
        struct dirent *de;
        int fd, r = 0;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return kerr_set(err, errno, KERR_IO, "remove '%s'", name);
        }
        if (!S_ISDIR(st.st_mode)) {
                if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                        return kerr_set(err, errno, KERR_IO, "remove '%s'", name);
                return 0;
        }
        /* O_NOFOLLOW: a directory swapped for a symlink meanwhile is not followed out. */
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == EACCES && fchmodat(dirfd, name, 0700, 0) == 0)
                fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "remove '%s'", name);
        /* Entries of a directory without write or search permission cannot be removed. */
        if ((st.st_mode & 0700) != 0700)
                (void)fchmod(fd, 0700);
        d = fdopendir(fd);
        if (!d) {
                r = kerr_set(err, errno, KERR_IO, "remove '%s'", name);
                kfs_close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (image_store_rmtree_at(fd, de->d_name, err) < 0) {
                        r = kerr_wrap(err, "remove '%s'", name);
                        break;
                }
        }
        if (r == 0 && errno != 0)
                r = kerr_set(err, errno, KERR_IO, "read directory '%s'", name);
        closedir(d);
        if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                r = kerr_set(err, errno, KERR_IO, "remove '%s'", name);
        return r;
}

int image_store_rmtree(const char *path, struct kerr **err)
{
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dfd = -1;
        char *slash;
        const char *base;
        size_t len = path ? strlen(path) : 0;

        while (len > 1 && path[len - 1] == '/')
                len--;
        if (len == 0 || (len == 1 && path[0] == '/'))
                return kerr_set(err, 0, KERR_INVALID, "refusing to remove '%s'", path ? path : "");
        dir = kstrndup(path, len);
        slash = strrchr(dir, '/');
        if (!slash) {
                base = dir;
                dfd = openat(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
                *slash = '\0';
                base = slash + 1;
                dfd = openat(AT_FDCWD, slash == dir ? "/" : dir,
                             O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return kerr_set(err, 0, KERR_INVALID, "refusing to remove '%s'", path);
        if (dfd < 0) {
                if (errno == ENOENT)
                        return 0;
                return kerr_set(err, errno, KERR_IO, "remove '%s'", path);
        }
        if (image_store_rmtree_at(dfd, base, err) < 0)
                return kerr_wrap(err, "remove '%s'", path);
        return 0;
}

/* The pid that starts name ("<pid>-…") when that process is gone and is not this one; 0
 * otherwise (alive, another user's, or not a pid). */
static pid_t dead_owner(const char *name)
{
        char *end = NULL;
        long pid;

        if (name[0] < '0' || name[0] > '9')
                return 0;
        errno = 0;
        pid = strtol(name, &end, 10);
        if (errno || *end != '-' || pid <= 0 || pid > 0x7fffffff || pid == getpid())
                return 0;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                return 0;
        return (pid_t)pid;
}

/* Store entries: "<prefix><pid>-…" ("<pid>-…" in tmp/, "images.json.tmp-<pid>-…" left by
 * kfs_write_atomic in the root). */
static pid_t owner_by_prefix(const char *name, const char *prefix)
{
        size_t n = strlen(prefix);

        return strncmp(name, prefix, n) == 0 ? dead_owner(name + n) : 0;
}

static bool all_hex(const char *s, size_t min, size_t max)
{
        size_t n = strspn(s, "0123456789abcdef");

        return s[n] == '\0' && n >= min && n <= max;
}

/* Temp files beside a user's files, exactly "<final>.tmp-<pid>-<hex>" (kfs_write_atomic's
 * names and image_tmp_name_for's); final NULL stands for any blob name (64 hex digits). */
static pid_t owner_of_tmp_file(const char *name, const char *final)
{
        const char *p = name, *dash;
        size_t n = final ? strlen(final) : strspn(name, "0123456789abcdef");

        if (final ? strncmp(name, final, n) != 0 : n != 64)
                return 0;
        p += n;
        if (strncmp(p, ".tmp-", 5) != 0)
                return 0;
        p += 5;
        dash = strchr(p, '-');
        if (!dash || !all_hex(dash + 1, 1, 16))
                return 0;
        return dead_owner(p);
}

/* Removes the entries of dirfd that owner() says a process now gone left behind (a kill or a
 * crash); with files_only, only regular files are. Failures are logged, never fatal. */
static void sweep(int dirfd, pid_t (*owner)(const char *name, const char *arg), const char *arg,
                  bool files_only)
{
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        DIR *d;
        struct dirent *de;

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                kfs_close(fd);
                return;
        }
        /* The dup shares its offset with dirfd. */
        rewinddir(d);
        while ((de = readdir(d))) {
                struct kerr *e = NULL;
                struct stat st;

                if (!owner(de->d_name, arg))
                        continue;
                if (files_only) {
                        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISREG(st.st_mode))
                                continue;
                        klog_debug("removing stale temp file %s", de->d_name);
                        if (unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT)
                                klog_debug("remove %s: %s", de->d_name, strerror(errno));
                        continue;
                }
                klog_debug("store: removing stale %s", de->d_name);
                if (image_store_rmtree_at(dirfd, de->d_name, &e) < 0)
                        klog_debug("store: %s", e->msg);
                kerr_free(e);
        }
        closedir(d);
}

void image_tmp_name_for(char *buf, size_t size, const char *final)
{
        char rnd[48];

        image_store_tmp_name(rnd, sizeof(rnd), "");
        snprintf(buf, size, "%s.tmp-%s", final, rnd);
}

void image_sweep_tmp_files_at(int dirfd, const char *final)
{
        sweep(dirfd, owner_of_tmp_file, final, true);
}

static int open_subdir(int root_fd, const char *path, struct kerr **err)
{
        int fd;

        if (kfs_mkdir_p(root_fd, path, 0700, err) < 0)
                return -1;
        fd = openat(root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", path);
        return fd;
}

/* flock op on fd, retrying on EINTR; without wait, EWOULDBLOCK fails at once. */
static int flock_retry(int fd, int op, bool wait)
{
        while (flock(fd, op | (wait ? 0 : LOCK_NB)) < 0)
                if (errno != EINTR)
                        return -1;
        return 0;
}

/* root/gc.lock flock'ed with op (LOCK_SH or LOCK_EX) into s->gc_fd. */
static int gc_lock(struct image_store *s, int op, bool wait, struct kerr **err)
{
        _cleanup_close_ int fd =
                openat(s->root_fd, "gc.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s/gc.lock'", s->root);
        if (flock_retry(fd, op, false) < 0) {
                if (errno != EWOULDBLOCK)
                        return kerr_set(err, errno, KERR_IO, "lock '%s/gc.lock'", s->root);
                if (!wait)
                        return kerr_set(err, EWOULDBLOCK, KERR_IO,
                                        "the store '%s' is in use by another kiln process",
                                        s->root);
                klog_debug("store: waiting for the %s lock on '%s/gc.lock'",
                           op == LOCK_EX ? "exclusive" : "shared", s->root);
                if (flock_retry(fd, op, true) < 0)
                        return kerr_set(err, errno, KERR_IO, "lock '%s/gc.lock'", s->root);
        }
        s->gc_fd = TAKE_FD(fd);
        s->gc_exclusive = op == LOCK_EX;
        return 0;
}

int image_store_lock_gc(struct image_store *s, bool wait, struct kerr **err)
{
        if (s->gc_fd >= 0 && s->gc_exclusive)
                return 0;
        /* Our own lease would block us: flock locks belong to open file descriptions. */
        if (s->gc_fd >= 0)
                return kerr_set(err, 0, KERR_INVALID,
                                "garbage collection from a process holding a lease on '%s'",
                                s->root);
        return gc_lock(s, LOCK_EX, wait, err);
}

/* Asks ext4 to treat the entries of dirfd as top-level directories: each work dir (and so
 * each new layer) goes to a block group with room rather than next to its parent. On an
 * ext4 without a journal, a group in which many inodes were freed in the last minutes is
 * slow to allocate from (ialloc.c skips each recently deleted inode, one inode table read
 * at a time): a 20 000-file COPY right after a 20 000-file tree near the store was removed
 * took 13 s instead of 1.3 s. Other file systems refuse the flag, which changes nothing. */
static void spread_subdirs(int dirfd)
{
        int attr = 0;

        if (ioctl(dirfd, FS_IOC_GETFLAGS, &attr) < 0 || (attr & FS_TOPDIR_FL))
                return;
        attr |= FS_TOPDIR_FL;
        if (ioctl(dirfd, FS_IOC_SETFLAGS, &attr) < 0)
                klog_debug("store: tmp/ keeps its inode allocation flags: %s", strerror(errno));
}

struct image_store *image_store_open(const char *root, unsigned flags, struct kerr **err)
{
        _cleanup_free_ char *def = NULL;
        struct image_store *s;

        if (!root) {
                def = image_store_default_root();
                root = def;
        }
        if (!root[0]) {
                kerr_set(err, 0, KERR_INVALID, "the store root is empty");
                return NULL;
        }
        if (kfs_mkdir_p(AT_FDCWD, root, 0700, err) < 0) {
                kerr_wrap(err, "open store '%s'", root);
                return NULL;
        }
        s = kcalloc(1, sizeof(*s));
        s->root_fd = s->blobs_fd = s->layers_fd = s->tmp_fd = s->gc_fd = -1;
        s->cache_fd = s->statcache_fd = -1;
        s->root = realpath(root, NULL);
        if (!s->root) {
                kerr_set(err, errno, KERR_IO, "open store '%s'", root);
                goto fail;
        }
        s->root_fd = openat(AT_FDCWD, s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0) {
                kerr_set(err, errno, KERR_IO, "open store '%s'", root);
                goto fail;
        }
        /* The lease comes first: whatever this process finds or writes from now on is safe
         * from a GC until image_store_free. */
        if ((flags & IMAGE_STORE_LEASE) && gc_lock(s, LOCK_SH, true, err) < 0)
                goto fail_wrap;
        s->blobs_fd = open_subdir(s->root_fd, "blobs/sha256", err);
        if (s->blobs_fd < 0)
                goto fail_wrap;
        s->layers_fd = open_subdir(s->root_fd, "layers", err);
        if (s->layers_fd < 0)
                goto fail_wrap;
        s->tmp_fd = open_subdir(s->root_fd, "tmp", err);
        if (s->tmp_fd < 0)
                goto fail_wrap;
        spread_subdirs(s->tmp_fd);
        image_store_sweep(s);
        return s;
fail_wrap:
        kerr_wrap(err, "open store '%s'", root);
fail:
        image_store_free(s);
        return NULL;
}

void image_store_sweep(struct image_store *s)
{
        sweep(s->tmp_fd, owner_by_prefix, "", false);
        sweep(s->root_fd, owner_by_prefix, "images.json.tmp-", false);
}

void image_store_free(struct image_store *s)
{
        if (!s)
                return;
        kfs_close(s->root_fd);
        kfs_close(s->blobs_fd);
        kfs_close(s->layers_fd);
        free(s->seen_layers);
        kfs_close(s->tmp_fd);
        kfs_close(s->gc_fd);
        kfs_close(s->cache_fd);
        kfs_close(s->statcache_fd);
        free(s->root);
        free(s);
}

const char *image_store_root(const struct image_store *s)
{
        return s->root;
}

int image_store_root_fd(const struct image_store *s)
{
        return s->root_fd;
}

int image_store_mkdtemp(struct image_store *s, char **ret_path, struct kerr **err)
{
        char name[64];
        char *path = NULL;

        for (int tries = 0;; tries++) {
                image_store_tmp_name(name, sizeof(name), "");
                if (mkdirat(s->tmp_fd, name, 0700) == 0)
                        break;
                if (errno != EEXIST || tries > 100)
                        return kerr_set(err, errno, KERR_IO, "create a directory in '%s/tmp'",
                                        s->root);
        }
        if (asprintf(&path, "%s/tmp/%s", s->root, name) < 0)
                abort();
        *ret_path = path;
        return 0;
}

int image_store_subdir(struct image_store *s, const char *name, int *slot, struct kerr **err)
{
        if (*slot >= 0)
                return *slot;
        *slot = open_subdir(s->root_fd, name, err);
        if (*slot < 0)
                return kerr_wrap(err, "store '%s'", s->root);
        return *slot;
}

int image_store_put_file(struct image_store *s, int dirfd, const char *dir, const char *name,
                         const void *data, size_t len, bool sync, struct kerr **err)
{
        char tmp[64];
        _cleanup_close_ int fd = -1;

        for (int tries = 0;; tries++) {
                image_store_tmp_name(tmp, sizeof(tmp), ".file");
                fd = openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            0644);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || tries > 100)
                        return kerr_set(err, errno, KERR_IO, "create a file in '%s/tmp'", s->root);
        }
        if (kfs_write_all(fd, data, len) < 0) {
                kerr_set(err, errno, KERR_IO, "write '%s/tmp/%s'", s->root, tmp);
                goto fail;
        }
        if (sync && fsync(fd) < 0) {
                kerr_set(err, errno, KERR_IO, "sync '%s/tmp/%s'", s->root, tmp);
                goto fail;
        }
        if (renameat(s->tmp_fd, tmp, dirfd, name) < 0) {
                kerr_set(err, errno, KERR_IO, "store '%s/%s/%s'", s->root, dir, name);
                goto fail;
        }
        if (sync && fsync(dirfd) < 0)
                return kerr_set(err, errno, KERR_IO, "sync '%s/%s'", s->root, dir);
        return 0;
fail:
        unlinkat(s->tmp_fd, tmp, 0);
        return -1;
}

int image_store_cache_mount(struct image_store *s, const char *id, mode_t mode, uid_t uid,
                            gid_t gid, bool lock, bool wait, char **ret_path, int *ret_lock_fd,
                            struct kerr **err)
{
        char hex[KDIGEST_STRLEN], name[128];
        _cleanup_close_ int mfd = -1, lfd = -1;
        char *path = NULL;

        if (kdigest_buf(id, strlen(id), hex, err) < 0)
                return -1;
        mfd = open_subdir(s->root_fd, "mounts", err);
        if (mfd < 0)
                return kerr_wrap(err, "cache mount '%s'", id);
        snprintf(name, sizeof(name), "%s", hex + 7);
        if (mkdirat(mfd, name, 0700) == 0) {
                /* New: owned and moded as asked (an interrupted creation leaves it 0700,
                 * owned by the store's owner, which only makes it stricter). */
                _cleanup_close_ int dfd =
                        openat(mfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0 || fchown(dfd, uid, gid) < 0 || fchmod(dfd, mode) < 0)
                        return kerr_set(err, errno, KERR_IO, "create cache mount '%s'", id);
        } else if (errno != EEXIST) {
                return kerr_set(err, errno, KERR_IO, "create cache mount '%s'", id);
        }
        if (lock) {
                char lname[160];
                snprintf(lname, sizeof(lname), "%s.lock", name);
                lfd = openat(mfd, lname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (lfd < 0)
                        return kerr_set(err, errno, KERR_IO, "lock cache mount '%s'", id);
                while (flock(lfd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return kerr_set(err, errno, KERR_IO, "lock cache mount '%s'", id);
                }
        }
        if (asprintf(&path, "%s/mounts/%s", s->root, name) < 0)
                abort();
        *ret_path = path;
        *ret_lock_fd = TAKE_FD(lfd);
        return 0;
}

int image_store_lock(struct image_store *s, struct kerr **err)
{
        int fd = openat(s->root_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s/lock'", s->root);
        while (flock(fd, LOCK_EX) < 0) {
                if (errno == EINTR)
                        continue;
                kerr_set(err, errno, KERR_IO, "lock '%s/lock'", s->root);
                kfs_close(fd);
                return -1;
        }
        return fd;
}
