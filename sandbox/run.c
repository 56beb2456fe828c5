/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* A run, from the caller's side:
 *
 *   check the spec; capabilities and the seccomp filter are computed here, so their errors
 *   come before anything starts; write the /etc files; make the pids cgroup
 *   block SIGINT, SIGTERM and SIGHUP into a signalfd
 *   clone3(CLONE_NEWNS|NEWPID|NEWIPC|NEWUTS[|NEWNET]|CLONE_PIDFD) → the child, PID 1 of
 *   its PID namespace; move it into the cgroup; let it go
 *   child: rootfs.c builds and enters the root, then user, caps, no_new_privs, fds,
 *   seccomp, exec — telling the parent on a close-on-exec pipe what it created in the
 *   root file system and why it failed, if it did
 *   parent: poll that pipe, the signalfd and the pidfd until the child is reaped (the
 *   kernel kills the rest of the PID namespace first); a signal kills the child
 *   afterwards: remove the recorded mount points from the upper dir, the cgroup; restore
 *   the signal mask */

#define CLONE_FLAGS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS)

bool sbx_in_user_namespace(void)
{
        char buf[256] = {0};
        unsigned long inside, outside, count;
        int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return false;
        n = kfs_read_all(fd, buf, sizeof(buf) - 1);
        kfs_close(fd);
        if (n <= 0)
                return false;
        /* The initial namespace maps 0..2^32-2 onto itself, in one line (runc's test). */
        if (sscanf(buf, "%lu %lu %lu", &inside, &outside, &count) != 3)
                return true;
        return !(inside == 0 && outside == 0 && count == 4294967295UL &&
                 strchr(buf, '\n') == buf + n - 1);
}

/* An absolute path with "." and repeated or trailing slashes dropped ("..": kept). */
static char *norm_path(const char *p)
{
        struct kbuf b = KBUF_INIT;
        const char *s = p;

        if (p[0] != '/') {
                char *cwd = getcwd(NULL, 0);

                if (!cwd)
                        abort();
                kbuf_puts(&b, strcmp(cwd, "/") == 0 ? "" : cwd);
                free(cwd);
        }
        while (*s) {
                const char *end;

                while (*s == '/')
                        s++;
                end = strchrnul(s, '/');
                if (end > s && !(end - s == 1 && s[0] == '.')) {
                        kbuf_putc(&b, '/');
                        kbuf_append(&b, s, (size_t)(end - s));
                }
                s = end;
        }
        if (!b.len)
                kbuf_putc(&b, '/');
        return kbuf_detach(&b);
}

/* Everything a run owns on the caller's side. */
struct run {
        struct sandbox_spec spec; /* the caller's, with normalised host paths */
        char **lowers;
        struct sandbox_mount *mounts;
        char **strs; /* what the mounts' normalised paths point to */
        size_t n_strs;
        char *upper, *work, *etc_dir;
        char hostname[16];
        uint64_t caps;
        struct sbx_sc_loaded *profile;
        void *seccomp;
        struct sbx_limit limit;
        struct sbx_fuse fuse;
        struct sbx_created_list created;
        int chan_r, chan_w, go[2], sigfd, pidfd;
        pid_t pid;
        sigset_t old_mask;
        struct sigaction old_chld;
        bool signals_set;
};

static void run_release(struct run *r)
{
        if (r->signals_set) {
                sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
                sigaction(SIGCHLD, &r->old_chld, NULL);
        }
        for (size_t i = 0; r->lowers && i < r->spec.n_lowers; i++)
                free(r->lowers[i]);
        free(r->lowers);
        for (size_t i = 0; i < r->n_strs; i++)
                free(r->strs[i]);
        free(r->strs);
        free(r->mounts);
        free(r->upper);
        free(r->work);
        free(r->etc_dir);
        sbx_seccomp_free(r->seccomp);
        sbx_seccomp_loaded_free(r->profile);
        sbx_limit_release(&r->limit);
        sbx_fuse_release(&r->fuse);
        sbx_created_list_release(&r->created);
        {
                int *fds[] = {&r->chan_r, &r->chan_w, &r->go[0], &r->go[1], &r->sigfd, &r->pidfd};

                for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                        if (*fds[i] >= 0)
                                kfs_close(TAKE_FD(*fds[i]));
        }
}

