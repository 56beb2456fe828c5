/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

#define SUBUID_FILE "/etc/subuid"
#define SUBGID_FILE "/etc/subgid"
/* The kernel takes at most 340 lines in a uid_map or gid_map; one is the user's own id. */
#define MAX_RANGES 339
/* Inside ids run from 0 to this; (uid_t)-1 is never a valid id. */
#define MAX_INSIDE 0xfffffffeUL
#define EXAMPLE_RANGES "--add-subuids 100000-165535 --add-subgids 100000-165535"

static bool parse_id(const char *s, unsigned long *ret)
{
        char *end = NULL;
        unsigned long v;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > UINT32_MAX)
                return false;
        *ret = v;
        return true;
}

/* One line of /etc/subuid: "NAME:START:COUNT", NAME a login name or a uid number. Returns
 * true with *ret set when the line is well formed and names the user. */
static bool parse_subid_line(char *line, const char *user, const char *idstr,
                             struct sandbox_idrange *ret)
{
        char *name = line, *start, *count;
        unsigned long s, c;

        line[strcspn(line, "\n")] = '\0';
        start = strchr(name, ':');
        if (!start)
                return false;
        *start++ = '\0';
        count = strchr(start, ':');
        if (!count)
                return false;
        *count++ = '\0';
        if (strcmp(name, idstr) != 0 && (!user || strcmp(name, user) != 0))
                return false;
        if (!parse_id(start, &s) || !parse_id(count, &c) || c == 0 || c > UINT32_MAX - s + 1) {
                klog_debug("ignoring the malformed subordinate id range of '%s'", name);
                return false;
        }
        ret->start = s;
        ret->count = c;
        return true;
}

int sandbox_subid_ranges(const char *path, const char *user, unsigned long id,
                         struct sandbox_idrange **ret_ranges, size_t *ret_n, struct kerr **err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        _cleanup_free_ struct sandbox_idrange *v = NULL;
        size_t n = 0, cap = 0, len = 0;
        char idstr[32];

        if (!f && errno != ENOENT)
                return kerr_set(err, errno, KERR_IO, "open '%s'", path);
        snprintf(idstr, sizeof(idstr), "%lu", id);
        while (f && getline(&line, &len, f) >= 0) {
                struct sandbox_idrange r;

                if (!parse_subid_line(line, user, idstr, &r))
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 4;
                        v = kreallocarray(v, cap, sizeof(*v));
                }
                v[n++] = r;
        }
        if (f && ferror(f))
                return kerr_set(err, EIO, KERR_IO, "read '%s'", path);
        *ret_ranges = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

void sandbox_userns_release(struct sandbox_userns *ns)
{
        if (!ns)
                return;
        free(ns->warning);
        free(ns->hint);
        ns->warning = ns->hint = NULL;
}

char *sbx_find_program(const char *name)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = NULL;
        char *dir, *rest;

        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        copy = kstrdup(path);
        for (dir = copy; dir; dir = rest) {
                char *full = NULL;

                rest = strchr(dir, ':');
                if (rest)
                        *rest++ = '\0';
                /* An empty or relative entry would mean the current directory. */
                if (dir[0] != '/')
                        continue;
                if (asprintf(&full, "%s/%s", dir, name) < 0)
                        abort();
                if (access(full, X_OK) == 0)
                        return full;
                free(full);
        }
        return NULL;
}

static void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}
DEFINE_CLEANUP(char **, strv_free)

static void strv_push(char ***v, size_t *n, size_t *cap, unsigned long x)
{
        if (*n + 2 > *cap) {
                *cap = *cap ? 2 * *cap : 16;
                *v = kreallocarray(*v, *cap, sizeof(**v));
        }
        if (asprintf(&(*v)[(*n)++], "%lu", x) < 0)
                abort();
        (*v)[*n] = NULL;
}

/* "newuidmap PID 0 OWN 1 1 START COUNT ...": inside id 0 is the user's own id, then the
 * ranges follow one after another from 1. Sets *ret_mapped to the number of inside ids. */
static char **map_argv(const char *tool, pid_t pid, unsigned long own,
                       const struct sandbox_idrange *r, size_t n, unsigned long *ret_mapped)
{
        size_t len = 1, cap = 16;
        char **v = kcalloc(cap, sizeof(*v));
        unsigned long next = 1;

        v[0] = kstrdup(tool);
        strv_push(&v, &len, &cap, (unsigned long)pid);
        strv_push(&v, &len, &cap, 0);
        strv_push(&v, &len, &cap, own);
        strv_push(&v, &len, &cap, 1);
        for (size_t k = 0; k < n && k < MAX_RANGES; k++) {
                if (r[k].count > MAX_INSIDE - next + 1) {
                        klog_debug("%s: leaving out the ranges past the last inside id", tool);
                        break;
                }
                strv_push(&v, &len, &cap, next);
                strv_push(&v, &len, &cap, r[k].start);
                strv_push(&v, &len, &cap, r[k].count);
                next += r[k].count;
        }
        *ret_mapped = next;
        return v;
}

