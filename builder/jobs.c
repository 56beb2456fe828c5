/* SPDX-License-Identifier: Apache-2.0 */
/* Worker processes of a parallel build. Each runs one piece of work (a stage) in a forked
 * copy of kiln, with its standard output and error going into pipes that the parent writes
 * out a line at a time behind the worker's prefix; what the work hands back comes on a third
 * pipe. Processes, not threads: a worker calls sandbox_run(), which must not run while
 * another thread may hold a libc lock. */
#include "builder/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "image/image.h"
#include "common/banned.h"

/* A line longer than this is written out in pieces, each behind the prefix. */
#define LINE_MAX_LEN (64u << 10)
/* How long a stopped worker has to clean up (a RUN kills its container and removes its
 * cgroup on SIGTERM) before it gets SIGKILL. */
#define STOP_GRACE_MS 5000

enum { STREAM_OUT, STREAM_ERR, STREAM_RESULT, N_STREAMS };

struct job {
        size_t id;
        char *name;
        char *prefix; /* "[name] " */
        pid_t pid;
        int pidfd;                  /* -1 once reaped */
        int fds[N_STREAMS];         /* read ends; -1 at end of file */
        struct kbuf buf[N_STREAMS]; /* a partial line (out, err); the whole answer (result) */
        int status;                 /* the wait status, once reaped */
};

struct builder_jobs {
        struct image_store *s;
        struct job **v;
        size_t n;
        int sigfd;
        size_t started; /* workers started: their pids may have left work dirs */
        sigset_t old_mask;
        struct sigaction old_chld;
};

/* What a worker sends after its work: 'O' and the answer, or 'E', this header, the file
 * name (file_len bytes, none when it is UINT32_MAX) and the message. Both ends are the
 * same binary, so the layout is the wire format. */
struct wire_err {
        int32_t errnum, code;
        uint32_t line, col, file_len, msg_len;
};

static void job_free(struct job *j)
{
        if (!j)
                return;
        for (int k = 0; k < N_STREAMS; k++) {
                if (j->fds[k] >= 0)
                        kfs_close(j->fds[k]);
                kbuf_release(&j->buf[k]);
        }
        if (j->pidfd >= 0)
                kfs_close(j->pidfd);
        free(j->name);
        free(j->prefix);
        free(j);
}

struct builder_jobs *builder_jobs_new(struct image_store *s, struct kerr **err)
{
        struct builder_jobs *j = kcalloc(1, sizeof(*j));
        struct sigaction dfl;
        sigset_t set;

        j->s = s;
        /* SIGINT, SIGTERM and SIGHUP stop every worker, as they stop a RUN's container. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        j->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (j->sigfd < 0) {
                kerr_set(err, errno, KERR_IO, "create a signalfd");
                free(j);
                return NULL;
        }
        sigprocmask(SIG_BLOCK, &set, &j->old_mask);
        /* With SIGCHLD ignored a worker would be reaped before its status was read. */
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &dfl, &j->old_chld);
        return j;
}

size_t builder_jobs_running(const struct builder_jobs *j)
{
        return j->n;
}

/* ---- the worker ---- */

static void put_answer(int fd, int r, const struct kbuf *out, const struct kerr *e)
{
        struct kbuf w = KBUF_INIT;

        if (r == 0) {
                kbuf_putc(&w, 'O');
                if (out->len)
                        kbuf_append(&w, out->data, out->len);
        } else {
                const char *msg = e && e->msg ? e->msg : "failed without a reason";
                struct wire_err h = {
                        .errnum = e ? e->errnum : 0,
                        .code = e ? (int32_t)e->code : KERR_INTERNAL,
                        .line = e ? e->line : 0,
                        .col = e ? e->col : 0,
                        .file_len = e && e->file ? (uint32_t)strlen(e->file) : UINT32_MAX,
                        .msg_len = (uint32_t)strlen(msg),
                };

                kbuf_putc(&w, 'E');
                kbuf_append(&w, &h, sizeof(h));
                if (e && e->file)
                        kbuf_puts(&w, e->file);
                kbuf_puts(&w, msg);
        }
        /* The parent reads while this writes, so an answer larger than a pipe is fine. */
        (void)kfs_write_all(fd, w.data, w.len);
        kbuf_release(&w);
}

/* Moves fd onto target (0, 1 or 2), which stays open across exec as standard streams do. */
static int move_fd(int fd, int target)
{
        return dup3(fd, target, 0) < 0 ? -1 : 0;
}

