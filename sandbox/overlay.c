/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* Overlay options besides the layers. In a user namespace the kernel wants userxattr (its
 * whiteouts and opaque dirs are user.overlay.*) and then forbids redirects and metacopy by
 * itself. As root they are turned off here: a layer is the upper dir walked as it is, so a
 * renamed directory must be copied (EXDEV) and a chowned file copied whole. index=off since
 * the same lower dirs are mounted under many uppers. */
static const char *const opts_userns[][2] = {{"userxattr", NULL}, {"index", "off"}};
static const char *const opts_root[][2] = {
        {"redirect_dir", "nofollow"}, {"metacopy", "off"}, {"index", "off"}};

static bool force_legacy;

void sbx_overlay_set_legacy(bool legacy)
{
        force_legacy = legacy;
}

/* Whether the running kernel is at least major.minor (uname's release, "6.8.0-..."). */
static bool kernel_at_least(unsigned major, unsigned minor)
{
        struct utsname u;
        unsigned ma = 0, mi = 0;

        if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &ma, &mi) != 2)
                return false;
        return ma > major || (ma == major && mi >= minor);
}

size_t sandbox_overlay_max_lowers(void)
{
        /* Relative to the store's root, a lower dir is "layers/<64 hex>/diff:", 77 bytes:
         * 4096 bytes of options hold 51 of them beside the upper and work dirs and the
         * flags; 40 leaves room for longer store paths. */
        _Static_assert(SANDBOX_LEGACY_MAX_LOWERS * 77 + 512 < 4096,
                       "the legacy limit must fit in one page of options");
        if (force_legacy || !kernel_at_least(6, 8))
                return SANDBOX_LEGACY_MAX_LOWERS;
        return SBX_OVERLAY_MAX_LAYERS;
}

/* How the kernel refused overlayfs: its errno, and its words. */
struct refusal {
        int errnum;
        struct kbuf why;
};

static const char *const (*options(bool userxattr, size_t *n))[2]
{
        if (userxattr) {
                *n = ARRAY_SIZE(opts_userns);
                return opts_userns;
        }
        *n = ARRAY_SIZE(opts_root);
        return opts_root;
}

/* The messages the kernel left in the fs context ("e overlay: ..."), as "; "-joined text. */
static void fs_log(int fsfd, struct kbuf *out)
{
        char line[1024];
        ssize_t n;

        while ((n = read(fsfd, line, sizeof(line) - 1)) > 0) {
                const char *p = line;

                line[n] = '\0';
                line[strcspn(line, "\n")] = '\0';
                if ((p[0] == 'e' || p[0] == 'w' || p[0] == 'i') && p[1] == ' ')
                        p += 2;
                kbuf_printf(out, "%s%s", out->len ? "; " : "", p);
        }
}

static int fs_error(struct kerr **err, int fsfd, int errnum, enum kerr_code code, const char *what)
{
        struct kbuf log = KBUF_INIT;

        fs_log(fsfd, &log);
        kerr_set(err, errnum, code, "mount the layers with overlayfs: %s%s%s%s", what,
                 log.len ? " (" : "", log.len ? log.data : "", log.len ? ")" : "");
        kbuf_release(&log);
        return -1;
}

static char *host(const char *path)
{
        struct kbuf b = KBUF_INIT;

        kbuf_printf(&b, SBX_OLDROOT "%s", path);
        return kbuf_detach(&b);
}

/* A refused mount: the kernel has no overlayfs, does not allow it here (before Linux 5.11
 * in a user namespace), or will not take these dirs (EINVAL: an upper dir on a file system
 * it cannot write whiteouts or xattrs on, such as overlayfs itself when kiln runs in a
 * container). log, the kernel's words when it said any, says which. Returns -1 with
 * nothing in *err: the caller decides whether fuse-overlayfs stands in. */
static int refused(struct refusal *r, int errnum, const char *log)
{
        r->errnum = errnum;
        kbuf_puts(&r->why, strerror(errnum));
        if (log && *log)
                kbuf_printf(&r->why, ": %s", log);
        return -1;
}

