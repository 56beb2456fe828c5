/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

#define FUSE_DEVICE "/dev/fuse"
#define FUSE_PACKAGE "install the Debian package fuse-overlayfs"

/* What this process found out: the kernel refused overlayfs (later runs go straight to
 * fuse-overlayfs), and whether a notice said that fuse-overlayfs is used. Worker processes
 * inherit both. */
static bool kernel_refused, noticed, pretend;

void sbx_fuse_pretend_refused(bool refused)
{
        pretend = refused;
        kernel_refused = noticed = false;
}

static int parse_mode(enum sbx_overlay_mode *ret, struct kerr **err)
{
        const char *v = getenv("KILN_OVERLAY");

        if (!v || !*v || strcmp(v, "auto") == 0)
                *ret = SBX_OVERLAY_AUTO;
        else if (strcmp(v, "native") == 0)
                *ret = SBX_OVERLAY_NATIVE;
        else if (strcmp(v, "fuse") == 0)
                *ret = SBX_OVERLAY_FUSE;
        else
                return kerr_set(err, 0, KERR_INVALID,
                                "KILN_OVERLAY='%s': expected native, fuse or auto", v);
        return 0;
}

/* Stack idx of s (see struct sbx_fuse), when it is one that overlayfs merges. */
static bool stack_of(const struct sandbox_spec *s, size_t idx, struct sbx_stack *ret)
{
        const struct sandbox_mount *m;

        if (idx == 0) {
                *ret = (struct sbx_stack){s->lowers, s->n_lowers, s->upper, s->work};
                return s->n_lowers > 0;
        }
        if (idx > s->n_mounts)
                return false;
        m = &s->mounts[idx - 1];
        *ret = (struct sbx_stack){m->lowers, m->n_lowers, m->upper, m->work};
        return m->type == SANDBOX_MOUNT_OVERLAY && (m->n_lowers > 1 || m->upper);
}

/* fd moved above 2 (when kiln runs with a standard stream closed), so that it keeps its
 * number while the daemon's 0-2 are set up. */
static int above_stdio(int fd)
{
        int nfd;

        if (fd < 0 || fd > 2)
                return fd;
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        kfs_close(fd);
        return nfd;
}

static void fuse_mount_init(struct sbx_fuse_mount *m)
{
        *m = (struct sbx_fuse_mount){.fd = -1, .errfd = -1};
}

int sbx_fuse_prepare(struct sbx_fuse *f, const struct sandbox_spec *s, struct kerr **err)
{
        struct kbuf why = KBUF_INIT;
        struct sbx_stack st;
        size_t n_stacks = 0;

        if (parse_mode(&f->mode, err) < 0)
                return -1;
        f->pretend_refused = pretend;
        f->n = 1 + s->n_mounts;
        f->m = kcalloc(f->n, sizeof(*f->m));
        for (size_t i = 0; i < f->n; i++)
                fuse_mount_init(&f->m[i]);
        for (size_t i = 0; i < f->n; i++)
                if (stack_of(s, i, &st))
                        n_stacks++;
        /* Nothing to merge (the upper dir alone is the root): nothing to look for. */
        if (f->mode == SBX_OVERLAY_NATIVE || n_stacks == 0)
                return 0;
        f->first = f->mode == SBX_OVERLAY_FUSE || kernel_refused;
        f->program = sbx_find_program("fuse-overlayfs");
        if (!f->program) {
                kbuf_puts(&why, "fuse-overlayfs is not in PATH (" FUSE_PACKAGE ")");
                goto unusable;
        }
        for (size_t i = 0; i < f->n; i++) {
                int fd;

                if (!stack_of(s, i, &st))
                        continue;
                fd = above_stdio(open(FUSE_DEVICE, O_RDWR | O_CLOEXEC));
                if (fd < 0) {
                        kbuf_printf(&why, "%s cannot be opened: %s (fuse-overlayfs needs it)",
                                    FUSE_DEVICE, strerror(errno));
                        goto unusable;
                }
                f->m[i].fd = fd;
        }
        return 0;
unusable:
        for (size_t i = 0; i < f->n; i++)
                if (f->m[i].fd >= 0)
                        kfs_close(TAKE_FD(f->m[i].fd));
        f->unusable = kbuf_detach(&why);
        f->first = false;
        if (f->mode == SBX_OVERLAY_FUSE)
                return kerr_set(err, 0, KERR_UNSUPPORTED,
                                "mount the layers with fuse-overlayfs (KILN_OVERLAY=fuse): %s",
                                f->unusable);
        return 0;
}