static int check_spec(const struct sandbox_spec *s, struct kerr **err)
{
        if (!s->argv || !s->argv[0])
                return kerr_set(err, 0, KERR_INVALID, "sandbox: no command to run");
        if (!s->upper || !*s->upper)
                return kerr_set(err, 0, KERR_INVALID, "sandbox: no upper dir");
        if (s->n_lowers && (!s->work || !*s->work))
                return kerr_set(err, 0, KERR_INVALID, "sandbox: no overlay work dir");
        if (!s->etc_dir || !*s->etc_dir)
                return kerr_set(err, 0, KERR_INVALID, "sandbox: no dir for the /etc files");
        if (s->n_lowers > SBX_OVERLAY_MAX_LAYERS)
                return kerr_set(err, 0, KERR_UNSUPPORTED,
                                "sandbox: %zu layers are more than overlayfs stacks (%d): the "
                                "layer stack must be flattened",
                                s->n_lowers, SBX_OVERLAY_MAX_LAYERS);
        if (s->cwd && s->cwd[0] != '/')
                return kerr_set(err, 0, KERR_INVALID,
                                "sandbox: the working directory '%s' is "
                                "not absolute",
                                s->cwd);
        if (s->hostname && (!*s->hostname || strlen(s->hostname) > 64))
                return kerr_set(err, 0, KERR_INVALID, "sandbox: invalid hostname '%s'",
                                s->hostname);
        for (size_t i = 0; i < s->n_mounts; i++) {
                const struct sandbox_mount *m = &s->mounts[i];

                if (!m->target || m->target[0] != '/')
                        return kerr_set(err, 0, KERR_INVALID,
                                        "sandbox: mount target '%s' is not absolute",
                                        m->target ? m->target : "");
                if (m->type == SANDBOX_MOUNT_BIND && (!m->source || !*m->source))
                        return kerr_set(err, 0, KERR_INVALID,
                                        "sandbox: bind mount on '%s' has no source", m->target);
                if (m->type != SANDBOX_MOUNT_OVERLAY)
                        continue;
                if (!m->n_lowers || !m->lowers)
                        return kerr_set(err, 0, KERR_INVALID,
                                        "sandbox: overlay mount on '%s' has no lower dirs",
                                        m->target);
                for (size_t k = 0; k < m->n_lowers; k++)
                        if (!m->lowers[k] || !*m->lowers[k])
                                return kerr_set(err, 0, KERR_INVALID,
                                                "sandbox: overlay mount on '%s': lower dir %zu "
                                                "is empty",
                                                m->target, k + 1);
                if (!m->upper != !m->work || (m->upper && (!*m->upper || !*m->work)))
                        return kerr_set(err, 0, KERR_INVALID,
                                        "sandbox: overlay mount on '%s' needs both an upper and "
                                        "a work dir, or neither",
                                        m->target);
                if (m->n_lowers > SBX_OVERLAY_MAX_LAYERS)
                        return kerr_set(err, 0, KERR_UNSUPPORTED,
                                        "sandbox: overlay mount on '%s': %zu layers are more "
                                        "than overlayfs stacks (%d): the layer stack must be "
                                        "flattened",
                                        m->target, m->n_lowers, SBX_OVERLAY_MAX_LAYERS);
        }
        return 0;
}

static const char *keep(struct run *r, char *p)
{
        r->strs = kreallocarray(r->strs, r->n_strs + 1, sizeof(*r->strs));
        r->strs[r->n_strs++] = p;
        return p;
}

static const char *keep_norm(struct run *r, const char *path)
{
        return keep(r, norm_path(path));
}

/* The spec with its host paths absolute and normalised, as the child sees them below
 * /oldroot. */