/* refused() with what the kernel left in the fs context. */
static int refused_fs(struct refusal *r, int errnum, int fsfd)
{
        struct kbuf log = KBUF_INIT;

        fs_log(fsfd, &log);
        refused(r, errnum, log.data);
        kbuf_release(&log);
        return -1;
}

/* fsopen + one "lowerdir+" per layer (Linux 6.8): no limit on the stack's total length.
 * Sets *ret_legacy when the kernel lacks that API and mount(2) must do, and rf when the
 * kernel refuses overlayfs. */
static int mount_new(const struct sbx_stack *s, bool userxattr, const char *target,
                     bool *ret_legacy, struct refusal *rf, struct kerr **err)
{
        _cleanup_close_ int fsfd = -1, mfd = -1;
        const char *const(*opts)[2];
        size_t n_opts;

        *ret_legacy = false;
        fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fsfd < 0) {
                if (errno == ENOSYS) {
                        *ret_legacy = true;
                        return -1;
                }
                if (errno == ENODEV || errno == EPERM)
                        return refused(rf, errno, NULL);
                return kerr_set(err, errno, KERR_IO, "mount the layers with overlayfs: fsopen");
        }
        /* "lowerdir+" layers go from the top down, as lowerdir= lists them. */
        for (size_t i = s->n_lowers; i-- > 0;) {
                _cleanup_free_ char *p = host(s->lowers[i]);

                if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", p, 0) == 0)
                        continue;
                if (i == s->n_lowers - 1 && errno == EINVAL) {
                        struct kbuf log = KBUF_INIT;

                        fs_log(fsfd, &log);
                        *ret_legacy = log.len == 0 || strstr(log.data, "nknown parameter");
                        if (!*ret_legacy)
                                refused(rf, EINVAL, log.data);
                        kbuf_release(&log);
                        return -1;
                }
                if (errno == EINVAL)
                        return refused_fs(rf, errno, fsfd);
                {
                        char what[64];

                        snprintf(what, sizeof(what), "layer %zu of %zu", i + 1, s->n_lowers);
                        return fs_error(err, fsfd, errno, KERR_IO, what);
                }
        }
        if (s->upper) {
                _cleanup_free_ char *up = host(s->upper), *wk = host(s->work);

                if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", up, 0) < 0)
                        return errno == EINVAL ? refused_fs(rf, errno, fsfd)
                                               : fs_error(err, fsfd, errno, KERR_IO, "upper dir");
                if (fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", wk, 0) < 0)
                        return errno == EINVAL ? refused_fs(rf, errno, fsfd)
                                               : fs_error(err, fsfd, errno, KERR_IO, "work dir");
        }
        opts = options(userxattr, &n_opts);
        for (size_t i = 0; i < n_opts; i++) {
                int r = opts[i][1] ? fsconfig(fsfd, FSCONFIG_SET_STRING, opts[i][0], opts[i][1], 0)
                                   : fsconfig(fsfd, FSCONFIG_SET_FLAG, opts[i][0], NULL, 0);

                /* A kernel without userxattr (before 5.11) has no overlayfs for a user
                 * namespace. */
                if (r < 0 && userxattr && errno == EINVAL && strcmp(opts[i][0], "userxattr") == 0)
                        return refused_fs(rf, errno, fsfd);
                if (r < 0)
                        return fs_error(err, fsfd, errno, KERR_UNSUPPORTED, opts[i][0]);
        }
        if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                if (errno == EPERM || errno == EINVAL)
                        return refused_fs(rf, errno, fsfd);
                return fs_error(err, fsfd, errno, KERR_IO, "create");
        }
        /* Without an upper dir overlayfs is read-only anyway; the mount says so too. */
        mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, s->upper ? 0 : MOUNT_ATTR_RDONLY);
        if (mfd < 0)
                return fs_error(err, fsfd, errno, KERR_IO, "fsmount");
        if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return kerr_set(err, errno, KERR_IO, "mount the layers with overlayfs: attach");
        return 0;
}