/* Once per process: the layers are not mounted the way one would expect. */
static void notice(const struct sbx_fuse *f, int refused, const char *why)
{
        if (refused)
                kernel_refused = true;
        if (noticed)
                return;
        noticed = true;
        if (refused)
                klog_warn("the kernel refuses overlayfs here (%s): the layers are mounted with "
                          "fuse-overlayfs",
                          why && *why ? why : strerror(refused));
        else if (f->mode == SBX_OVERLAY_FUSE)
                klog_warn("KILN_OVERLAY=fuse: the layers are mounted with fuse-overlayfs");
}

static void put_fd(int from, int to)
{
        if (from == to)
                (void)fcntl(to, F_SETFD, 0);
        else if (dup3(from, to, 0) < 0)
                _exit(127);
}

/* The daemon, between fork and exec: only async-signal-safe calls (kiln may have threads).
 * fusefd and fds are the numbers that its arguments name; they lose close-on-exec, and
 * the exec closes everything else. */
__attribute__((noreturn)) static void daemon_exec(const char *program, char *const argv[],
                                                  pid_t parent, int devnull, int errfd, int fusefd,
                                                  const int *fds, size_t n_fds)
{
        struct sigaction sa;
        sigset_t none;

        /* Gone with kiln, whatever kills it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
                _exit(127);
        /* Not in kiln's process group: ^C reaches kiln, which ends the run in order. */
        (void)setsid();
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        put_fd(devnull, STDIN_FILENO);
        put_fd(devnull, STDOUT_FILENO);
        put_fd(errfd, STDERR_FILENO);
        (void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        if (fcntl(fusefd, F_SETFD, 0) < 0)
                _exit(127);
        for (size_t i = 0; i < n_fds; i++)
                if (fcntl(fds[i], F_SETFD, 0) < 0)
                        _exit(127);
        execv(program, argv);
        dprintf(STDERR_FILENO, "run '%s': %s\n", program, strerror(errno));
        _exit(127);
}

static int open_dir(const char *path, int *ret, struct kerr **err)
{
        int fd = above_stdio(open(path, O_PATH | O_DIRECTORY | O_CLOEXEC));

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "fuse-overlayfs: open '%s'", path);
        *ret = fd;
        return 0;
}

int sbx_fuse_start(struct sbx_fuse *f, const struct sandbox_spec *s, size_t idx, int refused,
                   const char *why, struct kerr **err)
{
        struct sbx_fuse_mount *m = idx < f->n ? &f->m[idx] : NULL;
        _cleanup_close_ int devnull = -1, err_r = -1, err_w = -1;
        struct kbuf opts = KBUF_INIT;
        struct sbx_stack st;
        int *fds = NULL, pipefd[2];
        size_t n_fds = 0;
        char dev[32];
        pid_t parent = getpid(), pid;
        int ret = -1;

        if (!m || !stack_of(s, idx, &st) || m->fd < 0 || m->pid)
                return kerr_set(err, 0, KERR_INTERNAL, "fuse-overlayfs: no stack %zu to serve",
                                idx);
        m->used = true;
        notice(f, refused, why);
        /* Each dir as an fd of its own: fuse-overlayfs splits lowerdir on ':' with no way
         * to escape one, and resolves /proc/self/fd/N to the dir's real path. The top
         * layer comes first, as for overlayfs. */
        fds = kcalloc(st.n_lowers + 2, sizeof(*fds));
        kbuf_puts(&opts, "lowerdir=");
        for (size_t i = st.n_lowers; i-- > 0;) {
                if (open_dir(st.lowers[i], &fds[n_fds], err) < 0)
                        goto out;
                kbuf_printf(&opts, "%s/proc/self/fd/%d", i + 1 < st.n_lowers ? ":" : "",
                            fds[n_fds]);
                n_fds++;
        }
        if (st.upper) {
                if (open_dir(st.upper, &fds[n_fds], err) < 0)
                        goto out;
                kbuf_printf(&opts, ",upperdir=/proc/self/fd/%d", fds[n_fds++]);
                if (open_dir(st.work, &fds[n_fds], err) < 0)
                        goto out;
                kbuf_printf(&opts, ",workdir=/proc/self/fd/%d", fds[n_fds++]);
        }
        /* No writeback cache: a write is in the upper dir when the container's write
         * returns, not when the kernel gets round to flushing it. */
        kbuf_puts(&opts, ",writeback=0");
        snprintf(dev, sizeof(dev), "/dev/fd/%d", m->fd);
        /* Non-blocking: a full pipe makes its messages fail, never the daemon wait. */
        if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
                kerr_set(err, errno, KERR_IO, "fuse-overlayfs: create a pipe");
                goto out;
        }
        err_r = above_stdio(pipefd[0]);
        err_w = above_stdio(pipefd[1]);
        devnull = above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (err_r < 0 || err_w < 0 || devnull < 0) {
                kerr_set(err, errno, KERR_IO, "fuse-overlayfs: set up its standard streams");
                goto out;
        }
        {
                char name[] = "fuse-overlayfs", fg[] = "-f", o[] = "-o";
                char *argv[] = {name, fg, o, opts.data, dev, NULL};

                pid = fork();
                if (pid == 0)
                        daemon_exec(f->program, argv, parent, devnull, err_w, m->fd, fds, n_fds);
        }
        if (pid < 0) {
                kerr_set(err, errno, KERR_IO, "fuse-overlayfs: fork");
                goto out;
        }
        klog_debug("sandbox: fuse-overlayfs %d serves stack %zu: %s", (int)pid, idx, opts.data);
        m->pid = pid;
        m->errfd = TAKE_FD(err_r);
        kfs_close(TAKE_FD(m->fd));
        ret = 0;