/* In the helper: starts one tool with its stderr on errfd; its pid, or -1. */
static pid_t start_tool(const char *path, char **argv, int errfd)
{
        pid_t pid = fork();

        if (pid < 0) {
                dprintf(errfd, "fork: %s\n", strerror(errno));
                return -1;
        }
        if (pid == 0) {
                /* fd 2 is meant to cross the exec, so no O_CLOEXEC here. */
                if (errfd != STDERR_FILENO && dup3(errfd, STDERR_FILENO, 0) < 0)
                        _exit(127);
                close_range(3, ~0U, 0);
                execv(path, argv);
                dprintf(STDERR_FILENO, "run '%s': %s\n", path, strerror(errno));
                _exit(127);
        }
        return pid;
}

/* In the helper: 0 when the tool started as pid exits 0. */
static int wait_tool(pid_t pid, const char *path, char **argv, int errfd)
{
        int status = 0;

        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR) {
                        dprintf(errfd, "wait for '%s': %s\n", path, strerror(errno));
                        return -1;
                }
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                dprintf(errfd, "%s exited with status %d\n", argv[0], WEXITSTATUS(status));
        else
                dprintf(errfd, "%s was killed by signal %d\n", argv[0], WTERMSIG(status));
        return -1;
}

struct helper_plan {
        const char *uid_tool, *gid_tool;
        char **uid_argv, **gid_argv;
        const char *user;
};

/* The helper child waits until the parent has unshared, then maps the parent's ids: the
 * tools are setuid root and check /etc/subuid and /etc/subgid themselves. They write
 * different files, so they run at once: every kiln command that uses the store waits for
 * them. */
__attribute__((noreturn)) static void helper_main(const struct helper_plan *p, int go_fd, int errfd)
{
        pid_t upid, gpid;
        ssize_t r;
        char c;
        int ru, rg;

        do
                r = read(go_fd, &c, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1)
                _exit(2); /* the parent gave up before unsharing */
        upid = start_tool(p->uid_tool, p->uid_argv, errfd);
        gpid = start_tool(p->gid_tool, p->gid_argv, errfd);
        ru = upid < 0 ? -1 : wait_tool(upid, p->uid_tool, p->uid_argv, errfd);
        rg = gpid < 0 ? -1 : wait_tool(gpid, p->gid_tool, p->gid_argv, errfd);
        _exit(ru < 0 || rg < 0 ? 1 : 0);
}