/* Appends path to b with overlay's separators (':' between layers, ',' between options)
 * and the backslash escaped. */
static void put_escaped(struct kbuf *b, const char *path)
{
        for (const char *p = path; *p; p++) {
                if (*p == ':' || *p == ',' || *p == '\\')
                        kbuf_putc(b, '\\');
                kbuf_putc(b, *p);
        }
}

/* Whether p is strictly below the directory dir[0..len) ("" is the root). */
static bool below(const char *p, const char *dir, size_t len)
{
        return strncmp(p, dir, len) == 0 && p[len] == '/';
}

/* Cuts the last component of dir[0..*len) off. */
static void cut(char *dir, size_t *len)
{
        while (*len > 0 && dir[*len - 1] != '/')
                (*len)--;
        if (*len > 0)
                (*len)--;
}

/* The longest directory that holds every path of the stack, on component boundaries
 * (paths are absolute and normalised). */
static char *common_parent(const struct sbx_stack *s)
{
        char *dir = kstrdup(s->upper ? s->upper : s->lowers[0]);
        size_t len = strlen(dir);

        cut(dir, &len);
        for (size_t i = 0; i <= s->n_lowers; i++) {
                const char *p = i < s->n_lowers ? s->lowers[i] : s->work;

                if (!p)
                        continue;
                while (len > 0 && !below(p, dir, len))
                        cut(dir, &len);
        }
        if (len == 0) {
                free(dir);
                return kstrdup("/");
        }
        dir[len] = '\0';
        return dir;
}

static const char *relative(const char *path, const char *parent)
{
        size_t n = strlen(parent);

        if (strcmp(parent, "/") == 0)
                return path + 1;
        return path + n + 1;
}

/* mount(2) takes one page of options: relative paths from a common parent (the cwd while
 * mounting) keep deep stacks short. */
static int mount_legacy(const struct sbx_stack *s, bool userxattr, const char *target,
                        struct refusal *rf, struct kerr **err)
{
        _cleanup_free_ char *parent = common_parent(s);
        _cleanup_free_ char *hparent = host(parent);
        const char *const(*opts)[2];
        struct kbuf o = KBUF_INIT;
        long page = sysconf(_SC_PAGESIZE);
        size_t n_opts;
        int r;

        kbuf_puts(&o, "lowerdir=");
        for (size_t i = s->n_lowers; i-- > 0;) {
                put_escaped(&o, relative(s->lowers[i], parent));
                if (i)
                        kbuf_putc(&o, ':');
        }
        if (s->upper) {
                kbuf_puts(&o, ",upperdir=");
                put_escaped(&o, relative(s->upper, parent));
                kbuf_puts(&o, ",workdir=");
                put_escaped(&o, relative(s->work, parent));
        }
        opts = options(userxattr, &n_opts);
        for (size_t i = 0; i < n_opts; i++)
                kbuf_printf(&o, ",%s%s%s", opts[i][0], opts[i][1] ? "=" : "",
                            opts[i][1] ? opts[i][1] : "");
        if (page <= 0)
                page = 4096;
        if (o.len > (size_t)page - 1) {
                kerr_set(err, 0, KERR_UNSUPPORTED,
                         "mount the layers with overlayfs: the %zu layers need %zu bytes of mount "
                         "options and this kernel takes %ld (it lacks lowerdir+, Linux 6.8): the "
                         "layer stack must be flattened",
                         s->n_lowers, o.len, page - 1);
                kbuf_release(&o);
                return -1;
        }
        if (chdir(hparent) < 0) {
                kerr_set(err, errno, KERR_IO, "mount the layers with overlayfs: enter '%s'",
                         parent);
                kbuf_release(&o);
                return -1;
        }
        r = mount("overlay", target, "overlay", s->upper ? 0 : MS_RDONLY, o.data);
        if (r < 0) {
                int en = errno;

                if (en == EPERM || en == ENODEV || en == EINVAL)
                        refused(rf, en, NULL);
                else
                        kerr_set(err, en, KERR_IO, "mount the layers with overlayfs");
        }
        kbuf_release(&o);
        if (chdir("/") < 0 && r == 0)
                return kerr_set(err, errno, KERR_IO, "leave '%s'", parent);
        return r;
}