static void copy_spec(struct run *r, const struct sandbox_spec *s)
{
        r->spec = *s;
        r->lowers = kcalloc(s->n_lowers + 1, sizeof(*r->lowers));
        for (size_t i = 0; i < s->n_lowers; i++)
                r->lowers[i] = norm_path(s->lowers[i]);
        r->spec.lowers = (const char *const *)r->lowers;
        r->upper = norm_path(s->upper);
        r->spec.upper = r->upper;
        r->work = s->work ? norm_path(s->work) : NULL;
        r->spec.work = r->work;
        r->etc_dir = norm_path(s->etc_dir);
        r->spec.etc_dir = r->etc_dir;
        r->mounts = kcalloc(s->n_mounts + 1, sizeof(*r->mounts));
        for (size_t i = 0; i < s->n_mounts; i++) {
                const struct sandbox_mount *m = &s->mounts[i];
                struct sandbox_mount *c = &r->mounts[i];

                *c = *m;
                c->source = m->source ? keep_norm(r, m->source) : NULL;
                c->upper = m->upper ? keep_norm(r, m->upper) : NULL;
                c->work = m->work ? keep_norm(r, m->work) : NULL;
                if (m->type == SANDBOX_MOUNT_OVERLAY) {
                        char **v = kcalloc(m->n_lowers + 1, sizeof(*v));

                        for (size_t k = 0; k < m->n_lowers; k++)
                                v[k] = (char *)keep_norm(r, m->lowers[k]);
                        keep(r, (char *)v);
                        c->lowers = (const char *const *)v;
                }
        }
        r->spec.mounts = r->mounts;
        if (!r->spec.cwd)
                r->spec.cwd = "/";
        if (!r->spec.pids_max)
                r->spec.pids_max = SANDBOX_PIDS_MAX_DEFAULT;
}

static int make_filter(struct run *r, struct kerr **err)
{
        const char *s = r->spec.seccomp;
        const struct sbx_sc_profile *p = sbx_seccomp_default_profile();

        if (s && strcmp(s, "unconfined") == 0)
                return 0;
        if (s) {
                if (sbx_seccomp_load_json(s, &r->profile, err) < 0)
                        return -1;
                p = sbx_seccomp_loaded_profile(r->profile);
        }
        return sbx_seccomp_build(p, r->caps, &r->seccomp, err);
}

