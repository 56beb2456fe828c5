/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* How the root is assembled, in the child's own mount namespace (after bubblewrap):
 *
 *   make every mount private, so nothing propagates back to the host
 *   mount a tmpfs on /tmp and pivot into it: the host's tree is now at /oldroot, whole
 *   (its /tmp included), and /newroot is an empty directory of the tmpfs
 *   mount the layers (overlay, or the upper dir bound) on /newroot; /proc, /dev, /sys,
 *   the /etc files and the extra mounts inside it, sources taken from /oldroot
 *   pivot_root(/newroot, /newroot) and detach the old root (the tmpfs with the host's
 *   tree below it) from on top of it
 *
 * Targets in the container are resolved by sbx_target_open(), which follows the image's
 * symlinks inside the image and records what it creates, so the upper dir can be cleaned. */

/* docker's defaults (moby oci/defaults.go): hidden, and read-only. */
static const char *const masked_paths[] = {
        "/proc/acpi",
        "/proc/asound",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/sys/devices/virtual/powercap",
        "/sys/firmware",
};
static const char *const readonly_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
static const char *const dev_links[][2] = {
        {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
};

static int do_mount(const char *src, const char *target, const char *type, unsigned long flags,
                    const char *data, const char *what, struct kerr **err)
{
        if (mount(src, target, type, flags, data) < 0)
                return kerr_set(err, errno, KERR_IO, "mount %s", what);
        return 0;
}

int sbx_remount_ro(const char *path, bool recursive, struct kerr **err)
{
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
        struct statvfs sv;

        if (mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof(attr)) == 0)
                return 0;
        if (errno != ENOSYS)
                return kerr_set(err, errno, KERR_IO, "make '%s' read-only", path);
        /* Before Linux 5.12: a remount, which must repeat the flags a user namespace
         * locked on the mount; submounts stay as they are. */
        if (statvfs(path, &sv) < 0)
                return kerr_set(err, errno, KERR_IO, "statvfs '%s'", path);
        if (sv.f_flag & ST_NOSUID)
                flags |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
                flags |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                flags |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
                flags |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
                flags |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
                flags |= MS_RELATIME;
        if (mount(NULL, path, NULL, flags, NULL) < 0)
                return kerr_set(err, errno, KERR_IO, "make '%s' read-only", path);
        return 0;
}

/* Mounts onto the target fd from sbx_target_open(). */
static int mount_on(int fd, const char *src, const char *type, unsigned long flags,
                    const char *data, const char *what, struct kerr **err)
{
        char path[64];

        sbx_fd_path(path, sizeof(path), fd);
        return do_mount(src, path, type, flags, data, what, err);
}