/* Mounts "fuse" on target over the run's /dev/fuse fd for stack idx, tells the parent to
 * start fuse-overlayfs on it, and waits for the first answer. The kernel options are those
 * fuse-overlayfs asks libfuse for as root: the kernel checks permissions (the daemon runs
 * with all of kiln's), and every user of the container may use the tree. */
static int mount_fuse(const struct sbx_child *c, size_t idx, const struct sbx_stack *s,
                      const char *target, int refused, const char *why, struct kerr **err)
{
        int fd = c->fuse->m[idx].fd;
        char opts[160];
        struct stat st;

        if (fd < 0)
                return kerr_set(err, 0, KERR_INTERNAL,
                                "mount the layers with fuse-overlayfs: no /dev/fuse for stack %zu",
                                idx);
        snprintf(opts, sizeof(opts),
                 "fd=%d,rootmode=%o,user_id=0,group_id=0,default_permissions,allow_other", fd,
                 (unsigned)S_IFDIR);
        if (mount("fuse-overlayfs", target, "fuse.fuse-overlayfs", s->upper ? 0 : MS_RDONLY, opts) <
            0)
                return kerr_set(err, errno, KERR_UNSUPPORTED,
                                "mount the layers with fuse-overlayfs: mount a FUSE file system");
        /* The daemon's copy is the only one left: if it goes, requests fail (ENOTCONN). */
        kfs_close(fd);
        if (sbx_chan_send_fuse(c->chan, idx, refused, why) < 0)
                return kerr_set(err, errno, KERR_IO,
                                "mount the layers with fuse-overlayfs: tell kiln");
        if (stat(target, &st) < 0)
                return kerr_set(err, errno, KERR_IO,
                                "mount the layers with fuse-overlayfs: it does not answer");
        return 0;
}

int sbx_overlay_mount(const struct sbx_child *c, size_t idx, const struct sbx_stack *s,
                      const char *target, struct kerr **err)
{
        const struct sbx_fuse *f = c->fuse;
        struct refusal rf = {.why = KBUF_INIT};
        bool legacy = force_legacy;
        int r = -1;

        if (f->mode == SBX_OVERLAY_FUSE || f->first)
                return mount_fuse(c, idx, s, target, 0, NULL, err);
        if (f->pretend_refused) {
                refused(&rf, EPERM, "pretended for a test");
        } else {
                if (!legacy && mount_new(s, c->userns, target, &legacy, &rf, err) == 0)
                        return 0;
                if (legacy && !rf.errnum) {
                        klog_debug(
                                "sandbox: overlay through mount(2): no lowerdir+ in this kernel");
                        if (mount_legacy(s, c->userns, target, &rf, err) == 0)
                                return 0;
                }
                if (!rf.errnum)
                        return -1;
        }
        if (c->userns && rf.errnum == EPERM)
                kbuf_puts(&rf.why, "; in a user namespace overlayfs needs Linux 5.11 or newer");
        /* The errno is in the words already, before what follows them. */
        if (f->mode == SBX_OVERLAY_NATIVE)
                kerr_set(err, 0, KERR_UNSUPPORTED,
                         "mount the layers with overlayfs: the kernel refuses it here (%s), and "
                         "KILN_OVERLAY=native rules out fuse-overlayfs",
                         rf.why.data);
        else if (f->unusable || f->m[idx].fd < 0)
                kerr_set(err, 0, KERR_UNSUPPORTED,
                         "mount the layers with overlayfs: the kernel refuses it here (%s), and "
                         "fuse-overlayfs cannot stand in: %s",
                         rf.why.data, f->unusable ? f->unusable : "no /dev/fuse");
        else
                r = mount_fuse(c, idx, s, target, rf.errnum, rf.why.data, err);
        kbuf_release(&rf.why);
        return r;
}