/* docker names a container's host after 12 hex digits of its id. */
static void make_hostname(char out[16])
{
        unsigned char b[6] = {0};

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
                unsigned long x = (unsigned long)getpid() * 2654435761UL;

                memcpy(b, &x, sizeof(b) < sizeof(x) ? sizeof(b) : sizeof(x));
        }
        snprintf(out, 16, "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

/* ---- the child ---- */

static void reset_signals(void)
{
        struct sigaction sa;
        sigset_t none;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        /* Ignored signals would stay ignored across exec (SIGPIPE in a shell pipeline). */
        for (int i = 1; i < NSIG; i++)
                if (i != SIGKILL && i != SIGSTOP)
                        (void)sigaction(i, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The working directory, made when missing (owned by the user, as BuildKit makes it). Sets
 * *ret_later when the user may get in but root may not (an NFS-like root squash): the
 * chdir is then repeated after the switch. */
static int make_cwd(const char *cwd, const struct sbx_user *u, bool *ret_later, struct kerr **err)
{
        _cleanup_free_ char *p = NULL;

        *ret_later = false;
        if (chdir(cwd) == 0)
                return 0;
        if (errno == EACCES) {
                *ret_later = true;
                return 0;
        }
        if (errno != ENOENT)
                return kerr_set(err, errno, KERR_IO, "enter the working directory '%s'", cwd);
        p = kstrdup(cwd);
        for (char *s = p + 1;; s++) {
                char c = *s;

                if (c != '/' && c != '\0')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) == 0) {
                        if (lchown(p, u->uid, u->gid) < 0)
                                return kerr_set(err, errno, KERR_IO, "give '%s' to uid %lu", p,
                                                (unsigned long)u->uid);
                } else if (errno != EEXIST) {
                        return kerr_set(err, errno, KERR_IO, "create the working directory '%s'",
                                        cwd);
                }
                *s = c;
                if (!c)
                        break;
        }
        if (chdir(cwd) < 0)
                return kerr_set(err, errno, KERR_IO, "enter the working directory '%s'", cwd);
        return 0;
}

static int child_run(const struct sbx_child *c, struct kerr **err)
{
        const struct sandbox_spec *s = c->spec;
        struct sbx_user user = {0};
        bool cwd_later = false;
        int r = -1;

        reset_signals();
        umask(022);
        /* A session of its own: the terminal's signals go to kiln, which kills the run. */
        if (setsid() < 0)
                return kerr_set(err, errno, KERR_IO, "setsid");
        if (sethostname(c->hostname, strlen(c->hostname)) < 0)
                return kerr_set(err, errno, KERR_IO, "set the hostname");
        if (s->net == SANDBOX_NET_NONE && sbx_loopback_up(err) < 0)
                return -1;
        if (sbx_rootfs_setup(c, err) < 0)
                return -1;
        /* From here on, "/" is the container's: its passwd and group, never the host's. */
        if (sbx_user_resolve(s->user, &user, err) < 0)
                return -1;
        if (make_cwd(s->cwd, &user, &cwd_later, err) < 0)
                goto out;
        if (s->read_only && sbx_rootfs_make_readonly(err) < 0)
                goto out;
        if (sbx_limit_child(c->limit, err) < 0 || sbx_caps_bound(c->caps, err) < 0 ||
            sbx_user_switch(&user, err) < 0 || sbx_caps_apply(c->caps, user.uid == 0, err) < 0)
                goto out;
        if (cwd_later && chdir(s->cwd) < 0) {
                kerr_set(err, errno, KERR_IO, "enter the working directory '%s'", s->cwd);
                goto out;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                kerr_set(err, errno, KERR_IO, "set no_new_privs");
                goto out;
        }
        /* A change of uid clears the parent-death signal. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
                kerr_set(err, errno, KERR_IO, "set the parent-death signal");
                goto out;
        }
        r = sbx_exec(s, &user, c->seccomp, c->chan, err);
out:
        sbx_user_release(&user);
        return r;
}

__attribute__((noreturn)) static void child_main(struct sbx_child *c)
{
        struct kerr *err = NULL;
        char go = 0;
        ssize_t n;

        /* If kiln dies, so does the container: PID 1 takes everything with it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                _exit(126);
        do
                n = read(c->go_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
                _exit(126); /* kiln gave up (or died) before letting us go */
        kfs_close(c->go_fd);
        /* fds 0-2 are about to be replaced: the pipe must not be one of them. */
        if (c->chan < 3) {
                int fd = fcntl(c->chan, F_DUPFD_CLOEXEC, 3);

                if (fd < 0)
                        _exit(126);
                c->chan = fd;
        }
        if (child_run(c, &err) < 0)
                sbx_chan_send_error(c->chan, err);
        _exit(127);
}

/* ---- the parent ---- */

static pid_t clone_child(unsigned long flags, int *ret_pidfd)
{
        struct clone_args args;
        long pid;

        memset(&args, 0, sizeof(args));
        args.flags = flags | CLONE_PIDFD;
        args.pidfd = (uint64_t)(uintptr_t)ret_pidfd;
        args.exit_signal = SIGCHLD;
        /* fork-like (no stack given): the child continues here with a copy of memory. */
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0 && errno == ENOSYS)
                pid = syscall(SYS_clone, flags | CLONE_PIDFD | SIGCHLD, NULL, ret_pidfd, NULL, 0);
        return (pid_t)pid;
}

static int setup_signals(struct run *r, struct kerr **err)
{
        struct sigaction dfl;
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        r->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (r->sigfd < 0)
                return kerr_set(err, errno, KERR_IO, "create a signalfd");
        if (sigprocmask(SIG_BLOCK, &set, &r->old_mask) < 0) {
                kfs_close(r->sigfd);
                r->sigfd = -1;
                return kerr_set(err, errno, KERR_IO, "block signals");
        }
        /* With SIGCHLD ignored the child would be reaped before we could read its status. */
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &dfl, &r->old_chld);
        r->signals_set = true;
        return 0;
}

struct outcome {
        struct sbx_chan_reader chan;
        int status; /* wait status */
        int signal; /* the signal that interrupted the run, or 0 */
        bool reaped;
        struct kerr *fuse_error; /* a fuse-overlayfs the child asked for could not start */
};