static int wait_helper(pid_t pid, int *ret_status)
{
        while (waitpid(pid, ret_status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return 0;
}

static int unshare_with_helper(const struct helper_plan *p, struct kerr **err)
{
        _cleanup_close_ int go_r = -1, go_w = -1, err_r = -1, err_w = -1;
        struct kbuf out = KBUF_INIT;
        int fds[2], status = 0, en;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return kerr_set(err, errno, KERR_IO, "create a pipe");
        go_r = fds[0];
        go_w = fds[1];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return kerr_set(err, errno, KERR_IO, "create a pipe");
        err_r = fds[0];
        err_w = fds[1];
        pid = fork();
        if (pid < 0)
                return kerr_set(err, errno, KERR_IO, "fork the id mapping helper");
        if (pid == 0) {
                kfs_close(go_w);
                kfs_close(err_r);
                helper_main(p, go_r, err_w);
        }
        kfs_close(TAKE_FD(go_r));
        kfs_close(TAKE_FD(err_w));
        if (unshare(CLONE_NEWUSER) < 0) {
                en = errno;
                kfs_close(TAKE_FD(go_w));
                wait_helper(pid, &status);
                return kerr_set(err, en, KERR_UNSUPPORTED, "create a user namespace");
        }
        en = kfs_write_all(go_w, "1", 1) < 0 ? errno : 0;
        kfs_close(TAKE_FD(go_w));
        /* The helper and the tools hold the write end: end of file means they are done. */
        if (kfs_read_fd(err_r, "the id mapping helper's output", 64 * 1024, &out, NULL) < 0)
                kbuf_truncate(&out, 0);
        if (wait_helper(pid, &status) < 0) {
                kbuf_release(&out);
                return kerr_set(err, errno, KERR_IO, "wait for the id mapping helper");
        }
        if (en || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                struct kbuf why = KBUF_INIT;
                char *save = NULL;

                /* The tools' lines, one after another, as the cause. */
                for (char *l = out.len ? strtok_r(out.data, "\n", &save) : NULL; l;
                     l = strtok_r(NULL, "\n", &save))
                        kbuf_printf(&why, "%s%s", why.len ? "; " : ": ", l);
                kerr_set(err, en, KERR_IO,
                         "map the subordinate ids of '%s' with newuidmap and newgidmap%s", p->user,
                         why.len ? why.data : "");
                kbuf_release(&why);
                kbuf_release(&out);
                return -1;
        }
        kbuf_release(&out);
        return 0;
}

static int write_proc(const char *file, const char *text, bool optional, struct kerr **err)
{
        _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC);

        if (fd < 0 && optional && errno == ENOENT)
                return 0;
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", file);
        if (kfs_write_all(fd, text, strlen(text)) < 0)
                return kerr_set(err, errno, KERR_IO, "write '%s' to '%s'", text, file);
        return 0;
}

/* Without subordinate ids a process may still map its own uid and gid into a namespace it
 * created, as long as it gives up setgroups there first. */
static int unshare_own_ids(uid_t uid, gid_t gid, struct kerr **err)
{
        char line[64];

        if (unshare(CLONE_NEWUSER) < 0)
                return kerr_set(err, errno, KERR_UNSUPPORTED, "create a user namespace");
        /* Kernels before 3.19 have no setgroups file and no such rule. */
        if (write_proc("/proc/self/setgroups", "deny", true, err) < 0)
                return -1;
        snprintf(line, sizeof(line), "0 %lu 1", (unsigned long)uid);
        if (write_proc("/proc/self/uid_map", line, false, err) < 0)
                return -1;
        snprintf(line, sizeof(line), "0 %lu 1", (unsigned long)gid);
        return write_proc("/proc/self/gid_map", line, false, err);
}

int sandbox_userns_enter(struct sandbox_userns *ret, struct kerr **err)
{
        uid_t uid = geteuid();
        gid_t gid = getegid();
        _cleanup_free_ struct sandbox_idrange *ur = NULL, *gr = NULL;
        _cleanup_free_ char *login = NULL, *uid_tool = NULL, *gid_tool = NULL;
        _cleanup_(strv_freep) char **uid_argv = NULL, **gid_argv = NULL;
        size_t nu = 0, ng = 0;
        unsigned long n_uids = 1, n_gids = 1;
        char idstr[32];
        const char *user;
        struct passwd *pw;
        bool single;

        if (uid == 0)
                return 0;
        pw = getpwuid(uid);
        if (pw && pw->pw_name)
                login = kstrdup(pw->pw_name);
        snprintf(idstr, sizeof(idstr), "%lu", (unsigned long)uid);
        user = login ? login : idstr;
        if (sandbox_subid_ranges(SUBUID_FILE, login, uid, &ur, &nu, err) < 0 ||
            sandbox_subid_ranges(SUBGID_FILE, login, uid, &gr, &ng, err) < 0)
                return -1;
        if (nu && ng) {
                uid_tool = sbx_find_program("newuidmap");
                gid_tool = sbx_find_program("newgidmap");
        }
        single = !uid_tool || !gid_tool;
        if (single) {
                if (unshare_own_ids(uid, gid, err) < 0)
                        return -1;
        } else {
                struct helper_plan plan;

                uid_argv = map_argv("newuidmap", getpid(), uid, ur, nu, &n_uids);
                gid_argv = map_argv("newgidmap", getpid(), gid, gr, ng, &n_gids);
                plan = (struct helper_plan){uid_tool, gid_tool, uid_argv, gid_argv, user};
                if (unshare_with_helper(&plan, err) < 0)
                        return -1;
                /* Drop the supplementary groups of the outside: they are unmapped here. */
                if (setgroups(0, NULL) < 0)
                        return kerr_set(err, errno, KERR_IO, "drop supplementary groups");
        }
        if (setresgid(0, 0, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "become gid 0 in the user namespace");
        if (setresuid(0, 0, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "become uid 0 in the user namespace");
        ret->n_uids = n_uids;
        ret->n_gids = n_gids;
        if (!single) {
                ret->warning = NULL;
                ret->hint = kstrfmt("it maps uids 0-%lu and gids 0-%lu; add subordinate ids for %s "
                                    "to /etc/subuid and /etc/subgid with usermod --add-subuids and "
                                    "--add-subgids",
                                    n_uids - 1, n_gids - 1, user);
        } else if (nu && ng) {
                ret->warning = kstrfmt("newuidmap and newgidmap (Debian package uidmap) are not "
                                       "in PATH: only your own uid and gid are mapped (as 0) in "
                                       "kiln's user namespace, so images can hold only files owned "
                                       "by 0; install them to use the subordinate ids of %s",
                                       user);
                ret->hint =
                        kstrfmt("install newuidmap and newgidmap (Debian package uidmap) to map "
                                "the subordinate ids of %s",
                                user);
        } else {
                ret->warning = kstrfmt("no subordinate ids for %s in /etc/subuid and /etc/subgid: "
                                       "only your own uid and gid are mapped (as 0) in kiln's user "
                                       "namespace, so images can hold only files owned by 0; add "
                                       "ranges with 'usermod " EXAMPLE_RANGES " %s'",
                                       user, user);
                ret->hint = kstrfmt("add subordinate ids for %s to /etc/subuid and /etc/subgid: "
                                    "usermod " EXAMPLE_RANGES " %s",
                                    user, user);
        }
        return 1;
}