out:
        /* The daemon has its copies. */
        for (size_t i = 0; i < n_fds; i++)
                kfs_close(fds[i]);
        free(fds);
        kbuf_release(&opts);
        return ret;
}

/* The last line the daemon wrote, for an error; all of them at debug level. */
static char *drain(struct sbx_fuse_mount *m)
{
        struct kbuf b = KBUF_INIT;
        char buf[4096], *last = NULL;
        ssize_t n;

        if (m->errfd < 0)
                return NULL;
        while ((n = read(m->errfd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
                if (n > 0 && b.len < 64 * 1024)
                        kbuf_append(&b, buf, (size_t)n);
        kfs_close(TAKE_FD(m->errfd));
        for (char *p = b.data; p && *p;) {
                char *end = strchrnul(p, '\n');
                bool more = *end != '\0';

                *end = '\0';
                if (*p)
                        klog_debug("sandbox: fuse-overlayfs %d: %s", (int)m->pid, p);
                /* libfuse's note on the options it leaves to the kernel explains nothing. */
                if (*p && strncmp(p, "unknown argument ignored", 24) != 0) {
                        free(last);
                        last = kstrdup(p);
                }
                p = more ? end + 1 : end;
        }
        kbuf_release(&b);
        return last;
}

int sbx_fuse_stop(struct sbx_fuse *f, struct kerr **err)
{
        int ret = 0;

        for (size_t i = 0; i < f->n; i++) {
                struct sbx_fuse_mount *m = &f->m[i];
                _cleanup_free_ char *last = NULL;
                int status = 0;
                pid_t w;

                if (m->pid <= 0)
                        continue;
                /* Exited already: it failed, or saw its mount go away with the container. */
                do
                        w = waitpid(m->pid, &status, WNOHANG);
                while (w < 0 && errno == EINTR);
                if (w == m->pid) {
                        m->exited = true;
                } else {
                        kill(m->pid, SIGKILL);
                        while (waitpid(m->pid, &status, 0) < 0 && errno == EINTR)
                                ;
                }
                m->status = status;
                last = drain(m);
                if (m->exited && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) && ret == 0) {
                        char how[48];

                        if (WIFEXITED(status))
                                snprintf(how, sizeof(how), "exited with status %d",
                                         WEXITSTATUS(status));
                        else
                                snprintf(how, sizeof(how), "was killed by signal %d",
                                         WTERMSIG(status));
                        ret = kerr_set(err, 0, KERR_IO,
                                       "mount the layers with fuse-overlayfs: it %s%s%s%s", how,
                                       last ? " (" : "", last ? last : "", last ? ")" : "");
                }
                m->pid = -1;
        }
        return ret;
}

void sbx_fuse_release(struct sbx_fuse *f)
{
        if (!f->m)
                goto out;
        (void)sbx_fuse_stop(f, NULL);
        for (size_t i = 0; i < f->n; i++) {
                if (f->m[i].fd >= 0)
                        kfs_close(TAKE_FD(f->m[i].fd));
                if (f->m[i].errfd >= 0)
                        kfs_close(TAKE_FD(f->m[i].errfd));
        }
        free(f->m);
out:
        free(f->program);
        free(f->unusable);
        *f = (struct sbx_fuse){0};
}