static void read_chan(struct run *r, struct outcome *o, bool *open_)
{
        char buf[4096];
        ssize_t n;

        for (;;) {
                n = read(r->chan_r, buf, sizeof(buf));
                if (n > 0) {
                        kbuf_append(o->chan.buf, buf, (size_t)n);
                        if (sbx_chan_parse(&o->chan, &r->created) < 0) {
                                klog_debug("sandbox: a malformed message from the container");
                                *open_ = false;
                                return;
                        }
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                        *open_ = false;
                return;
        }
}

static void on_signal(struct run *r, struct outcome *o)
{
        struct signalfd_siginfo si;

        while (read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (o->signal)
                        continue;
                o->signal = (int)si.ssi_signo;
                klog_debug("sandbox: signal %d: killing the container", o->signal);
                if (pidfd_send_signal(r->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                        kill(r->pid, SIGKILL);
        }
}

/* Starts fuse-overlayfs for the stacks the child mounted for it. The child waits for the
 * daemon's first answer; if one cannot start, the child is killed. */
static void serve_fuse(struct run *r, struct outcome *o)
{
        for (size_t i = 0; i < o->chan.n_fuse; i++) {
                const struct sbx_chan_fuse *f = &o->chan.fuse[i];

                if (o->reaped || o->fuse_error)
                        break;
                if (sbx_fuse_start(&r->fuse, &r->spec, f->idx, f->refused, f->why,
                                   &o->fuse_error) == 0)
                        continue;
                if (pidfd_send_signal(r->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                        kill(r->pid, SIGKILL);
        }
        sbx_chan_fuse_clear(&o->chan);
}

/* Waits for the child, its messages and signals, until it is reaped and its pipe closed. */
static int wait_child(struct run *r, struct outcome *o, struct kerr **err)
{
        bool chan_open = true;

        while (!o->reaped || chan_open) {
                struct pollfd p[3];
                nfds_t n = 0;
                int ci = -1, si, pi;

                if (o->reaped) {
                        /* Nothing writes any more: take what is left. */
                        read_chan(r, o, &chan_open);
                        break;
                }
                if (chan_open) {
                        ci = (int)n;
                        p[n++] = (struct pollfd){.fd = r->chan_r, .events = POLLIN};
                }
                si = (int)n;
                p[n++] = (struct pollfd){.fd = r->sigfd, .events = POLLIN};
                pi = (int)n;
                p[n++] = (struct pollfd){.fd = r->pidfd, .events = POLLIN};
                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return kerr_set(err, errno, KERR_IO, "wait for the container");
                }
                if (ci >= 0 && p[ci].revents) {
                        read_chan(r, o, &chan_open);
                        serve_fuse(r, o);
                }
                if (p[si].revents)
                        on_signal(r, o);
                if (p[pi].revents) {
                        while (waitpid(r->pid, &o->status, 0) < 0) {
                                if (errno != EINTR)
                                        return kerr_set(err, errno, KERR_IO,
                                                        "wait for the container");
                        }
                        o->reaped = true;
                }
        }
        return 0;
}

static int start(struct run *r, struct sbx_child *c, struct kerr **err)
{
        int fds[2];
        unsigned long flags = CLONE_FLAGS;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return kerr_set(err, errno, KERR_IO, "create a pipe");
        r->chan_r = fds[0];
        r->chan_w = fds[1];
        /* A socket, so that telling a dead child to go is EPIPE, not SIGPIPE. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->go) < 0)
                return kerr_set(err, errno, KERR_IO, "create a socket pair");
        if (fcntl(r->chan_r, F_SETFL, O_NONBLOCK) < 0)
                return kerr_set(err, errno, KERR_IO, "set O_NONBLOCK");
        if (setup_signals(r, err) < 0)
                return -1;
        if (r->spec.net == SANDBOX_NET_NONE)
                flags |= CLONE_NEWNET;
        c->chan = r->chan_w;
        c->go_fd = r->go[0];
        r->pid = clone_child(flags, &r->pidfd);
        if (r->pid < 0)
                return kerr_set(err, errno,
                                errno == EPERM || errno == EINVAL ? KERR_UNSUPPORTED : KERR_IO,
                                "create the container's namespaces");
        if (r->pid == 0) {
                /* The child's copy of the other end would hide kiln's death from it. */
                kfs_close(r->go[1]);
                kfs_close(r->chan_r);
                kfs_close(r->sigfd);
                child_main(c);
        }
        kfs_close(TAKE_FD(r->chan_w));
        kfs_close(TAKE_FD(r->go[0]));
        return 0;
}

static const char *signame(int sig)
{
        switch (sig) {
        case SIGINT:
                return "SIGINT";
        case SIGTERM:
                return "SIGTERM";
        case SIGHUP:
                return "SIGHUP";
        default:
                return "a signal";
        }
}

int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *ret, struct kerr **err)
{
        struct run r = {.chan_r = -1, .chan_w = -1, .go = {-1, -1}, .sigfd = -1, .pidfd = -1};
        struct kbuf msgs = KBUF_INIT;
        struct outcome o = {.chan = {.buf = &msgs}};
        struct sbx_child c = {0};
        struct kerr *fuse_err = NULL;
        bool fuse_failed = false;
        int rc = -1;

        if (check_spec(spec, err) < 0)
                return -1;
        copy_spec(&r, spec);
        if (sbx_caps_compute(spec->cap_add, spec->cap_drop, &r.caps, err) < 0 ||
            make_filter(&r, err) < 0 || sbx_fuse_prepare(&r.fuse, &r.spec, err) < 0)
                goto out;
        if (!spec->hostname)
                make_hostname(r.hostname);
        c.hostname = spec->hostname ? spec->hostname : r.hostname;
        if (sbx_write_etc_files(r.etc_dir, spec->net, c.hostname, err) < 0)
                goto out;
        c.spec = &r.spec;
        c.userns = sbx_in_user_namespace();
        c.caps = r.caps;
        c.seccomp = r.seccomp;
        c.fuse = &r.fuse;
        sbx_limit_prepare(&r.limit, r.spec.pids_max, c.userns);
        c.limit = &r.limit;
        if (start(&r, &c, err) < 0)
                goto out;
        /* Without its limit the container must not start: closing the socket unsent
         * makes the child exit. */
        if (sbx_limit_attach(&r.limit, r.pid, err) < 0) {
                kfs_close(TAKE_FD(r.go[1]));
                while (waitpid(r.pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                goto out;
        }
        if (send(r.go[1], &(char){1}, 1, MSG_NOSIGNAL) != 1)
                klog_debug("sandbox: the container went away before it started");
        kfs_close(TAKE_FD(r.go[1]));
        if (wait_child(&r, &o, err) < 0) {
                kill(r.pid, SIGKILL);
                while (waitpid(r.pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                goto out;
        }
        /* The container's mount namespace is gone, and with it the FUSE mounts. */
        fuse_failed = sbx_fuse_stop(&r.fuse, &fuse_err) < 0;
        if (r.fuse.m && r.fuse.m[0].used && !o.signal && !o.chan.error && !o.fuse_error &&
            !fuse_failed && o.chan.exec_started &&
            sbx_fuse_upper_normalize(r.upper, r.spec.lowers, r.spec.n_lowers, err) < 0)
                goto out;
        if (sbx_created_cleanup(r.upper, &r.created, err) < 0 && !o.signal && !o.chan.error &&
            !o.fuse_error && !fuse_failed)
                goto out;
        if (o.signal) {
                kerr_set(err, EINTR, KERR_IO, "interrupted by %s: the container was killed",
                         signame(o.signal));
                goto out;
        }
        /* A daemon that failed explains the container's failure (ENOTCONN), and one that
         * died under a command that carried on may have lost its writes. */
        if (o.fuse_error || fuse_failed) {
                if (err) {
                        kerr_free(*err);
                        *err = o.fuse_error ? TAKE_PTR(o.fuse_error) : TAKE_PTR(fuse_err);
                }
                goto out;
        }
        if (o.chan.error) {
                if (err) {
                        kerr_free(*err);
                        *err = TAKE_PTR(o.chan.error);
                }
                goto out;
        }
        if (!o.chan.exec_started) {
                if (WIFSIGNALED(o.status))
                        kerr_set(err, 0, KERR_INTERNAL,
                                 "the container's setup was killed by signal %d",
                                 WTERMSIG(o.status));
                else
                        kerr_set(err, 0, KERR_INTERNAL,
                                 "the container's setup exited with status %d and no reason",
                                 WEXITSTATUS(o.status));
                goto out;
        }
        ret->signaled = WIFSIGNALED(o.status);
        ret->status = ret->signaled ? WTERMSIG(o.status) : WEXITSTATUS(o.status);
        ret->pids_limit = r.limit.kind;
        rc = 0;
out:
        kerr_free(o.chan.error);
        kerr_free(o.fuse_error);
        kerr_free(fuse_err);
        sbx_chan_fuse_clear(&o.chan);
        kbuf_release(&msgs);
        run_release(&r);
        return rc;
}