/* A file masked by /dev/null, a directory by an empty read-only tmpfs. */
static int mask(const char *path, struct kerr **err)
{
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : kerr_set(err, errno, KERR_IO, "stat '%s'", path);
        if (S_ISDIR(st.st_mode))
                return do_mount("tmpfs", path, "tmpfs",
                                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0", path, err);
        return do_mount(SBX_OLDROOT "/dev/null", path, NULL, MS_BIND, NULL, path, err);
}

static int make_readonly(const char *path, struct kerr **err)
{
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : kerr_set(err, errno, KERR_IO, "stat '%s'", path);
        if (do_mount(path, path, NULL, MS_BIND | MS_REC, NULL, path, err) < 0)
                return -1;
        return sbx_remount_ro(path, true, err);
}

/* Applies the masks and read-only paths under prefix ("/proc" or "/sys") found at dir. */
static int protect(const char *prefix, const char *dir, struct kerr **err)
{
        size_t n = strlen(prefix);

        for (size_t i = 0; i < ARRAY_SIZE(masked_paths); i++) {
                _cleanup_free_ char *p = NULL;

                if (strncmp(masked_paths[i], prefix, n) != 0 || masked_paths[i][n] != '/')
                        continue;
                p = kstrfmt("%s%s", dir, masked_paths[i] + n);
                if (mask(p, err) < 0)
                        return -1;
        }
        for (size_t i = 0; i < ARRAY_SIZE(readonly_paths); i++) {
                _cleanup_free_ char *p = NULL;

                if (strncmp(readonly_paths[i], prefix, n) != 0 || readonly_paths[i][n] != '/')
                        continue;
                p = kstrfmt("%s%s", dir, readonly_paths[i] + n);
                if (make_readonly(p, err) < 0)
                        return -1;
        }
        return 0;
}

static int setup_proc(struct sbx_root *r, struct kerr **err)
{
        _cleanup_free_ char *rel = NULL, *dir = NULL;
        _cleanup_close_ int fd = sbx_target_open(r, "/proc", true, 0, &rel, err);

        if (fd < 0)
                return -1;
        /* A procfs of its own: it shows the new PID namespace only. */
        if (mount_on(fd, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/proc", err) < 0)
                return -1;
        dir = kstrfmt(SBX_NEWROOT "/%s", rel);
        return protect("/proc", dir, err);
}

static int setup_dev(struct sbx_root *r, struct kerr **err)
{
        _cleanup_free_ char *rel = NULL, *dir = NULL;
        _cleanup_close_ int fd = sbx_target_open(r, "/dev", true, 0, &rel, err);
        int dirfd;

        if (fd < 0)
                return -1;
        if (mount_on(fd, "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
                     "/dev", err) < 0)
                return -1;
        dir = kstrfmt(SBX_NEWROOT "/%s", rel);
        dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", dir);
        /* mknod is not allowed in a user namespace: the host's nodes are bound instead. */
        for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
                _cleanup_free_ char *src = kstrfmt(SBX_OLDROOT "/dev/%s", dev_nodes[i]);
                _cleanup_free_ char *dst = kstrfmt("%s/%s", dir, dev_nodes[i]);
                int nfd;

                if (access(src, F_OK) < 0) {
                        klog_debug("sandbox: the host has no /dev/%s", dev_nodes[i]);
                        continue;
                }
                nfd = openat(dirfd, dev_nodes[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
                if (nfd < 0) {
                        kerr_set(err, errno, KERR_IO, "create /dev/%s", dev_nodes[i]);
                        goto fail;
                }
                kfs_close(nfd);
                if (do_mount(src, dst, NULL, MS_BIND, NULL, dst, err) < 0)
                        goto fail;
        }
        for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++) {
                if (symlinkat(dev_links[i][1], dirfd, dev_links[i][0]) < 0) {
                        kerr_set(err, errno, KERR_IO, "create /dev/%s", dev_links[i][0]);
                        goto fail;
                }
        }
        if (mkdirat(dirfd, "pts", 0755) < 0 || mkdirat(dirfd, "shm", 01777) < 0 ||
            mkdirat(dirfd, "mqueue", 0755) < 0) {
                kerr_set(err, errno, KERR_IO, "create the directories of /dev");
                goto fail;
        }
        {
                _cleanup_free_ char *pts = kstrfmt("%s/pts", dir), *shm = kstrfmt("%s/shm", dir);
                _cleanup_free_ char *mq = kstrfmt("%s/mqueue", dir);

                /* gid 5 (tty) may not be mapped in a user namespace. */
                if (mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
                          "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 &&
                    do_mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
                             "newinstance,ptmxmode=0666,mode=0620", "/dev/pts", err) < 0)
                        goto fail;
                if (do_mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                             "mode=1777,size=65536k", "/dev/shm", err) < 0)
                        goto fail;
                if (mount("mqueue", mq, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
                        klog_debug("sandbox: no /dev/mqueue: %s", strerror(errno));
                        (void)unlinkat(dirfd, "mqueue", AT_REMOVEDIR);
                }
        }
        kfs_close(dirfd);
        return 0;
fail:
        kfs_close(dirfd);
        return -1;
}

static int setup_sys(struct sbx_root *r, const struct sbx_child *c, struct kerr **err)
{
        _cleanup_free_ char *rel = NULL, *dir = NULL;
        _cleanup_close_ int fd = sbx_target_open(r, "/sys", true, 0, &rel, err);
        unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
        char path[64];

        if (fd < 0)
                return -1;
        dir = kstrfmt(SBX_NEWROOT "/%s", rel);
        sbx_fd_path(path, sizeof(path), fd);
        /* A sysfs of its own shows the network namespace it was mounted in. In a user
         * namespace that needs a network namespace of ours; with the host's, the host's
         * /sys is bound instead, read-only. */
        if (mount("sysfs", path, "sysfs", flags, NULL) < 0) {
                if (errno != EPERM || c->spec->net == SANDBOX_NET_NONE)
                        return kerr_set(err, errno, KERR_IO, "mount /sys");
                if (do_mount(SBX_OLDROOT "/sys", path, NULL, MS_BIND | MS_REC, NULL, "/sys", err) <
                            0 ||
                    sbx_remount_ro(dir, true, err) < 0)
                        return -1;
        }
        return protect("/sys", dir, err);
}

static int setup_etc(struct sbx_root *r, const struct sandbox_spec *s, struct kerr **err)
{
        static const char *const files[] = {"hosts", "resolv.conf", "hostname"};

        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                _cleanup_free_ char *target = kstrfmt("/etc/%s", files[i]);
                _cleanup_free_ char *src = kstrfmt(SBX_OLDROOT "%s/%s", s->etc_dir, files[i]);
                _cleanup_close_ int fd = sbx_target_open(r, target, false, 0644, NULL, err);

                if (fd < 0 || mount_on(fd, src, NULL, MS_BIND, NULL, target, err) < 0)
                        return -1;
        }
        return 0;
}

static size_t depth(const char *path)
{
        size_t n = 0;

        for (const char *p = path; *p; p++)
                if (*p == '/' && p[1] && p[1] != '/')
                        n++;
        return n;
}

/* An overlay mount: the stack is merged at /stage-N, a directory of the tmpfs the root is
 * assembled in (outside the container's root, so never in its upper dir), subdir is opened
 * inside the merged tree with RESOLVE_IN_ROOT and bound at the target, and the staging
 * mount is detached again: the bind keeps the tree alive. */
static int setup_overlay_mount(struct sbx_root *r, const struct sbx_child *c, size_t i,
                               struct kerr **err)
{
        const struct sandbox_mount *m = &c->spec->mounts[i];
        _cleanup_free_ char *stage = kstrfmt("/stage-%u", r->n_staged++);
        _cleanup_free_ char *rel = NULL, *dir = NULL;
        _cleanup_close_ int stagefd = -1, subfd = -1, fd = -1;
        const char *sub = m->subdir && *m->subdir ? m->subdir : "/";
        char src[64], dst[64];
        struct stat st;
        int ret = -1;

        if (mkdir(stage, 0700) < 0)
                return kerr_set(err, errno, KERR_IO, "create the staging point '%s'", stage);
        if (m->n_lowers == 1 && !m->upper) {
                _cleanup_free_ char *lower = kstrfmt(SBX_OLDROOT "%s", m->lowers[0]);

                if (do_mount(lower, stage, NULL, MS_BIND | MS_REC, NULL, m->lowers[0], err) < 0)
                        goto out_dir;
        } else {
                struct sbx_stack stack = {
                        .lowers = m->lowers,
                        .n_lowers = m->n_lowers,
                        .upper = m->upper,
                        .work = m->work,
                };

                if (sbx_overlay_mount(c, 1 + i, &stack, stage, err) < 0)
                        goto out_dir;
        }
        stagefd = open(stage, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (stagefd < 0) {
                kerr_set(err, errno, KERR_IO, "open '%s'", stage);
                goto out;
        }
        subfd = kfs_open_in_root(stagefd, sub, O_PATH, 0, 0, err);
        if (subfd < 0) {
                kerr_wrap(err, "open '%s' in the merged tree", sub);
                goto out;
        }
        if (fstat(subfd, &st) < 0) {
                kerr_set(err, errno, KERR_IO, "stat '%s' in the merged tree", sub);
                goto out;
        }
        fd = sbx_target_open(r, m->target, S_ISDIR(st.st_mode), m->mode ? m->mode : 0644, &rel,
                             err);
        if (fd < 0)
                goto out;
        sbx_fd_path(src, sizeof(src), subfd);
        sbx_fd_path(dst, sizeof(dst), fd);
        if (do_mount(src, dst, NULL, MS_BIND | MS_REC, NULL, m->target, err) < 0)
                goto out;
        dir = kstrfmt(SBX_NEWROOT "/%s", rel);
        if (m->readonly && sbx_remount_ro(dir, true, err) < 0)
                goto out;
        ret = 0;
out:
        if (umount2(stage, MNT_DETACH) < 0 && ret == 0)
                ret = kerr_set(err, errno, KERR_IO, "detach the staging point '%s'", stage);
out_dir:
        (void)rmdir(stage);
        return ret;
}

static int setup_one_mount(struct sbx_root *r, const struct sandbox_mount *m, struct kerr **err)
{
        _cleanup_free_ char *rel = NULL, *dir = NULL, *src = NULL, *data = NULL;
        _cleanup_close_ int fd = -1;
        bool is_dir = true;

        if (m->type == SANDBOX_MOUNT_BIND) {
                struct stat st;

                src = kstrfmt(SBX_OLDROOT "%s", m->source);
                if (stat(src, &st) < 0)
                        return kerr_set(err, errno, KERR_NOTFOUND, "bind mount source '%s'",
                                        m->source);
                is_dir = S_ISDIR(st.st_mode);
        }
        fd = sbx_target_open(r, m->target, is_dir, m->mode ? m->mode : 0644, &rel, err);
        if (fd < 0)
                return -1;
        dir = kstrfmt(SBX_NEWROOT "/%s", rel);
        if (m->type == SANDBOX_MOUNT_BIND) {
                if (mount_on(fd, src, NULL, MS_BIND | MS_REC, NULL, m->target, err) < 0)
                        return -1;
                return m->readonly ? sbx_remount_ro(dir, true, err) : 0;
        }
        data = m->size ? kstrfmt("mode=%o,uid=%lu,gid=%lu,size=%zu", m->mode ? m->mode : 01777,
                                 (unsigned long)m->uid, (unsigned long)m->gid, m->size)
                       : kstrfmt("mode=%o,uid=%lu,gid=%lu", m->mode ? m->mode : 01777,
                                 (unsigned long)m->uid, (unsigned long)m->gid);
        return mount_on(fd, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0),
                        data, m->target, err);
}

/* Parents before children: mounts sorted by the depth of their targets. */
static int setup_mounts(struct sbx_root *r, const struct sbx_child *c, struct kerr **err)
{
        const struct sandbox_spec *s = c->spec;
        size_t max = 0;

        for (size_t i = 0; i < s->n_mounts; i++)
                if (depth(s->mounts[i].target) > max)
                        max = depth(s->mounts[i].target);
        for (size_t d = 0; d <= max; d++)
                for (size_t i = 0; i < s->n_mounts; i++)
                        if (depth(s->mounts[i].target) == d &&
                            (s->mounts[i].type == SANDBOX_MOUNT_OVERLAY
                                     ? setup_overlay_mount(r, c, i, err)
                                     : setup_one_mount(r, &s->mounts[i], err)) < 0)
                                return kerr_wrap(err, "mount '%s'", s->mounts[i].target);
        return 0;
}

/* A directory that exists on every host, for the tmpfs the root is assembled in. */
static const char *scratch_dir(void)
{
        static const char *const dirs[] = {"/tmp", "/mnt", "/run", "/var/tmp"};
        struct stat st;

        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
                        return dirs[i];
        return NULL;
}

static int enter_scratch(struct kerr **err)
{
        const char *base = scratch_dir();
        struct statfs sf;

        if (!base)
                return kerr_set(err, 0, KERR_UNSUPPORTED,
                                "the host has none of /tmp, /mnt, /run, /var/tmp to build the "
                                "container's root in");
        if (do_mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k",
                     "a tmpfs to assemble the root in", err) < 0)
                return -1;
        if (chdir(base) < 0 || mkdir("newroot", 0755) < 0 || mkdir("oldroot", 0755) < 0)
                return kerr_set(err, errno, KERR_IO, "prepare the tmpfs on '%s'", base);
        if (syscall(SYS_pivot_root, ".", "oldroot") < 0)
                return kerr_set(err, errno, KERR_IO, "pivot_root into the tmpfs on '%s'", base);
        if (chdir("/") < 0)
                return kerr_set(err, errno, KERR_IO, "chdir /");
        /* Mount targets are reached through /proc/self/fd of the host's procfs. */
        if (statfs(SBX_OLDROOT "/proc", &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
                return kerr_set(err, 0, KERR_UNSUPPORTED, "the sandbox needs /proc mounted");
        return 0;
}

static int mount_root(const struct sbx_child *c, struct kerr **err)
{
        const struct sandbox_spec *s = c->spec;
        _cleanup_free_ char *upper = kstrfmt(SBX_OLDROOT "%s", s->upper);

        if (s->n_lowers) {
                struct sbx_stack stack = {
                        .lowers = s->lowers,
                        .n_lowers = s->n_lowers,
                        .upper = s->upper,
                        .work = s->work,
                };

                return sbx_overlay_mount(c, 0, &stack, SBX_NEWROOT, err);
        }
        return do_mount(upper, SBX_NEWROOT, NULL, MS_BIND, NULL, "the upper dir as the root", err);
}

static int pivot(struct kerr **err)
{
        if (chdir(SBX_NEWROOT) < 0)
                return kerr_set(err, errno, KERR_IO, "chdir " SBX_NEWROOT);
        /* The old root ends up stacked on the new one, and is detached from there. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return kerr_set(err, errno, KERR_IO, "pivot_root into the container");
        if (umount2(".", MNT_DETACH) < 0)
                return kerr_set(err, errno, KERR_IO, "detach the host's root");
        if (chdir("/") < 0)
                return kerr_set(err, errno, KERR_IO, "chdir /");
        return 0;
}

int sbx_rootfs_setup(const struct sbx_child *c, struct kerr **err)
{
        const struct sandbox_spec *s = c->spec;
        struct sbx_root r = {.rootfd = -1, .upperfd = -1, .chan = c->chan};
        int ret = -1;

        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return kerr_set(err, errno, KERR_IO, "make the mounts private");
        if (enter_scratch(err) < 0 || mount_root(c, err) < 0)
                return -1;
        r.rootfd = open(SBX_NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (r.rootfd < 0)
                return kerr_set(err, errno, KERR_IO, "open the container's root");
        if (sbx_mount_id(r.rootfd, &r.mnt_id) < 0) {
                kerr_set(err, errno, KERR_UNSUPPORTED, "read the mount id of the container's root");
                goto out;
        }
        if (s->n_lowers) {
                _cleanup_free_ char *upper = kstrfmt(SBX_OLDROOT "%s", s->upper);

                r.upperfd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (r.upperfd < 0) {
                        kerr_set(err, errno, KERR_IO, "open the upper dir");
                        goto out;
                }
        }
        if (setup_proc(&r, err) < 0 || setup_dev(&r, err) < 0 || setup_sys(&r, c, err) < 0 ||
            setup_etc(&r, s, err) < 0 || setup_mounts(&r, c, err) < 0)
                goto out;
        kfs_close(TAKE_FD(r.rootfd));
        if (r.upperfd >= 0)
                kfs_close(TAKE_FD(r.upperfd));
        ret = pivot(err);
out:
        if (r.rootfd >= 0)
                kfs_close(r.rootfd);
        if (r.upperfd >= 0)
                kfs_close(r.upperfd);
        sbx_created_list_release(&r.seen);
        return ret;
}

int sbx_rootfs_make_readonly(struct kerr **err)
{
        return sbx_remount_ro("/", false, err);
}