__attribute__((noreturn)) static void worker_main(struct builder_jobs *j, pid_t parent, int w[],
                                                  builder_job_fn fn, void *ctx)
{
        struct kbuf out = KBUF_INIT;
        struct kerr *e = NULL;
        int r;

        sigprocmask(SIG_SETMASK, &j->old_mask, NULL);
        sigaction(SIGCHLD, &j->old_chld, NULL);
        /* A worker never outlives the build; its container dies with it in turn. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127);
        kfs_close(j->sigfd);
        for (size_t i = 0; i < j->n; i++) {
                for (int k = 0; k < N_STREAMS; k++)
                        if (j->v[i]->fds[k] >= 0)
                                kfs_close(j->v[i]->fds[k]);
                if (j->v[i]->pidfd >= 0)
                        kfs_close(j->v[i]->pidfd);
        }
        /* Above 2 first, so that moving one onto 1 or 2 cannot close another. */
        for (int k = 0; k < N_STREAMS; k++) {
                if (w[k] > 2)
                        continue;
                int low = w[k];

                w[k] = fcntl(low, F_DUPFD_CLOEXEC, 3);
                if (w[k] < 0)
                        _exit(127);
                if (low == 0)
                        kfs_close(low);
        }
        if (move_fd(w[STREAM_OUT], 1) < 0 || move_fd(w[STREAM_ERR], 2) < 0)
                _exit(127);
        kfs_close(w[STREAM_OUT]);
        kfs_close(w[STREAM_ERR]);
        r = fn(ctx, &out, &e);
        put_answer(w[STREAM_RESULT], r, &out, e);
        fflush(stdout);
        fflush(stderr);
        /* _exit: the parent's atexit handlers and stdio buffers are not this process's. */
        _exit(r < 0 ? 1 : 0);
}

