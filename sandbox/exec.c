/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/banned.h"

/* What docker and BuildKit put in PATH when the image's environment has none. */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const char *sbx_env_get(const char *const *env, const char *key)
{
        size_t n = strlen(key);

        for (const char *const *p = env; p && *p; p++)
                if (strncmp(*p, key, n) == 0 && (*p)[n] == '=')
                        return *p + n + 1;
        return NULL;
}

/* The environment as given, with HOME from passwd when it has none (as runc does). */
static char **build_env(const struct sandbox_spec *s, const struct sbx_user *u)
{
        size_t n = 0;
        char **v;

        for (const char *const *p = s->env; p && *p; p++)
                n++;
        v = kcalloc(n + 2, sizeof(*v));
        for (size_t i = 0; i < n; i++)
                v[i] = (char *)s->env[i];
        if (!sbx_env_get(s->env, "HOME")) {
                struct kbuf b = KBUF_INIT;

                kbuf_printf(&b, "HOME=%s", u->home ? u->home : "/");
                v[n] = kbuf_detach(&b); /* freed by the exec */
        }
        return v;
}

/* Go's exec.LookPath, which runc uses: the first PATH entry holding a file with an execute
 * bit; relative entries are skipped. */
static int lookup(const char *name, const char *path, char **ret, struct kerr **err)
{
        _cleanup_free_ char *copy = NULL;
        char *dir, *rest;

        if (strchr(name, '/')) {
                *ret = kstrdup(name);
                return 0;
        }
        if (!*name)
                return kerr_set(err, 0, KERR_NOTFOUND, "executable file '' not found in $PATH");
        copy = kstrdup(path);
        for (dir = copy; dir; dir = rest) {
                struct kbuf b = KBUF_INIT;
                struct stat st;

                rest = strchr(dir, ':');
                if (rest)
                        *rest++ = '\0';
                if (dir[0] != '/')
                        continue;
                kbuf_printf(&b, "%s/%s", dir, name);
                if (stat(b.data, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111)) {
                        *ret = kbuf_detach(&b);
                        return 0;
                }
                kbuf_release(&b);
        }
        return kerr_set(err, 0, KERR_NOTFOUND, "executable file '%s' not found in $PATH", name);
}

/* fds 0-2 from the spec (or /dev/null), copied out of the way first so that any of them
 * may already be 0, 1 or 2. */
static int setup_stdio(const struct sandbox_spec *s, struct kerr **err)
{
        int src[3] = {s->stdin_fd, s->stdout_fd, s->stderr_fd}, tmp[3];
        int devnull = -1;

        for (int i = 0; i < 3; i++) {
                if (src[i] < 0) {
                        if (devnull < 0)
                                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                        if (devnull < 0)
                                return kerr_set(err, errno, KERR_IO, "open /dev/null");
                        src[i] = devnull;
                }
                tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
                if (tmp[i] < 0)
                        return kerr_set(err, errno, KERR_IO, "duplicate the standard stream fd %d",
                                        src[i]);
        }
        /* These three are meant to cross the exec: no O_CLOEXEC. */
        for (int i = 0; i < 3; i++)
                if (dup3(tmp[i], i, 0) < 0)
                        return kerr_set(err, errno, KERR_IO, "set up fd %d", i);
        return 0;
}

static void close_loop(unsigned from, unsigned to, int keep)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
                rl.rlim_cur = 65536;
        for (unsigned fd = from; fd <= to && fd < rl.rlim_cur; fd++)
                if ((int)fd != keep)
                        close((int)fd);
}

/* Every fd above 2 but keep (close-on-exec, for an exec error). */
static void close_fds(int keep)
{
        if (keep > 3 && close_range(3, (unsigned)keep - 1, 0) < 0)
                close_loop(3, (unsigned)keep - 1, keep);
        if (close_range((unsigned)keep + 1, ~0U, 0) < 0)
                close_loop((unsigned)keep + 1, ~0U, keep);
}

int sbx_exec(const struct sandbox_spec *s, const struct sbx_user *u, void *seccomp, int chan,
             struct kerr **err)
{
        char **env = build_env(s, u);
        const char *path_env = sbx_env_get((const char *const *)env, "PATH");
        _cleanup_free_ char *path = NULL;
        int en;

        if (lookup(s->argv[0], path_env ? path_env : DEFAULT_PATH, &path, err) < 0)
                return -1;
        if (setup_stdio(s, err) < 0)
                return -1;
        close_fds(chan);
        if (sbx_chan_send_exec(chan) < 0)
                return kerr_set(err, errno, KERR_IO, "report the exec");
        /* Last, so that nothing of the setup runs under the filter. */
        if (seccomp && sbx_seccomp_load(seccomp, err) < 0)
                return -1;
        execve(path, (char *const *)s->argv, env);
        en = errno;
        if (en == ENOENT)
                return kerr_set(err, en, KERR_NOTFOUND, "exec '%s'", path);
        if (en == EACCES || en == ENOEXEC || en == EISDIR || en == ETXTBSY || en == ENOTDIR)
                return kerr_set(err, en, KERR_INVALID, "exec '%s'", path);
        return kerr_set(err, en, KERR_IO, "exec '%s'", path);
}