int builder_jobs_start(struct builder_jobs *j, size_t id, const char *name, builder_job_fn fn,
                       void *ctx, struct kerr **err)
{
        struct job *job = kcalloc(1, sizeof(*job));
        int w[N_STREAMS] = {-1, -1, -1};
        pid_t parent = getpid();
        struct kbuf prefix = KBUF_INIT;

        job->id = id;
        job->name = kstrdup(name);
        kbuf_printf(&prefix, "[%s] ", name);
        job->prefix = kbuf_detach(&prefix);
        job->pidfd = -1;
        for (int k = 0; k < N_STREAMS; k++) {
                int p[2];

                job->fds[k] = -1;
                if (pipe2(p, O_CLOEXEC) < 0) {
                        kerr_set(err, errno, KERR_IO, "create a pipe");
                        goto fail;
                }
                job->fds[k] = p[0];
                w[k] = p[1];
                if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
                        kerr_set(err, errno, KERR_IO, "set O_NONBLOCK");
                        goto fail;
                }
        }
        /* What stdio holds would be written twice, by the worker too. */
        fflush(stdout);
        fflush(stderr);
        job->pid = fork();
        if (job->pid < 0) {
                kerr_set(err, errno, KERR_IO, "start a worker for '%s'", name);
                goto fail;
        }
        if (job->pid == 0) {
                for (int k = 0; k < N_STREAMS; k++)
                        kfs_close(job->fds[k]);
                worker_main(j, parent, w, fn, ctx);
        }
        for (int k = 0; k < N_STREAMS; k++)
                kfs_close(TAKE_FD(w[k]));
        job->pidfd = pidfd_open(job->pid, 0);
        if (job->pidfd < 0) {
                kerr_set(err, errno, errno == ENOSYS ? KERR_UNSUPPORTED : KERR_IO,
                         "open a pidfd of the worker for '%s'", name);
                kill(job->pid, SIGKILL);
                while (waitpid(job->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                image_store_sweep(j->s);
                goto fail;
        }
        klog_debug("build: worker %d builds '%s'", (int)job->pid, name);
        j->v = kreallocarray(j->v, j->n + 1, sizeof(*j->v));
        j->v[j->n++] = job;
        j->started++;
        return 0;
fail:
        for (int k = 0; k < N_STREAMS; k++)
                if (w[k] >= 0)
                        kfs_close(w[k]);
        job_free(job);
        return -1;
}

/* ---- the parent: output, answers, exits ---- */

static void emit(const struct job *job, int fd, const char *p, size_t n)
{
        struct kbuf line = KBUF_INIT;

        kbuf_puts(&line, job->prefix);
        kbuf_append(&line, p, n);
        kbuf_putc(&line, '\n');
        /* As when a RUN writes to kiln's own output: a failed write loses only output. */
        (void)kfs_write_all(fd, line.data, line.len);
        kbuf_release(&line);
}

/* Writes out the complete lines of a stream's buffer (all of it at the end of the stream). */
static void flush_lines(struct job *job, int k, bool all)
{
        struct kbuf *b = &job->buf[k];
        int fd = k == STREAM_OUT ? 1 : 2;
        size_t start = 0;

        while (start < b->len) {
                char *nl = memchr(b->data + start, '\n', b->len - start);
                size_t n;

                if (nl)
                        n = (size_t)(nl - (b->data + start));
                else if (all || b->len - start >= LINE_MAX_LEN)
                        n = b->len - start;
                else
                        break;
                emit(job, fd, b->data + start, n);
                start += n + (nl ? 1 : 0);
        }
        if (start) {
                memmove(b->data, b->data + start, b->len - start);
                kbuf_truncate(b, b->len - start);
        }
}

static void read_stream(struct job *job, int k)
{
        char buf[16384];

        while (job->fds[k] >= 0) {
                ssize_t n = read(job->fds[k], buf, sizeof(buf));

                if (n > 0) {
                        kbuf_append(&job->buf[k], buf, (size_t)n);
                        if (k != STREAM_RESULT)
                                flush_lines(job, k, false);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                /* End of file, or an error that ends the stream just as well. */
                kfs_close(TAKE_FD(job->fds[k]));
                if (k != STREAM_RESULT)
                        flush_lines(job, k, true);
        }
}

static void reap(struct job *job)
{
        while (waitpid(job->pid, &job->status, 0) < 0) {
                if (errno != EINTR) {
                        job->status = 0;
                        break;
                }
        }
        kfs_close(TAKE_FD(job->pidfd));
}

static bool job_done(const struct job *job)
{
        if (job->pidfd >= 0)
                return false;
        for (int k = 0; k < N_STREAMS; k++)
                if (job->fds[k] >= 0)
                        return false;
        return true;
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

/* One poll over every stream and pidfd (and the signalfd when sigfd): reads what is there,
 * reaps what exited. Returns the signal that arrived, 0, or -1 on a poll failure. */
static int poll_once(struct builder_jobs *j, bool sigfd, int timeout_ms, struct kerr **err)
{
        struct pollfd *p = kcalloc(j->n * (N_STREAMS + 1) + 1, sizeof(*p));
        nfds_t n = 0;
        int sig = 0;

        if (sigfd)
                p[n++] = (struct pollfd){.fd = j->sigfd, .events = POLLIN};
        for (size_t i = 0; i < j->n; i++) {
                for (int k = 0; k < N_STREAMS; k++)
                        if (j->v[i]->fds[k] >= 0)
                                p[n++] = (struct pollfd){.fd = j->v[i]->fds[k], .events = POLLIN};
                if (j->v[i]->pidfd >= 0)
                        p[n++] = (struct pollfd){.fd = j->v[i]->pidfd, .events = POLLIN};
        }
        if (poll(p, n, timeout_ms) < 0 && errno != EINTR) {
                free(p);
                return kerr_set(err, errno, KERR_IO, "wait for the build's workers");
        }
        if (sigfd && p[0].revents) {
                struct signalfd_siginfo si;

                while (read(j->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                        if (!sig)
                                sig = (int)si.ssi_signo;
        }
        free(p);
        /* Every stream is read before a worker is reaped, and again after, so that what it
         * wrote last is not lost; readiness is not checked, reads do not block. */
        for (size_t i = 0; i < j->n; i++) {
                struct job *job = j->v[i];
                struct pollfd pp = {.fd = job->pidfd, .events = POLLIN};
                bool exited = job->pidfd >= 0 && poll(&pp, 1, 0) == 1;

                for (int k = 0; k < N_STREAMS; k++)
                        read_stream(job, k);
                if (exited)
                        reap(job);
        }
        return sig;
}

/* The worker's answer: 0 and the payload in out, or its error. */
static int answer(const struct job *job, struct kbuf *out, struct kerr **err)
{
        const struct kbuf *b = &job->buf[STREAM_RESULT];
        int st = job->status;

        if (b->len >= 1 && b->data[0] == 'O' && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                kbuf_append(out, b->data + 1, b->len - 1);
                return 0;
        }
        if (b->len >= 1 + sizeof(struct wire_err) && b->data[0] == 'E') {
                struct wire_err h;
                const char *p = b->data + 1 + sizeof(h);
                size_t left = b->len - 1 - sizeof(h);
                size_t flen;
                _cleanup_free_ char *file = NULL;

                memcpy(&h, b->data + 1, sizeof(h));
                flen = h.file_len == UINT32_MAX ? 0 : h.file_len;
                if (flen <= left && h.msg_len == left - flen) {
                        if (h.file_len != UINT32_MAX)
                                file = kstrndup(p, flen);
                        kerr_set_at(err, (enum kerr_code)h.code, file, h.line, h.col, "%.*s",
                                    (int)h.msg_len, p + flen);
                        if (err && *err)
                                (*err)->errnum = h.errnum;
                        return -1;
                }
        }
        if (WIFSIGNALED(st))
                return kerr_set(err, 0, KERR_INTERNAL,
                                "the worker process of '%s' was killed by signal %d", job->name,
                                WTERMSIG(st));
        return kerr_set(err, 0, KERR_INTERNAL,
                        "the worker process of '%s' exited with status %d and no answer", job->name,
                        WEXITSTATUS(st));
}

int builder_jobs_wait(struct builder_jobs *j, size_t *ret_id, struct kbuf *out, struct kerr **err)
{
        for (;;) {
                int sig;

                for (size_t i = 0; i < j->n; i++) {
                        struct job *job = j->v[i];
                        int r;

                        if (!job_done(job))
                                continue;
                        memmove(&j->v[i], &j->v[i + 1], (j->n - i - 1) * sizeof(*j->v));
                        j->n--;
                        *ret_id = job->id;
                        r = answer(job, out, err);
                        job_free(job);
                        return r;
                }
                if (!j->n)
                        return kerr_set(err, 0, KERR_INTERNAL, "no worker to wait for");
                sig = poll_once(j, true, -1, err);
                if (sig < 0)
                        return -1;
                if (sig > 0)
                        return kerr_set(err, EINTR, KERR_IO,
                                        "interrupted by %s: the build's stages were stopped",
                                        signame(sig));
        }
}

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void builder_jobs_free(struct builder_jobs *j)
{
        long long deadline;
        bool killed = false;

        if (!j)
                return;
        for (size_t i = 0; i < j->n; i++) {
                if (j->v[i]->pidfd < 0)
                        continue;
                klog_debug("build: stopping worker %d ('%s')", (int)j->v[i]->pid, j->v[i]->name);
                if (pidfd_send_signal(j->v[i]->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                        kill(j->v[i]->pid, SIGTERM);
        }
        deadline = now_ms() + STOP_GRACE_MS;
        for (;;) {
                bool left = false;
                long long wait_ms;

                for (size_t i = 0; i < j->n; i++)
                        left = left || !job_done(j->v[i]);
                if (!left)
                        break;
                wait_ms = deadline - now_ms();
                if (wait_ms <= 0 && !killed) {
                        for (size_t i = 0; i < j->n; i++)
                                if (j->v[i]->pidfd >= 0 &&
                                    pidfd_send_signal(j->v[i]->pidfd, SIGKILL, NULL, 0) < 0 &&
                                    errno != ESRCH)
                                        kill(j->v[i]->pid, SIGKILL);
                        killed = true;
                }
                if (poll_once(j, false, killed ? 1000 : (int)wait_ms, NULL) < 0)
                        break;
                if (killed && wait_ms < -10000) {
                        /* Their pipes are held open by something else: stop reading. */
                        for (size_t i = 0; i < j->n; i++)
                                if (j->v[i]->pidfd >= 0)
                                        reap(j->v[i]);
                        break;
                }
        }
        for (size_t i = 0; i < j->n; i++)
                job_free(j->v[i]);
        free(j->v);
        /* The work dirs of a worker that was stopped or died carry its pid, gone now. */
        if (j->started)
                image_store_sweep(j->s);
        kfs_close(j->sigfd);
        sigprocmask(SIG_SETMASK, &j->old_mask, NULL);
        sigaction(SIGCHLD, &j->old_chld, NULL);
        free(j);
}
