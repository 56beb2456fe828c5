/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox_run() against real containers: a tiny image of Debian's busybox-static and the
 * static tests/helpers/kiln-probe, everything asserted inside the container from what it
 * prints, or from the host afterwards. As root the sandbox runs as real root; as anyone
 * else this program first enters kiln's user namespace (tests/integration/020-sandbox.sh
 * runs it so as the test user kilntest). */

#include "sandbox/sandbox.h"
#include "sandbox/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "tap.h"

#define BUSYBOX "/bin/busybox"

static const char *const applets[] = {
        "sh",   "ls",    "ps",    "cat",      "id",   "hostname", "mount", "ip",   "echo",
        "true", "false", "sleep", "grep",     "test", "touch",    "mkdir", "pwd",  "unshare",
        "wc",   "env",   "stat",  "readlink", "rm",   "head",     "tr",    "sort", NULL,
};

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
                             "bob:x:1001:1001::/home/bob:/bin/sh\n";
static const char group[] = "root:x:0:\n"
                            "wheel:x:10:root,alice\n"
                            "audio:x:29:alice\n"
                            "alice:x:1000:\n"
                            "bob:x:1001:\n";

static struct {
        bool done;
        const char *skip;
        bool userns; /* uid 0 in kiln's user namespace */
        char *dir;
        char *base; /* bin (busybox, probe), etc (passwd, group), home, root */
        char *bare; /* bin only: no etc, dev, proc, sys, tmp */
        unsigned long n;
        char mark[64]; /* in every run's environment, to find its processes from here */
        char *mounts;  /* the host's mount table before the first run */
} fx;

static bool write_file(const char *path, const char *data, size_t len, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        bool ok = fd >= 0 && kfs_write_all(fd, data, len) == 0 && fchmod(fd, mode) == 0;

        if (fd >= 0)
                kfs_close(fd);
        return ok;
}

static bool copy_file(const char *src, const char *dst, mode_t mode)
{
        struct kbuf b = KBUF_INIT;
        bool ok = kfs_read_file(AT_FDCWD, src, 0, &b, NULL) == 0 &&
                  write_file(dst, b.data, b.len, mode);

        kbuf_release(&b);
        return ok;
}

static void rm_rf(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;

        if (!d) {
                unlink(path);
                return;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                p = kstrfmt("%s/%s", path, de->d_name);
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        rm_rf(p);
                else
                        unlink(p);
        }
        closedir(d);
        rmdir(path);
}

/* The entries below dir, recursively, sorted, one relative path per line. */
static void list_into(const char *dir, const char *prefix, struct kbuf *out)
{
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, alphasort);

        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;

                if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
                        _cleanup_free_ char *p = kstrfmt("%s/%s", dir, name);
                        _cleanup_free_ char *rel = kstrfmt("%s%s", prefix, name);
                        struct stat st;

                        kbuf_printf(out, "%s\n", rel);
                        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                                _cleanup_free_ char *sub = kstrfmt("%s/", rel);

                                list_into(p, sub, out);
                        }
                }
                free(names[i]);
        }
        free(names);
}

static char *list_tree(const char *dir)
{
        struct kbuf b = KBUF_INIT;

        list_into(dir, "", &b);
        return kbuf_detach(&b);
}

static bool make_bin(const char *root, bool probe)
{
        _cleanup_free_ char *bin = kstrfmt("%s/bin", root), *bb = kstrfmt("%s/busybox", bin);
        const char *probe_src = getenv("KILN_PROBE");

        if (mkdir(root, 0755) < 0 || mkdir(bin, 0755) < 0 || !copy_file(BUSYBOX, bb, 0755))
                return false;
        for (const char *const *a = applets; *a; a++) {
                _cleanup_free_ char *l = kstrfmt("%s/%s", bin, *a);

                if (symlink("busybox", l) < 0)
                        return false;
        }
        if (probe) {
                _cleanup_free_ char *p = kstrfmt("%s/kiln-probe", bin);
                _cleanup_free_ char *g = kstrfmt("%s/garbage", bin),
                                    *ne = kstrfmt("%s/noexec", bin);

                if (!probe_src || !copy_file(probe_src, p, 0755) ||
                    !write_file(g,
                                "\x7f"
                                "ELF junk",
                                8, 0755) ||
                    !write_file(ne, "#!/bin/sh\necho hi\n", 18, 0644))
                        return false;
        }
        return true;
}

static bool make_base(const char *root)
{
        _cleanup_free_ char *etc = kstrfmt("%s/etc", root), *home = kstrfmt("%s/home", root);
        _cleanup_free_ char *alice = kstrfmt("%s/home/alice", root), *rt = kstrfmt("%s/root", root);
        _cleanup_free_ char *pw = kstrfmt("%s/passwd", etc), *gr = kstrfmt("%s/group", etc);

        return make_bin(root, true) && mkdir(etc, 0755) == 0 &&
               write_file(pw, passwd, strlen(passwd), 0644) &&
               write_file(gr, group, strlen(group), 0644) && mkdir(home, 0755) == 0 &&
               mkdir(alice, 0755) == 0 && chown(alice, 1000, 1000) == 0 && mkdir(rt, 0700) == 0;
}

/* Once: the user namespace when not root, and the two images. */
static bool setup(void)
{
        static char reason[256];

        if (fx.done)
                return !fx.skip;
        fx.done = true;
        if (access(BUSYBOX, X_OK) < 0) {
                fx.skip = BUSYBOX " is missing (Debian package busybox-static)";
                return false;
        }
        if (!getenv("KILN_PROBE") || access(getenv("KILN_PROBE"), X_OK) < 0) {
                fx.skip = "KILN_PROBE does not name the static tests/helpers/kiln-probe";
                return false;
        }
        if (geteuid() != 0) {
                struct sandbox_userns ns = {0};
                struct kerr *err = NULL;

                if (sandbox_userns_enter(&ns, &err) < 0) {
                        _cleanup_free_ char *m = kerr_format(err);

                        snprintf(reason, sizeof(reason), "cannot enter a user namespace: %s", m);
                        kerr_free(err);
                        fx.skip = reason;
                        return false;
                }
                if (ns.n_uids < 4243 || ns.n_gids < 4243) {
                        snprintf(reason, sizeof(reason),
                                 "kiln's user namespace maps only %lu uids (subordinate ids "
                                 "are needed)",
                                 ns.n_uids);
                        fx.skip = reason;
                        sandbox_userns_release(&ns);
                        return false;
                }
                sandbox_userns_release(&ns);
        }
        fx.userns = sbx_in_user_namespace();
        fx.dir = strdup("/tmp/kiln-test-sandbox-XXXXXX");
        if (!fx.dir || !mkdtemp(fx.dir) || chmod(fx.dir, 0755) < 0) {
                fx.skip = "cannot create a temporary directory";
                return false;
        }
        fx.base = kstrfmt("%s/base", fx.dir);
        fx.bare = kstrfmt("%s/bare", fx.dir);
        if (!make_base(fx.base) || !make_bin(fx.bare, false)) {
                fx.skip = "cannot build the test images";
                return false;
        }
        snprintf(fx.mark, sizeof(fx.mark), "KILN_SBX_MARK=%ld", (long)getpid());
        {
                struct kbuf b = KBUF_INIT;

                if (kfs_read_file(AT_FDCWD, "/proc/self/mountinfo", 0, &b, NULL) == 0)
                        fx.mounts = kbuf_detach(&b);
        }
        return true;
}

__attribute__((destructor)) static void teardown(void)
{
        if (fx.dir)
                rm_rf(fx.dir);
        free(fx.dir);
        free(fx.base);
        free(fx.bare);
        free(fx.mounts);
}

#define SETUP()                                                                                    \
        do {                                                                                       \
                if (!setup())                                                                      \
                        SKIP(fx.skip);                                                             \
        } while (0)

/* One run, its inputs defaulted: the base image, PATH=/bin, output captured. */
struct t_run {
        const char *const *argv;
        const char *const *lowers;
        size_t n_lowers;
        bool no_lowers;         /* the upper dir alone (filled from fill_upper) is the root */
        const char *fill_upper; /* "bare" */
        const char *const *env;
        const char *user, *cwd, *hostname, *seccomp;
        const char *const *cap_add, *const *cap_drop;
        enum sandbox_net net;
        bool read_only;
        const struct sandbox_mount *mounts;
        size_t n_mounts;
        unsigned long pids_max;

        int rc;
        struct kerr *err;
        struct sandbox_result res;
        char *out; /* stdout and stderr */
        char *upper, *etc_dir;
        double seconds;
};

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void t_exec(struct t_run *t)
{
        _cleanup_free_ char *rundir = kstrfmt("%s/run-%lu", fx.dir, ++fx.n);
        _cleanup_free_ char *work = kstrfmt("%s/work", rundir);
        const char *base_lowers[] = {fx.base};
        const char *env[32];
        struct sandbox_spec s = {0};
        struct kbuf out = KBUF_INIT;
        size_t n = 0;
        int fd;
        double t0;

        t->upper = kstrfmt("%s/upper", rundir);
        t->etc_dir = kstrfmt("%s/etc", rundir);
        if (mkdir(rundir, 0755) < 0 || mkdir(work, 0755) < 0 ||
            (t->fill_upper ? !make_bin(t->upper, false) : mkdir(t->upper, 0755) < 0))
                abort();
        for (const char *const *e = t->env; e && *e && n < 30; e++)
                env[n++] = *e;
        if (!t->env)
                env[n++] = "PATH=/bin";
        env[n++] = fx.mark;
        env[n] = NULL;
        s.lowers = t->lowers ? t->lowers : base_lowers;
        s.n_lowers = t->no_lowers ? 0 : t->lowers ? t->n_lowers : 1;
        s.upper = t->upper;
        s.work = work;
        s.read_only = t->read_only;
        s.argv = t->argv;
        s.env = env;
        s.cwd = t->cwd;
        s.user = t->user;
        s.hostname = t->hostname;
        s.net = t->net;
        s.pids_max = t->pids_max;
        s.cap_add = t->cap_add;
        s.cap_drop = t->cap_drop;
        s.seccomp = t->seccomp;
        s.mounts = t->mounts;
        s.n_mounts = t->n_mounts;
        s.etc_dir = t->etc_dir;
        fd = memfd_create("kiln-test-out", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        s.stdin_fd = -1;
        s.stdout_fd = s.stderr_fd = fd;
        t0 = now();
        t->rc = sandbox_run(&s, &t->res, &t->err);
        t->seconds = now() - t0;
        lseek(fd, 0, SEEK_SET);
        if (kfs_read_fd(fd, "output", 0, &out, NULL) < 0)
                abort();
        kfs_close(fd);
        t->out = kbuf_detach(&out);
        if (t->rc < 0 || t->res.signaled || t->res.status != 0) {
                _cleanup_free_ char *m = t->err ? kerr_format(t->err) : NULL;

                printf("# run %lu: rc %d, %s %d, error: %s\n", fx.n, t->rc,
                       t->res.signaled ? "signal" : "status", t->res.status, m ? m : "-");
                for (const char *p = t->out; *p;) {
                        size_t len = strcspn(p, "\n");

                        printf("#   | %.*s\n", (int)len, p);
                        p += len + (p[len] == '\n');
                }
        }
}

static void t_free(struct t_run *t)
{
        kerr_free(t->err);
        free(t->out);
        free(t->upper);
        free(t->etc_dir);
}

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

#define CHECK_HAS(hay, needle)                                                                     \
        ({                                                                                         \
                const char *_h = (hay), *_n = (needle);                                            \
                tap_check(_h &&strstr(_h, _n), __FILE__, __LINE__, "'%s' in '%s'", _n,             \
                          _h ? _h : "(null)");                                                     \
        })
#define CHECK_LACKS(hay, needle)                                                                   \
        ({                                                                                         \
                const char *_h = (hay), *_n = (needle);                                            \
                tap_check(_h && !strstr(_h, _n), __FILE__, __LINE__, "no '%s' in '%s'", _n,        \
                          _h ? _h : "(null)");                                                     \
        })

static bool ran_ok(const struct t_run *t)
{
        return t->rc == 0 && !t->res.signaled && t->res.status == 0;
}

/* The value of "Key:\t..." in a /proc status text, white space trimmed. */
static char *status_field(const char *text, const char *key)
{
        size_t k = strlen(key);

        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                if (strncmp(p, key, k) == 0 && p[k] == ':') {
                        const char *v = p + k + 1, *end;

                        while (*v == ' ' || *v == '\t')
                                v++;
                        end = strchrnul(v, '\n');
                        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                                end--;
                        return kstrndup(v, (size_t)(end - v));
                }
        }
        return kstrdup("(missing)");
}

/* Host processes whose environment holds fx.mark: a run's, if any survived it. */
static int survivors(void)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                struct kbuf env = KBUF_INIT;

                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                p = kstrfmt("/proc/%s/environ", de->d_name);
                if (kfs_read_file(AT_FDCWD, p, 0, &env, NULL) == 0)
                        for (size_t off = 0; off < env.len; off += strlen(env.data + off) + 1)
                                if (strcmp(env.data + off, fx.mark) == 0)
                                        n++;
                kbuf_release(&env);
        }
        closedir(d);
        return n;
}

/* ---- the process and its status ---- */

TEST(run_reports_exit_status_and_output)
{
        struct t_run t = {.argv = ARGV("sh", "-c", "echo hello; echo err >&2; exit 3")};

        SETUP();
        t_exec(&t);
        CHECK_INTEQ(t.rc, 0);
        CHECK(!t.res.signaled);
        CHECK_INTEQ(t.res.status, 3);
        CHECK_STREQ(t.out, "hello\nerr\n");
        t_free(&t);
}

TEST(run_reports_death_by_signal)
{
        struct t_run t = {.argv = ARGV("kiln-probe", "segv")};

        SETUP();
        t_exec(&t);
        CHECK_INTEQ(t.rc, 0);
        CHECK(t.res.signaled);
        CHECK_INTEQ(t.res.status, SIGSEGV);
        t_free(&t);
}

TEST(run_command_errors_are_precise)
{
        struct t_run nf = {.argv = ARGV("no-such-command")};
        struct t_run abs = {.argv = ARGV("/bin/no-such-command")};
        struct t_run noexec = {.argv = ARGV("/bin/noexec")};
        struct t_run garbage = {.argv = ARGV("/bin/garbage")};
        struct t_run nopath = {.argv = ARGV("true"), .env = ARGV("PATH=/nonexistent")};
        struct t_run path = {.argv = ARGV("true"), .env = ARGV("PATH=/nonexistent:/bin")};

        SETUP();
        CASE("not in PATH");
        t_exec(&nf);
        CHECK(nf.rc < 0 && nf.err && nf.err->code == KERR_NOTFOUND);
        CHECK_STREQ(nf.err ? nf.err->msg : NULL,
                    "executable file 'no-such-command' not found in $PATH");
        CASE("a path that does not exist");
        t_exec(&abs);
        CHECK(abs.rc < 0 && abs.err && abs.err->code == KERR_NOTFOUND && abs.err->errnum == ENOENT);
        CASE("a file without execute permission");
        t_exec(&noexec);
        CHECK(noexec.rc < 0 && noexec.err && noexec.err->code == KERR_INVALID &&
              noexec.err->errnum == EACCES);
        CASE("an executable that is no program");
        t_exec(&garbage);
        CHECK(garbage.rc < 0 && garbage.err && garbage.err->code == KERR_INVALID &&
              garbage.err->errnum == ENOEXEC);
        CASE("PATH comes from the environment given");
        t_exec(&nopath);
        CHECK(nopath.rc < 0 && nopath.err && nopath.err->code == KERR_NOTFOUND);
        t_exec(&path);
        CHECK(ran_ok(&path));
        t_free(&nf);
        t_free(&abs);
        t_free(&noexec);
        t_free(&garbage);
        t_free(&nopath);
        t_free(&path);
}

TEST(run_rejects_a_bad_spec)
{
        struct sandbox_spec s = {0};
        struct sandbox_result r;
        struct kerr *err = NULL;

        CHECK(sandbox_run(&s, &r, &err) < 0 && err && err->code == KERR_INVALID);
        kerr_free(err);
        err = NULL;
        s.argv = ARGV("true");
        s.upper = "/tmp";
        s.etc_dir = "/tmp";
        s.cwd = "relative";
        CHECK(sandbox_run(&s, &r, &err) < 0 && err && err->code == KERR_INVALID);
        kerr_free(err);
}

TEST(run_closes_every_other_fd_and_reads_dev_null)
{
        struct t_run t = {.argv = ARGV("sh", "-c", "kiln-probe fds; cat; echo eof")};
        int leak = open("/dev/null", O_RDONLY | O_CLOEXEC);

        SETUP();
        /* An fd the caller forgot to make close-on-exec must not reach the command. */
        CHECK(leak >= 0 && fcntl(leak, F_SETFD, 0) == 0);
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "0 1 2\neof\n");
        kfs_close(leak);
        t_free(&t);
}

/* The caller's own 1 and 2, crossed: the copies must not step on each other. */
TEST(run_takes_standard_streams_from_any_fds)
{
        int a = memfd_create("kiln-test-a", MFD_CLOEXEC),
            b = memfd_create("kiln-test-b", MFD_CLOEXEC);
        struct kbuf out_a = KBUF_INIT, out_b = KBUF_INIT;
        int status = -1;
        pid_t pid;

        SETUP();
        CHECK(a >= 0 && b >= 0);
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                _cleanup_free_ char *rundir = kstrfmt("%s/swap", fx.dir);
                _cleanup_free_ char *upper = kstrfmt("%s/upper", rundir),
                                    *work = kstrfmt("%s/work", rundir);
                _cleanup_free_ char *etc = kstrfmt("%s/etc", rundir);
                const char *lowers[] = {fx.base};
                const char *env[] = {"PATH=/bin", fx.mark, NULL};
                struct sandbox_spec s = {.lowers = lowers,
                                         .n_lowers = 1,
                                         .upper = upper,
                                         .work = work,
                                         .etc_dir = etc,
                                         .env = env,
                                         .argv = ARGV("sh", "-c", "echo out; echo err >&2"),
                                         .stdin_fd = -1,
                                         .stdout_fd = 2,
                                         .stderr_fd = 1};
                struct sandbox_result r;

                if (dup3(a, 1, 0) < 0 || dup3(b, 2, 0) < 0 || mkdir(rundir, 0755) < 0 ||
                    mkdir(upper, 0755) < 0 || mkdir(work, 0755) < 0)
                        _exit(2);
                _exit(sandbox_run(&s, &r, NULL) == 0 && !r.signaled && r.status == 0 ? 0 : 1);
        }
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        lseek(a, 0, SEEK_SET);
        lseek(b, 0, SEEK_SET);
        CHECK(kfs_read_fd(a, "a", 0, &out_a, NULL) == 0 &&
              kfs_read_fd(b, "b", 0, &out_b, NULL) == 0);
        CHECK_STREQ(out_a.data ? out_a.data : "", "err\n");
        CHECK_STREQ(out_b.data ? out_b.data : "", "out\n");
        kbuf_release(&out_a);
        kbuf_release(&out_b);
        kfs_close(a);
        kfs_close(b);
}

/* ---- namespaces ---- */

TEST(run_hides_the_host)
{
        _cleanup_free_ char *marker = NULL, *script = NULL;
        struct t_run t = {0};

        SETUP();
        marker = kstrfmt("%s/host-marker", fx.dir);
        CHECK(write_file(marker, "x", 1, 0644));
        script = kstrfmt("ls /; test -e /home/kilntest || echo no-kilntest; "
                         "test -e /root/.bashrc || echo no-bashrc; test -e %s || echo no-marker; "
                         "test -e /work || echo no-work",
                         marker);
        t.argv = ARGV("sh", "-c", script);
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "bin\ndev\netc\nhome\nproc\nroot\nsys\n"
                           "no-kilntest\nno-bashrc\nno-marker\nno-work\n");
        t_free(&t);
}

TEST(run_has_its_own_pids)
{
        struct t_run t = {.argv = ARGV("sh", "-c", "echo pid $$; ps -o pid,comm; echo done")};

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_HAS(t.out, "pid 1\n");
        /* A header, the shell (PID 1) and ps itself: nothing of the host. */
        {
                int lines = 0;

                for (const char *p = t.out; p && (p = strchr(p, '\n')); p++)
                        lines++;
                CHECK_INTEQ(lines, 5);
        }
        CHECK_HAS(t.out, "PID   COMMAND\n    1 sh\n");
        CHECK_HAS(t.out, " ps\ndone\n");
        t_free(&t);
}

TEST(run_has_its_own_hostname)
{
        struct t_run def = {.argv = ARGV("hostname")};
        struct t_run named = {
                .argv = ARGV("sh", "-c", "hostname; cat /etc/hostname; grep kiln-box /etc/hosts"),
                .hostname = "kiln-box"};
        char host[256] = {0};

        SETUP();
        gethostname(host, sizeof(host) - 1);
        t_exec(&def);
        CHECK(ran_ok(&def));
        CHECK(def.out && strlen(def.out) == 13 && strspn(def.out, "0123456789abcdef") == 12);
        CHECK(def.out && strncmp(def.out, host, strlen(host)) != 0);
        t_exec(&named);
        CHECK(ran_ok(&named));
        CHECK_STREQ(named.out, "kiln-box\nkiln-box\n127.0.1.1\tkiln-box\n");
        t_free(&def);
        t_free(&named);
}

TEST(run_network_none_has_only_lo)
{
        struct t_run none = {.argv = ARGV("sh", "-c", "ls /sys/class/net; ip link show lo"),
                             .net = SANDBOX_NET_NONE};
        struct t_run host = {.argv = ARGV("ls", "/sys/class/net")};
        _cleanup_free_ char *want = NULL;
        struct kbuf b = KBUF_INIT;
        struct dirent **names = NULL;
        int n;

        SETUP();
        t_exec(&none);
        CHECK(ran_ok(&none));
        CHECK(none.out && strncmp(none.out, "lo\n", 3) == 0);
        CHECK_HAS(none.out, "LOOPBACK,UP");
        CHECK_LACKS(none.out, "eth");
        /* With the host's network the container sees the host's interfaces. */
        n = scandir("/sys/class/net", &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.')
                        kbuf_printf(&b, "%s\n", names[i]->d_name);
                free(names[i]);
        }
        free(names);
        want = kbuf_detach(&b);
        t_exec(&host);
        CHECK(ran_ok(&host));
        CHECK_STREQ(host.out, want);
        t_free(&none);
        t_free(&host);
}

/* ---- file systems ---- */

/* docker's read-only and masked paths; those this kernel lacks are left out. */
TEST(run_proc_and_sys_are_protected)
{
        static const char *const ro[] = {
                "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/sys"};
        static const char *const masked_files[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                                   "/proc/interrupts"};
        static const char *const masked_dirs[] = {"/proc/acpi", "/sys/firmware"};
        struct kbuf script = KBUF_INIT, want = KBUF_INIT;
        struct t_run t = {0};
        _cleanup_free_ char *sh = NULL, *w = NULL;

        SETUP();
        kbuf_puts(&script, "kiln-probe ro /proc /dev");
        kbuf_puts(&want, "/proc rw\n/dev rw\n");
        for (size_t i = 0; i < ARRAY_SIZE(ro); i++) {
                if (access(ro[i], F_OK) < 0)
                        continue;
                kbuf_printf(&script, " %s", ro[i]);
                kbuf_printf(&want, "%s ro\n", ro[i]);
        }
        kbuf_puts(&script, "; kiln-probe write /proc/sys/kernel/hostname | grep -v ok; "
                           "grep -q Linux /proc/version && echo version-shown");
        kbuf_puts(&want, "version-shown\n");
        for (size_t i = 0; i < ARRAY_SIZE(masked_files); i++) {
                if (access(masked_files[i], F_OK) < 0)
                        continue;
                kbuf_printf(&script, "; echo %s $(wc -c <%s)", masked_files[i], masked_files[i]);
                kbuf_printf(&want, "%s 0\n", masked_files[i]);
        }
        for (size_t i = 0; i < ARRAY_SIZE(masked_dirs); i++) {
                if (access(masked_dirs[i], F_OK) < 0)
                        continue;
                kbuf_printf(&script, "; echo %s $(ls %s | wc -l)", masked_dirs[i], masked_dirs[i]);
                kbuf_printf(&want, "%s 0\n", masked_dirs[i]);
        }
        sh = kbuf_detach(&script);
        w = kbuf_detach(&want);
        t.argv = ARGV("sh", "-c", sh);
        t_exec(&t);
        CHECK(ran_ok(&t));
        /* The write fails, as EROFS or, for a root the host does not map, EACCES. */
        CHECK(t.out && (strstr(t.out, "EROFS\n") || strstr(t.out, "EACCES\n")));
        if (t.out) {
                char *p = strstr(t.out, "EROFS\n");

                if (!p)
                        p = strstr(t.out, "EACCES\n");
                if (p)
                        memmove(p, strchr(p, '\n') + 1, strlen(strchr(p, '\n') + 1) + 1);
        }
        CHECK_STREQ(t.out, w);
        t_free(&t);
}

TEST(run_dev_is_minimal)
{
        struct t_run t = {
                .argv = ARGV("sh", "-c",
                             "ls /dev; readlink /dev/ptmx; readlink /dev/fd; ls /dev/pts; "
                             "echo x >/dev/null && echo null-ok; "
                             "head -c 4 /dev/urandom | wc -c; echo s >/dev/shm/s && "
                             "cat /dev/shm/s")};

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "fd\nfull\nmqueue\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\n"
                           "tty\nurandom\nzero\npts/ptmx\n/proc/self/fd\nptmx\nnull-ok\n4\ns\n");
        t_free(&t);
}

TEST(run_writes_land_in_the_upper_dir_only)
{
        struct t_run t = {.argv = ARGV("sh", "-c",
                                       "echo x >/newfile; mkdir -p /etc/app; echo y "
                                       ">/etc/app/conf; rm /bin/false")};
        _cleanup_free_ char *lower = NULL, *lower_after = NULL, *upper = NULL, *etc = NULL;
        struct kbuf b = KBUF_INIT;
        struct stat st;

        SETUP();
        lower = list_tree(fx.base);
        t_exec(&t);
        CHECK(ran_ok(&t));
        upper = list_tree(t.upper);
        /* The writes, the deletion as a whiteout, and none of the sandbox's mount points. */
        CHECK_STREQ(upper, "bin\nbin/false\netc\netc/app\netc/app/conf\nnewfile\n");
        {
                _cleanup_free_ char *wh = kstrfmt("%s/bin/false", t.upper);

                CHECK(lstat(wh, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0);
        }
        {
                _cleanup_free_ char *nf = kstrfmt("%s/newfile", t.upper);

                CHECK(kfs_read_file(AT_FDCWD, nf, 0, &b, NULL) == 0);
                CHECK_STREQ(b.data, "x\n");
                kbuf_release(&b);
        }
        lower_after = list_tree(fx.base);
        CHECK_STREQ(lower_after, lower);
        etc = list_tree(t.etc_dir);
        CHECK_STREQ(etc, "hostname\nhosts\nresolv.conf\n");
        CHECK(access("/newfile", F_OK) < 0);
        t_free(&t);
}

TEST(run_leaves_no_mount_points_in_the_upper_dir)
{
        const char *bare[1];
        struct t_run in_bare = {.argv = ARGV("true"), .n_lowers = 1};
        struct t_run in_base = {.argv = ARGV("true")};
        struct t_run no_lowers = {.argv = ARGV("true"), .no_lowers = true, .fill_upper = "bare"};
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        SETUP();
        bare[0] = fx.bare;
        in_bare.lowers = bare;
        CASE("an image without /etc, /dev, /proc, /sys, /tmp");
        t_exec(&in_bare);
        CHECK(ran_ok(&in_bare));
        a = list_tree(in_bare.upper);
        CHECK_STREQ(a, "");
        CASE("an image with /etc but no /etc/hosts");
        t_exec(&in_base);
        CHECK(ran_ok(&in_base));
        b = list_tree(in_base.upper);
        CHECK_STREQ(b, "");
        CASE("the upper dir as the root");
        t_exec(&no_lowers);
        CHECK(ran_ok(&no_lowers));
        c = list_tree(no_lowers.upper);
        CHECK(c && strncmp(c, "bin\nbin/busybox\n", 16) == 0);
        CHECK_LACKS(c, "dev");
        CHECK_LACKS(c, "etc");
        CHECK_LACKS(c, "proc");
        CHECK_LACKS(c, "sys");
        t_free(&in_bare);
        t_free(&in_base);
        t_free(&no_lowers);
}

TEST(run_extra_mounts)
{
        _cleanup_free_ char *share = NULL, *hello = NULL, *created = NULL, *upper = NULL;
        struct sandbox_mount m[4];
        struct t_run t = {.argv = ARGV("sh", "-c",
                                       "cat /data/in/hello; echo w >/data/in/new; "
                                       "(echo x >/data/ro/x) 2>/dev/null || echo ro-refused; "
                                       "echo t >/scratch/t && cat /scratch/t; cat /etc/greeting")};

        SETUP();
        share = kstrfmt("%s/share", fx.dir);
        hello = kstrfmt("%s/hello", share);
        created = kstrfmt("%s/new", share);
        CHECK(mkdir(share, 0755) == 0 && write_file(hello, "hello\n", 6, 0644));
        memset(m, 0, sizeof(m));
        m[0] = (struct sandbox_mount){
                .type = SANDBOX_MOUNT_BIND, .source = share, .target = "/data/in"};
        m[1] = (struct sandbox_mount){.type = SANDBOX_MOUNT_BIND,
                                      .source = share,
                                      .target = "/data/ro",
                                      .readonly = true};
        m[2] = (struct sandbox_mount){
                .type = SANDBOX_MOUNT_TMPFS, .target = "/scratch", .size = 1 << 20};
        m[3] = (struct sandbox_mount){
                .type = SANDBOX_MOUNT_BIND, .source = hello, .target = "/etc/greeting"};
        t.mounts = m;
        t.n_mounts = 4;
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "hello\nro-refused\nt\nhello\n");
        CHECK(access(created, F_OK) == 0);
        upper = list_tree(t.upper);
        CHECK_STREQ(upper, "");
        t_free(&t);
}

/* Two lower dirs in overlay format for the overlay mounts: lower-a at the bottom, lower-b
 * on top of it with a whiteout, an opaque directory and a file that replaces one of a's. */
static bool make_overlay_lowers(char **ret_a, char **ret_b)
{
        _cleanup_free_ char *a = kstrfmt("%s/lower-a", fx.dir), *b = kstrfmt("%s/lower-b", fx.dir);
        static const char *const a_dirs[] = {"d", "d/sub", "o", "etc", NULL};
        static const char *const a_files[][2] = {
                {"d/keep", "a-keep\n"}, {"d/gone", "a-gone\n"},   {"d/sub/deep", "deep\n"},
                {"f", "a-file\n"},      {"o/hidden", "hidden\n"}, {"etc/marker", "tree\n"},
        };
        static const char *const b_files[][2] = {
                {"d/new", "b-new\n"}, {"f", "b-file\n"}, {"o/shown", "shown\n"}};
        const char *opaque = fx.userns ? "user.overlay.opaque" : "trusted.overlay.opaque";
        bool ok = mkdir(a, 0755) == 0 && mkdir(b, 0755) == 0;

        for (const char *const *d = a_dirs; ok && *d; d++) {
                _cleanup_free_ char *p = kstrfmt("%s/%s", a, *d);

                ok = mkdir(p, 0755) == 0;
        }
        for (size_t i = 0; ok && i < ARRAY_SIZE(a_files); i++) {
                _cleanup_free_ char *p = kstrfmt("%s/%s", a, a_files[i][0]);

                ok = write_file(p, a_files[i][1], strlen(a_files[i][1]), 0644);
        }
        {
                /* A link that climbs out of the tree, were it followed on the host. */
                _cleanup_free_ char *l = kstrfmt("%s/out", a);
                _cleanup_free_ char *bd = kstrfmt("%s/d", b), *bo = kstrfmt("%s/o", b);
                _cleanup_free_ char *wh = kstrfmt("%s/d/gone", b);

                ok = ok && symlink("../../../../../../..", l) == 0 && mkdir(bd, 0755) == 0 &&
                     mkdir(bo, 0755) == 0 && setxattr(bo, opaque, "y", 1, 0) == 0 &&
                     mknod(wh, S_IFCHR | 0600, makedev(0, 0)) == 0;
        }
        for (size_t i = 0; ok && i < ARRAY_SIZE(b_files); i++) {
                _cleanup_free_ char *p = kstrfmt("%s/%s", b, b_files[i][0]);

                ok = write_file(p, b_files[i][1], strlen(b_files[i][1]), 0644);
        }
        *ret_a = TAKE_PTR(a);
        *ret_b = TAKE_PTR(b);
        return ok;
}

TEST(run_overlay_mounts)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *a_before = NULL, *b_before = NULL;
        _cleanup_free_ char *rw = NULL, *rw_upper = NULL, *rw_work = NULL;
        const char *both[2], *one[1];
        struct sandbox_mount m[5];
        struct t_run t = {.argv = ARGV("sh", "-c",
                                       "cat /ro/d/keep /ro/f; ls /ro/d; ls /ro/o; "
                                       "test -e /ro/d/gone || echo gone-hidden; "
                                       "touch /ro/x 2>/dev/null || echo ro-refused; "
                                       "ls /sub; cat /inside/marker; cat /file; "
                                       "echo w >/rw/d/keep && rm /rw/f && cat /rw/d/keep && "
                                       "test ! -e /rw/f && echo rw-removed")};

        SETUP();
        CHECK(make_overlay_lowers(&a, &b));
        a_before = list_tree(a);
        b_before = list_tree(b);
        rw = kstrfmt("%s/overlay-rw", fx.dir);
        rw_upper = kstrfmt("%s/upper", rw);
        rw_work = kstrfmt("%s/work", rw);
        CHECK(mkdir(rw, 0755) == 0 && mkdir(rw_upper, 0755) == 0 && mkdir(rw_work, 0700) == 0);
        both[0] = a;
        both[1] = b;
        one[0] = b;
        memset(m, 0, sizeof(m));
        m[0] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/ro",
                                      .lowers = both,
                                      .n_lowers = 2,
                                      .readonly = true};
        m[1] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/sub",
                                      .lowers = both,
                                      .n_lowers = 2,
                                      .subdir = "/d/sub",
                                      .readonly = true};
        /* "/out" climbs out of the tree on the host; inside the tree it stops at its root. */
        m[2] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/inside",
                                      .lowers = both,
                                      .n_lowers = 2,
                                      .subdir = "/out/etc",
                                      .readonly = true};
        m[3] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/file",
                                      .lowers = one,
                                      .n_lowers = 1,
                                      .subdir = "f",
                                      .readonly = true};
        m[4] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/rw",
                                      .lowers = both,
                                      .n_lowers = 2,
                                      .upper = rw_upper,
                                      .work = rw_work};
        t.mounts = m;
        t.n_mounts = 5;
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "a-keep\nb-file\nkeep\nnew\nsub\nshown\ngone-hidden\nro-refused\n"
                           "deep\ntree\nb-file\nw\nrw-removed\n");
        {
                _cleanup_free_ char *upper = list_tree(t.upper), *mu = list_tree(rw_upper);
                _cleanup_free_ char *a_after = list_tree(a), *b_after = list_tree(b);
                _cleanup_free_ char *keep = kstrfmt("%s/d/keep", rw_upper),
                                    *wh = kstrfmt("%s/f", rw_upper);
                struct kbuf k = KBUF_INIT;
                struct stat st;

                CASE("no mount point or staging point in the step's upper dir");
                CHECK_STREQ(upper, "");
                CASE("the writes of the rw mount are in its own upper dir");
                CHECK_STREQ(mu, "d\nd/keep\nf\n");
                CHECK(kfs_read_file(AT_FDCWD, keep, 0, &k, NULL) == 0);
                CHECK_STREQ(k.data, "w\n");
                kbuf_release(&k);
                CHECK(lstat(wh, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0);
                CASE("the lower dirs are as they were");
                CHECK_STREQ(a_after, a_before);
                CHECK_STREQ(b_after, b_before);
                k = (struct kbuf)KBUF_INIT;
                free(keep);
                keep = kstrfmt("%s/d/keep", a);
                CHECK(kfs_read_file(AT_FDCWD, keep, 0, &k, NULL) == 0);
                CHECK_STREQ(k.data, "a-keep\n");
                kbuf_release(&k);
        }
        {
                struct t_run legacy = {.argv = ARGV("sh", "-c",
                                                    "cat /ro/f; ls /ro/d; "
                                                    "touch /ro/x 2>/dev/null || echo ro-refused"),
                                       .mounts = m,
                                       .n_mounts = 1};

                CASE("mount(2) merges a read-only tree too");
                sbx_overlay_set_legacy(true);
                t_exec(&legacy);
                sbx_overlay_set_legacy(false);
                CHECK(ran_ok(&legacy));
                CHECK_STREQ(legacy.out, "b-file\nkeep\nnew\nsub\nro-refused\n");
                t_free(&legacy);
        }
        t_free(&t);
}

TEST(run_overlay_mount_errors)
{
        _cleanup_free_ char *a = kstrfmt("%s/lower-a", fx.dir), *b = kstrfmt("%s/lower-b", fx.dir);
        const char *both[2];
        struct sandbox_mount missing = {0}, half = {0}, none = {0};
        struct t_run t_missing = {.argv = ARGV("true")}, t_half = {.argv = ARGV("true")};
        struct t_run t_none = {.argv = ARGV("true")};

        SETUP();
        both[0] = a;
        both[1] = b;
        missing = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                         .target = "/m",
                                         .lowers = both,
                                         .n_lowers = 2,
                                         .subdir = "/no/such",
                                         .readonly = true};
        half = missing;
        half.subdir = NULL;
        half.upper = a;
        none = missing;
        none.n_lowers = 0;
        t_missing.mounts = &missing;
        t_half.mounts = &half;
        t_none.mounts = &none;
        t_missing.n_mounts = t_half.n_mounts = t_none.n_mounts = 1;
        CASE("a subdir the tree does not have");
        t_exec(&t_missing);
        CHECK(t_missing.rc < 0 && t_missing.err && t_missing.err->errnum == ENOENT);
        CHECK_HAS(t_missing.err ? t_missing.err->msg : NULL, "'/no/such' in the merged tree");
        {
                _cleanup_free_ char *u = list_tree(t_missing.upper);

                CHECK_STREQ(u, "");
        }
        CASE("an upper dir without a work dir");
        t_exec(&t_half);
        CHECK(t_half.rc < 0 && t_half.err && t_half.err->code == KERR_INVALID);
        CASE("no lower dirs");
        t_exec(&t_none);
        CHECK(t_none.rc < 0 && t_none.err && t_none.err->code == KERR_INVALID);
        t_free(&t_missing);
        t_free(&t_half);
        t_free(&t_none);
}

TEST(run_read_only_root)
{
        struct t_run t = {.argv = ARGV("sh", "-c",
                                       "touch /x 2>/dev/null || echo rofs; "
                                       "echo ok >/dev/shm/y && cat /dev/shm/y"),
                          .read_only = true};
        _cleanup_free_ char *upper = NULL;

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "rofs\nok\n");
        upper = list_tree(t.upper);
        CHECK_STREQ(upper, "");
        t_free(&t);
}

/* The kernel's mount(2) takes a page of options; "lowerdir+" (Linux 6.8) has no limit. */
TEST(run_deep_layer_stacks)
{
        enum { N = 150 };
        const char *lowers[N + 1];
        char *dirs[N + 1];
        struct t_run deep = {.argv = ARGV("sh", "-c", "cat /layer; cat /f0 /f149")};
        struct t_run legacy = {.argv = ARGV("sh", "-c", "cat /layer")};
        struct t_run small = {.argv = ARGV("echo", "legacy-ok")};
        struct sandbox_spec s = {0};
        struct sandbox_result r;
        struct kerr *err = NULL;
        bool made = true;

        SETUP();
        lowers[0] = fx.base;
        for (int i = 0; i < N; i++) {
                _cleanup_free_ char *f = NULL, *l = NULL;
                char num[16];

                dirs[i] = kstrfmt("%s/layer-%03d-with-a-long-name-to-fill-the-options", fx.dir, i);
                f = kstrfmt("%s/f%d", dirs[i], i);
                l = kstrfmt("%s/layer", dirs[i]);
                snprintf(num, sizeof(num), "%d\n", i);
                made = made && mkdir(dirs[i], 0755) == 0 && write_file(f, num, strlen(num), 0644) &&
                       write_file(l, num, strlen(num), 0644);
                lowers[i + 1] = dirs[i];
        }
        CHECK(made);
        deep.lowers = legacy.lowers = lowers;
        deep.n_lowers = legacy.n_lowers = N + 1;
        CASE("the new mount API stacks %d layers", N + 1);
        t_exec(&deep);
        CHECK(ran_ok(&deep));
        CHECK_STREQ(deep.out, "149\n0\n149\n");
        CASE("mount(2) refuses them, asking to flatten");
        sbx_overlay_set_legacy(true);
        t_exec(&legacy);
        CHECK(legacy.rc < 0 && legacy.err && legacy.err->code == KERR_UNSUPPORTED);
        CHECK_HAS(legacy.err ? legacy.err->msg : NULL, "must be flattened");
        CASE("mount(2) mounts a short stack");
        t_exec(&small);
        CHECK(ran_ok(&small));
        CHECK_STREQ(small.out, "legacy-ok\n");
        CASE("mount(2) takes as many store layers as sandbox_overlay_max_lowers says");
        CHECK_INTEQ(sandbox_overlay_max_lowers(), SANDBOX_LEGACY_MAX_LOWERS);
        {
                /* The base with the programs, then store layers up to the limit. */
                enum { M = SANDBOX_LEGACY_MAX_LOWERS };
                const char *store_lowers[M];
                char *store_dirs[M];
                struct t_run full = {.argv = ARGV("cat", "/layer")};
                bool ok = true;

                store_lowers[0] = fx.base;
                store_dirs[0] = NULL;
                for (int i = 1; i < M; i++) {
                        _cleanup_free_ char *l = NULL;
                        char num[16];

                        /* As the store names them: layers/<64 hex digits>/diff. */
                        store_dirs[i] = kstrfmt("%s/store/layers/%064x/diff", fx.dir, i);
                        l = kstrfmt("%s/layer", store_dirs[i]);
                        snprintf(num, sizeof(num), "%d\n", i);
                        ok = ok && kfs_mkdir_p(AT_FDCWD, store_dirs[i], 0755, NULL) == 0 &&
                             write_file(l, num, strlen(num), 0644);
                        store_lowers[i] = store_dirs[i];
                }
                CHECK(ok);
                full.lowers = store_lowers;
                full.n_lowers = M;
                t_exec(&full);
                CHECK(ran_ok(&full));
                CHECK_INTEQ(atoi(full.out ? full.out : ""), M - 1);
                for (int i = 1; i < M; i++)
                        free(store_dirs[i]);
                t_free(&full);
        }
        sbx_overlay_set_legacy(false);
        CASE("the new mount API takes the kernel's 500 (Linux 6.8 and later)");
        if (sandbox_overlay_max_lowers() == SANDBOX_LEGACY_MAX_LOWERS)
                tap_skip("this kernel is older than 6.8");
        else
                CHECK_INTEQ(sandbox_overlay_max_lowers(), SBX_OVERLAY_MAX_LAYERS);
        CASE("more layers than overlayfs stacks");
        s.argv = ARGV("true");
        s.lowers = lowers;
        s.n_lowers = SBX_OVERLAY_MAX_LAYERS + 1;
        s.upper = s.work = s.etc_dir = "/nonexistent";
        CHECK(sandbox_run(&s, &r, &err) < 0 && err && err->code == KERR_UNSUPPORTED);
        kerr_free(err);
        for (int i = 0; i < N; i++)
                free(dirs[i]);
        t_free(&deep);
        t_free(&legacy);
        t_free(&small);
}

/* ---- fuse-overlayfs ---- */

/* Why fuse-overlayfs cannot run here, or NULL. */
static const char *fuse_missing(void)
{
        static char reason[160];
        _cleanup_free_ char *p = sbx_find_program("fuse-overlayfs");
        int fd;

        if (!p)
                return "fuse-overlayfs is not in PATH (Debian package fuse-overlayfs)";
        fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                snprintf(reason, sizeof(reason), "/dev/fuse cannot be opened: %s", strerror(errno));
                return reason;
        }
        kfs_close(fd);
        return NULL;
}

/* Whether this process has no child left, not even a zombie: no fuse-overlayfs outlived
 * its run. */
static bool no_children(void)
{
        return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

/* Every entry below dir with what a layer keeps of it: type, mode, owner, size, link
 * count, device, link target, contents and xattrs. */
static void describe_into(const char *dir, const char *prefix, struct kbuf *out)
{
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, alphasort);

        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                _cleanup_free_ char *p = kstrfmt("%s/%s", dir, name);
                _cleanup_free_ char *rel = kstrfmt("%s%s", prefix, name);
                char list[1024], target[256];
                struct stat st;
                ssize_t len;

                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || lstat(p, &st) < 0) {
                        free(names[i]);
                        continue;
                }
                kbuf_printf(out, "%s %o %u:%u", rel, (unsigned)st.st_mode, (unsigned)st.st_uid,
                            (unsigned)st.st_gid);
                if (S_ISCHR(st.st_mode))
                        kbuf_printf(out, " dev %u:%u", major(st.st_rdev), minor(st.st_rdev));
                if (S_ISREG(st.st_mode)) {
                        struct kbuf c = KBUF_INIT;

                        kbuf_printf(out, " links %lu", (unsigned long)st.st_nlink);
                        if (kfs_read_file(AT_FDCWD, p, 0, &c, NULL) == 0)
                                kbuf_printf(out, " '%.*s'",
                                            (int)strcspn(c.data ? c.data : "", "\n"),
                                            c.data ? c.data : "");
                        kbuf_release(&c);
                }
                if (S_ISLNK(st.st_mode) && (len = readlink(p, target, sizeof(target) - 1)) > 0)
                        kbuf_printf(out, " -> %.*s", (int)len, target);
                len = llistxattr(p, list, sizeof(list));
                for (ssize_t off = 0; len > 0 && off < len;
                     off += (ssize_t)strlen(list + off) + 1) {
                        char v[64];
                        ssize_t vl = lgetxattr(p, list + off, v, sizeof(v));

                        /* overlayfs' own bookkeeping, which a layer leaves out. */
                        if (strstr(list + off, ".overlay.") && !strstr(list + off, "opaque"))
                                continue;
                        kbuf_printf(out, " %s=%.*s", list + off, (int)(vl > 0 ? vl : 0), v);
                }
                kbuf_putc(out, '\n');
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_free_ char *sub = kstrfmt("%s/", rel);

                        describe_into(p, sub, out);
                }
                free(names[i]);
        }
        free(names);
}

static char *describe_tree(const char *dir)
{
        struct kbuf b = KBUF_INIT;

        describe_into(dir, "", &b);
        return kbuf_detach(&b);
}

/* The lower dirs of make_overlay_lowers(), made by the first test that needs them. */
static bool overlay_lowers(char **ret_a, char **ret_b)
{
        _cleanup_free_ char *a = kstrfmt("%s/lower-a", fx.dir), *b = kstrfmt("%s/lower-b", fx.dir);

        if (access(a, F_OK) < 0)
                return make_overlay_lowers(ret_a, ret_b);
        *ret_a = TAKE_PTR(a);
        *ret_b = TAKE_PTR(b);
        return true;
}

/* stderr into a memfd while a test runs, for kiln's notices. */
static int capture_stderr(int *ret_saved)
{
        int fd = memfd_create("kiln-test-stderr", MFD_CLOEXEC);

        fflush(stderr);
        *ret_saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || *ret_saved < 0 || dup3(fd, STDERR_FILENO, 0) < 0)
                abort();
        return fd;
}

static char *captured(int fd, int saved)
{
        struct kbuf b = KBUF_INIT;

        fflush(stderr);
        if (dup3(saved, STDERR_FILENO, 0) < 0)
                abort();
        kfs_close(saved);
        lseek(fd, 0, SEEK_SET);
        if (kfs_read_fd(fd, "stderr", 0, &b, NULL) < 0)
                abort();
        kfs_close(fd);
        return b.data ? kbuf_detach(&b) : kstrdup("");
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;

        for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* What RUN steps do to a tree, over three lowers (the base, a, b): each kind of change a
 * layer must carry, whiteouts and opaque directories included. */
static const char fuse_script[] =
        "B=/bin/busybox; set -e; "
        "grep -o ' / [^ ]*' /proc/mounts | tail -1 >/mnt.txt; "
        "echo new >/newfile; echo changed >/d/keep; $B chmod 600 /etc/marker; "
        "$B chown 1000:1000 /d/new; $B ln /newfile /newlink; $B ln -s /newfile /sym; "
        "rm /f; rm -r /d/sub; rm -r /o; mkdir /o; echo x >/o/x; "
        "rm -r /home; mkdir /home; echo y >/home/y; mkdir -p /n/m; echo z >/n/m/z; "
        "mkdir /again; $B rmdir /again; touch /n/t; rm /n/t; $B mv /etc/marker /etc/moved; "
        "$B mv /d /dmoved; $B mkfifo /fifo; "
        "ls / ; ls -a /o /home /dmoved; cat /dmoved/keep /etc/moved";

TEST(run_fuse_overlay_writes_the_layer_overlayfs_writes)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *native = NULL, *fuse = NULL;
        const char *lowers[3];
        struct t_run tn = {.argv = ARGV("sh", "-c", fuse_script), .n_lowers = 3};
        struct t_run tf = tn;
        const char *why;

        SETUP();
        if ((why = fuse_missing()))
                SKIP(why);
        CHECK(overlay_lowers(&a, &b));
        lowers[0] = fx.base;
        lowers[1] = a;
        lowers[2] = b;
        tn.lowers = tf.lowers = lowers;
        setenv("KILN_OVERLAY", "native", 1);
        t_exec(&tn);
        setenv("KILN_OVERLAY", "fuse", 1);
        t_exec(&tf);
        unsetenv("KILN_OVERLAY");
        CHECK(ran_ok(&tn));
        CHECK(ran_ok(&tf));
        CASE("the container sees the same tree");
        CHECK_STREQ(tf.out, tn.out);
        CASE("the root is fuse-overlayfs only when asked for");
        {
                _cleanup_free_ char *pn = kstrfmt("%s/mnt.txt", tn.upper);
                _cleanup_free_ char *pf = kstrfmt("%s/mnt.txt", tf.upper);
                struct kbuf kn = KBUF_INIT, kf = KBUF_INIT;

                CHECK(kfs_read_file(AT_FDCWD, pn, 0, &kn, NULL) == 0);
                CHECK(kfs_read_file(AT_FDCWD, pf, 0, &kf, NULL) == 0);
                CHECK_STREQ(kn.data, " / overlay\n");
                CHECK_STREQ(kf.data, " / fuse.fuse-overlayfs\n");
                kbuf_release(&kn);
                kbuf_release(&kf);
                unlink(pn);
                unlink(pf);
        }
        CASE("the upper dirs are the same layer: whiteouts and opaque dirs as overlayfs'");
        native = describe_tree(tn.upper);
        fuse = describe_tree(tf.upper);
        CHECK_STREQ(fuse, native);
        CHECK_HAS(native, "f 20000 0:0 dev 0:0\n");
        CHECK_HAS(native, fx.userns ? "o 40755 0:0 user.overlay.opaque=y\n"
                                    : "o 40755 0:0 trusted.overlay.opaque=y\n");
        CHECK_LACKS(fuse, ".wh.");
        CHECK_LACKS(fuse, "fuseoverlayfs");
        CASE("no fuse-overlayfs is left");
        CHECK(no_children());
        CHECK_INTEQ(survivors(), 0);
        t_free(&tn);
        t_free(&tf);
}

TEST(run_fuse_overlay_mounts)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *a_before = NULL, *b_before = NULL;
        _cleanup_free_ char *rw = NULL, *rw_upper = NULL, *rw_work = NULL;
        const char *both[2];
        struct sandbox_mount m[3];
        struct t_run t = {.argv = ARGV("sh", "-c",
                                       "grep -c fuse-overlayfs /proc/mounts; "
                                       "cat /ro/d/keep /ro/f; ls /ro/d; ls /ro/o; "
                                       "test -e /ro/d/gone || echo gone-hidden; "
                                       "touch /ro/x 2>/dev/null || echo ro-refused; ls /sub; "
                                       "echo w >/rw/d/keep && rm /rw/f && cat /rw/d/keep && "
                                       "test ! -e /rw/f && echo rw-removed")};
        const char *why;

        SETUP();
        if ((why = fuse_missing()))
                SKIP(why);
        CHECK(overlay_lowers(&a, &b));
        a_before = list_tree(a);
        b_before = list_tree(b);
        rw = kstrfmt("%s/fuse-rw", fx.dir);
        rw_upper = kstrfmt("%s/upper", rw);
        rw_work = kstrfmt("%s/work", rw);
        CHECK(mkdir(rw, 0755) == 0 && mkdir(rw_upper, 0755) == 0 && mkdir(rw_work, 0700) == 0);
        both[0] = a;
        both[1] = b;
        memset(m, 0, sizeof(m));
        m[0] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/ro",
                                      .lowers = both,
                                      .n_lowers = 2,
                                      .readonly = true};
        m[1] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/sub",
                                      .lowers = both,
                                      .n_lowers = 2,
                                      .subdir = "/d/sub",
                                      .readonly = true};
        m[2] = (struct sandbox_mount){.type = SANDBOX_MOUNT_OVERLAY,
                                      .target = "/rw",
                                      .lowers = both,
                                      .n_lowers = 2,
                                      .upper = rw_upper,
                                      .work = rw_work};
        t.mounts = m;
        t.n_mounts = 3;
        setenv("KILN_OVERLAY", "fuse", 1);
        t_exec(&t);
        unsetenv("KILN_OVERLAY");
        CHECK(ran_ok(&t));
        /* The root and the three merged trees (the staging points are gone). */
        CHECK_STREQ(t.out, "4\na-keep\nb-file\nkeep\nnew\nsub\nshown\ngone-hidden\nro-refused\n"
                           "deep\nw\nrw-removed\n");
        {
                _cleanup_free_ char *upper = list_tree(t.upper),
                                    *keep = kstrfmt("%s/d/keep", rw_upper);
                _cleanup_free_ char *a_after = list_tree(a), *b_after = list_tree(b);

                CASE("the step's upper dir has none of it; the rw tree's writes are in its own");
                CHECK_STREQ(upper, "");
                CHECK(access(keep, F_OK) == 0);
                CASE("the lower dirs are as they were");
                CHECK_STREQ(a_after, a_before);
                CHECK_STREQ(b_after, b_before);
        }
        CHECK(no_children());
        t_free(&t);
}

TEST(run_fuse_overlay_stands_in_when_overlayfs_is_refused)
{
        struct t_run t1 = {.argv = ARGV("sh", "-c", "grep -c fuse-overlayfs /proc/mounts")};
        struct t_run t2 = t1;
        _cleanup_free_ char *notes = NULL;
        const char *why;
        int saved, fd;

        SETUP();
        if ((why = fuse_missing()))
                SKIP(why);
        unsetenv("KILN_OVERLAY");
        sbx_fuse_pretend_refused(true);
        fd = capture_stderr(&saved);
        t_exec(&t1);
        t_exec(&t2);
        notes = captured(fd, saved);
        sbx_fuse_pretend_refused(false);
        CHECK(ran_ok(&t1));
        CHECK(ran_ok(&t2));
        CHECK_STREQ(t1.out, "1\n");
        CHECK_STREQ(t2.out, "1\n");
        CASE("said once, with the kernel's reason");
        CHECK_INTEQ(count(notes, "kiln: warning: "), 1);
        CHECK_HAS(notes, "kiln: warning: the kernel refuses overlayfs here (Operation not "
                         "permitted: pretended for a test");
        CHECK_HAS(notes, "the layers are mounted with fuse-overlayfs\n");
        CHECK(no_children());
        t_free(&t1);
        t_free(&t2);
}

/* The daemon goes with the container however it ends. */
TEST(run_fuse_overlay_ends_with_the_run)
{
        struct t_run failing = {.argv = ARGV("sh", "-c", "echo x >/y; exit 3")};
        struct t_run missing = {.argv = ARGV("no-such-command")};
        struct t_run killed = {.argv = ARGV("sleep", "30")};
        struct sigaction sa, old;
        const char *why;
        pid_t killer;

        SETUP();
        if ((why = fuse_missing()))
                SKIP(why);
        setenv("KILN_OVERLAY", "fuse", 1);
        CASE("a command that fails");
        t_exec(&failing);
        CHECK(failing.rc == 0 && !failing.res.signaled && failing.res.status == 3);
        CHECK(no_children());
        CASE("a command that is not there");
        t_exec(&missing);
        CHECK(missing.rc < 0 && missing.err && missing.err->code == KERR_NOTFOUND);
        CHECK(no_children());
        CASE("kiln interrupted");
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigaction(SIGTERM, &sa, &old);
        killer = fork();
        if (killer == 0) {
                usleep(500 * 1000);
                kill(getppid(), SIGTERM);
                _exit(0);
        }
        t_exec(&killed);
        waitpid(killer, NULL, 0);
        sigaction(SIGTERM, &old, NULL);
        unsetenv("KILN_OVERLAY");
        CHECK(killed.rc < 0 && killed.err && killed.err->errnum == EINTR);
        CHECK(killed.seconds < 10);
        CHECK(no_children());
        CHECK_INTEQ(survivors(), 0);
        t_free(&failing);
        t_free(&missing);
        t_free(&killed);
}

TEST(run_overlay_mode_errors)
{
        struct t_run bogus = {.argv = ARGV("true")}, nofuse = bogus, native = bogus, auto_ = bogus;
        _cleanup_free_ char *path = kstrdup(getenv("PATH") ? getenv("PATH") : "");

        SETUP();
        CASE("KILN_OVERLAY takes native, fuse or auto");
        setenv("KILN_OVERLAY", "kernel", 1);
        t_exec(&bogus);
        CHECK(bogus.rc < 0 && bogus.err && bogus.err->code == KERR_INVALID);
        CHECK_HAS(bogus.err ? bogus.err->msg : NULL, "KILN_OVERLAY='kernel'");
        CASE("KILN_OVERLAY=fuse without fuse-overlayfs says what to install");
        setenv("KILN_OVERLAY", "fuse", 1);
        setenv("PATH", "/nonexistent", 1);
        t_exec(&nofuse);
        CHECK(nofuse.rc < 0 && nofuse.err && nofuse.err->code == KERR_UNSUPPORTED);
        CHECK_HAS(nofuse.err ? nofuse.err->msg : NULL,
                  "fuse-overlayfs is not in PATH (install the Debian package fuse-overlayfs)");
        CASE("a refused overlayfs with KILN_OVERLAY=native");
        sbx_fuse_pretend_refused(true);
        setenv("KILN_OVERLAY", "native", 1);
        t_exec(&native);
        CHECK(native.rc < 0 && native.err && native.err->code == KERR_UNSUPPORTED);
        CHECK_HAS(native.err ? native.err->msg : NULL,
                  "the kernel refuses it here (Operation not permitted: pretended for a test");
        CHECK_HAS(native.err ? native.err->msg : NULL, "KILN_OVERLAY=native rules out");
        CASE("a refused overlayfs without fuse-overlayfs says what to install");
        unsetenv("KILN_OVERLAY");
        t_exec(&auto_);
        sbx_fuse_pretend_refused(false);
        setenv("PATH", path, 1);
        CHECK(auto_.rc < 0 && auto_.err && auto_.err->code == KERR_UNSUPPORTED);
        CHECK_HAS(auto_.err ? auto_.err->msg : NULL,
                  "and fuse-overlayfs cannot stand in: fuse-overlayfs is not in PATH (install "
                  "the Debian package fuse-overlayfs)");
        CHECK(no_children());
        t_free(&bogus);
        t_free(&nofuse);
        t_free(&native);
        t_free(&auto_);
}

/* ---- who runs ---- */

TEST(run_resolves_the_user_in_the_image)
{
        static const char script[] = "id -u; id -g; grep Groups /proc/self/status; echo $HOME";
        static const struct {
                const char *user, *want;
        } rows[] = {
                /* The primary group is always one of them (the kernel lists them sorted);
                 * the groups naming the user as a member only when no group is given. */
                {NULL, "0\n0\nGroups:\t0 10\n/root\n"},
                {"alice", "1000\n1000\nGroups:\t10 29 1000\n/home/alice\n"},
                {"1000", "1000\n1000\nGroups:\t10 29 1000\n/home/alice\n"},
                {"alice:audio", "1000\n29\nGroups:\t29\n/home/alice\n"},
                {"1000:4000", "1000\n4000\nGroups:\t4000\n/home/alice\n"},
                {"bob", "1001\n1001\nGroups:\t1001\n/home/bob\n"},
                {"4242", "4242\n0\nGroups:\t0\n/\n"},
                {"4242:wheel", "4242\n10\nGroups:\t10\n/\n"},
        };

        SETUP();
        for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
                struct t_run t = {.argv = ARGV("sh", "-c", script), .user = rows[i].user};

                CASE("user '%s'", rows[i].user ? rows[i].user : "(none)");
                t_exec(&t);
                CHECK(ran_ok(&t));
                /* Older kernels end the Groups line with a space. */
                if (t.out)
                        for (char *p = strstr(t.out, " \n"); p; p = strstr(p, " \n"))
                                memmove(p, p + 1, strlen(p));
                CHECK_STREQ(t.out, rows[i].want);
                t_free(&t);
        }
        {
                struct t_run home = {.argv = ARGV("sh", "-c", "echo $HOME"),
                                     .user = "alice",
                                     .env = ARGV("PATH=/bin", "HOME=/elsewhere")};

                CASE("HOME given in the environment wins");
                t_exec(&home);
                CHECK_STREQ(home.out, "/elsewhere\n");
                t_free(&home);
        }
}

TEST(run_unknown_user_or_group_is_an_error)
{
        struct t_run user = {.argv = ARGV("true"), .user = "mallory"};
        struct t_run grp = {.argv = ARGV("true"), .user = "alice:nogroup"};

        SETUP();
        t_exec(&user);
        CHECK(user.rc < 0 && user.err && user.err->code == KERR_NOTFOUND);
        CHECK_HAS(user.err ? user.err->msg : NULL, "'mallory'");
        t_exec(&grp);
        CHECK(grp.rc < 0 && grp.err && grp.err->code == KERR_NOTFOUND);
        CHECK_HAS(grp.err ? grp.err->msg : NULL, "'nogroup'");
        /* It failed after the mounts: their mount points are gone all the same. */
        {
                _cleanup_free_ char *u = list_tree(user.upper);

                CHECK_STREQ(u, "");
        }
        t_free(&user);
        t_free(&grp);
}

TEST(run_user_resolution_follows_runc)
{
        struct sbx_user u = {0};
        struct kerr *err = NULL;

        /* No passwd at all: numbers only. */
        CHECK(sbx_user_resolve_in("", NULL, NULL, &u, &err) == 0 && u.uid == 0 && u.gid == 0);
        sbx_user_release(&u);
        CHECK(sbx_user_resolve_in("root", NULL, NULL, &u, &err) < 0 && err->code == KERR_NOTFOUND);
        kerr_free(err);
        err = NULL;
        /* The first entry wins; a numeric name is a uid. */
        CHECK(sbx_user_resolve_in("dup", "dup:x:5:6::/a:/bin/sh\ndup:x:7:8::/b:/bin/sh\n", NULL, &u,
                                  &err) == 0 &&
              u.uid == 5 && u.gid == 6 && strcmp(u.home, "/a") == 0);
        sbx_user_release(&u);
        CHECK(sbx_user_resolve_in("7", "7:x:9:9::/c:/bin/sh\nx:x:7:3::/d:/bin/sh\n", NULL, &u,
                                  &err) == 0 &&
              u.uid == 7 && u.gid == 3);
        sbx_user_release(&u);
        CHECK(sbx_user_resolve_in("3000000000", NULL, NULL, &u, &err) < 0 &&
              err->code == KERR_INVALID);
        kerr_free(err);
}

TEST(run_workdir_is_created_for_the_user)
{
        struct t_run t = {
                .argv = ARGV("sh", "-c", "pwd; touch f"), .user = "alice", .cwd = "/work/sub"};
        struct stat a = {0}, b = {0};

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "/work/sub\n");
        {
                _cleanup_free_ char *w = kstrfmt("%s/work", t.upper),
                                    *s = kstrfmt("%s/work/sub", t.upper);

                CHECK(lstat(w, &a) == 0 && S_ISDIR(a.st_mode) && a.st_uid == 1000 &&
                      a.st_gid == 1000);
                CHECK(lstat(s, &b) == 0 && S_ISDIR(b.st_mode) && b.st_uid == 1000);
        }
        t_free(&t);
}

/* ---- privileges ---- */

#define DEFAULT_CAPS "00000000a80425fb"

TEST(run_capabilities)
{
        static const char script[] = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status";
        const struct {
                const char *const *add, *const *drop;
                const char *user;
                const char *eff, *bnd;
        } rows[] = {
                {NULL, NULL, NULL, DEFAULT_CAPS, DEFAULT_CAPS},
                {ARGV("NET_ADMIN"), NULL, NULL, "00000000a80435fb", "00000000a80435fb"},
                {ARGV("cap_sys_admin"), ARGV("CAP_CHOWN"), NULL, "00000000a82425fa",
                 "00000000a82425fa"},
                {NULL, ARGV("ALL"), NULL, "0000000000000000", "0000000000000000"},
                {ARGV("KILL"), ARGV("ALL"), NULL, "0000000000000020", "0000000000000020"},
                {NULL, NULL, "alice", "0000000000000000", DEFAULT_CAPS},
        };

        SETUP();
        for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
                struct t_run t = {.argv = ARGV("sh", "-c", script),
                                  .cap_add = rows[i].add,
                                  .cap_drop = rows[i].drop,
                                  .user = rows[i].user};
                _cleanup_free_ char *eff = NULL, *prm = NULL, *bnd = NULL, *amb = NULL;
                _cleanup_free_ char *inh = NULL;
                bool root = !rows[i].user;

                CASE("row %zu", i);
                t_exec(&t);
                CHECK(ran_ok(&t));
                eff = status_field(t.out, "CapEff");
                prm = status_field(t.out, "CapPrm");
                inh = status_field(t.out, "CapInh");
                bnd = status_field(t.out, "CapBnd");
                amb = status_field(t.out, "CapAmb");
                CHECK_STREQ(eff, rows[i].eff);
                CHECK_STREQ(prm, rows[i].eff);
                CHECK_STREQ(bnd, rows[i].bnd);
                CHECK_STREQ(inh, root ? rows[i].eff : "0000000000000000");
                CHECK_STREQ(amb, root ? rows[i].eff : "0000000000000000");
                t_free(&t);
        }
        {
                struct t_run bad = {.argv = ARGV("true"), .cap_add = ARGV("CAP_BOGUS")};

                CASE("an unknown name");
                t_exec(&bad);
                CHECK(bad.rc < 0 && bad.err && bad.err->code == KERR_INVALID);
                CHECK_HAS(bad.err ? bad.err->msg : NULL, "'CAP_BOGUS'");
                t_free(&bad);
        }
}

TEST(run_sets_no_new_privs)
{
        struct t_run t = {
                .argv = ARGV("grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status")};

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "NoNewPrivs:\t1\nSeccomp:\t2\n");
        t_free(&t);
}

/* ---- seccomp ---- */

TEST(run_default_seccomp_profile)
{
        struct t_run t = {.argv = ARGV("kiln-probe", "syscalls")};
        struct t_run bb = {.argv = ARGV("sh", "-c",
                                        "unshare -U true 2>/dev/null || echo unshare-refused; "
                                        "mount -t tmpfs none /home 2>/dev/null || "
                                        "echo mount-refused")};

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "getcwd ok\nmount EPERM\numount2 EPERM\nkeyctl EPERM\nadd_key EPERM\n"
                           "kexec_load EPERM\nbpf EPERM\npersonality-query ok\n"
                           "personality-bad EPERM\nunshare-user EPERM\nunshare-mount EPERM\n"
                           "clone-newns EPERM\n");
        t_exec(&bb);
        CHECK(ran_ok(&bb));
        CHECK_STREQ(bb.out, "unshare-refused\nmount-refused\n");
        t_free(&t);
        t_free(&bb);
}

TEST(run_seccomp_unconfined)
{
        struct t_run t = {.argv = ARGV("kiln-probe", "syscalls"), .seccomp = "unconfined"};

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        /* Only the capabilities stand in the way now. */
        CHECK_HAS(t.out, "keyctl ok\n");
        CHECK_HAS(t.out, "add_key ok\n");
        CHECK_HAS(t.out, "personality-bad ok\n");
        CHECK_HAS(t.out, "unshare-user ok\n");
        CHECK_HAS(t.out, "mount EPERM\n");
        t_free(&t);
}

TEST(run_seccomp_profile_file)
{
        static const char profile[] =
                "{\n"
                "  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n"
                "  \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\",\n"
                "               \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]}],\n"
                "  \"syscalls\": [\n"
                "    {\"names\": [\"getcwd\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38},\n"
                "    {\"names\": [\"keyctl\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13,\n"
                "     \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},\n"
                "    {\"name\": \"personality\", \"action\": \"SCMP_ACT_ERRNO\",\n"
                "     \"args\": [{\"index\": 0, \"value\": 4194304, \"op\": \"SCMP_CMP_EQ\"}]},\n"
                "    {\"names\": [\"add_key\"], \"action\": \"SCMP_ACT_ERRNO\",\n"
                "     \"includes\": {\"arches\": [\"s390x\"]}},\n"
                "    {\"names\": [\"no_such_syscall\"], \"action\": \"SCMP_ACT_ERRNO\"}\n"
                "  ]\n"
                "}\n";
        _cleanup_free_ char *path = NULL, *bad = NULL, *bad_action = NULL;
        struct t_run t = {.argv = ARGV("kiln-probe", "syscalls")};
        struct t_run admin = {.argv = ARGV("kiln-probe", "syscalls"), .cap_add = ARGV("SYS_ADMIN")};
        struct t_run broken = {.argv = ARGV("true")}, unknown = {.argv = ARGV("true")};

        SETUP();
        path = kstrfmt("%s/profile.json", fx.dir);
        bad = kstrfmt("%s/broken.json", fx.dir);
        bad_action = kstrfmt("%s/bad-action.json", fx.dir);
        CHECK(write_file(path, profile, strlen(profile), 0644));
        CHECK(write_file(bad, "{\n  \"defaultAction\": ", 21, 0644));
        CHECK(write_file(bad_action, "{\"defaultAction\": \"SCMP_ACT_BOGUS\"}", 35, 0644));
        t.seccomp = admin.seccomp = path;
        broken.seccomp = bad;
        unknown.seccomp = bad_action;
        if (seccomp_arch_native() != SCMP_ARCH_X86_64)
                SKIP("the profile is written for x86-64");
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_HAS(t.out, "getcwd ENOSYS\n");
        CHECK_HAS(t.out, "keyctl EACCES\n");
        CHECK_HAS(t.out, "personality-bad EPERM\n");
        CHECK_HAS(t.out, "personality-query ok\n");
        CHECK_HAS(t.out, "add_key ok\n");
        t_exec(&admin);
        CHECK(ran_ok(&admin));
        CHECK_HAS(admin.out, "keyctl ok\n");
        t_exec(&broken);
        CHECK(broken.rc < 0 && broken.err && broken.err->code == KERR_PARSE &&
              broken.err->line == 2);
        t_exec(&unknown);
        CHECK(unknown.rc < 0 && unknown.err && unknown.err->code == KERR_INVALID);
        CHECK_HAS(unknown.err ? unknown.err->msg : NULL, "'SCMP_ACT_BOGUS'");
        t_free(&t);
        t_free(&admin);
        t_free(&broken);
        t_free(&unknown);
}

/* ---- nothing outlives a run ---- */

TEST(run_survivor_check_finds_marked_processes)
{
        pid_t pid;

        SETUP();
        /* The check below the other tests rely on, shown to see a marked process. */
        pid = fork();
        if (pid == 0) {
                char *const env[] = {fx.mark, NULL};

                execle(BUSYBOX, "sleep", "30", (char *)NULL, env);
                _exit(127);
        }
        CHECK(pid > 0);
        for (int i = 0; i < 100 && survivors() == 0; i++)
                usleep(10000);
        CHECK_INTEQ(survivors(), 1);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        CHECK_INTEQ(survivors(), 0);
}

TEST(run_background_processes_die_with_it)
{
        struct t_run t = {.argv = ARGV("sh", "-c", "sleep 1000 & sleep 1000 & echo started")};

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        CHECK_STREQ(t.out, "started\n");
        CHECK(t.seconds < 10);
        CHECK_INTEQ(survivors(), 0);
        t_free(&t);
}

TEST(run_stops_a_fork_bomb)
{
        struct t_run t = {.argv = ARGV("kiln-probe", "bomb", "2"), .pids_max = 64};
        int procs = -1;

        SETUP();
        t_exec(&t);
        CHECK(ran_ok(&t));
        if (t.rc == 0 && t.res.pids_limit == SANDBOX_PIDS_NONE) {
                t_free(&t);
                SKIP("neither a pids cgroup nor RLIMIT_NPROC can limit root here");
        }
        /* Inside a user namespace RLIMIT_NPROC does it (or a delegated cgroup), as root a
         * pids cgroup. */
        if (fx.userns)
                CHECK(t.res.pids_limit == SANDBOX_PIDS_RLIMIT ||
                      t.res.pids_limit == SANDBOX_PIDS_CGROUP_V2);
        else
                CHECK(t.res.pids_limit == SANDBOX_PIDS_CGROUP_V1 ||
                      t.res.pids_limit == SANDBOX_PIDS_CGROUP_V2);
        CHECK(t.out && strstr(t.out, "procs ") &&
              sscanf(strstr(t.out, "procs "), "procs %d", &procs) == 1);
        /* At the limit, and not past it. */
        CHECK(procs > 32 && procs <= 64);
        CHECK(t.seconds < 30);
        CHECK_INTEQ(survivors(), 0);
        t_free(&t);
}

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
        (void)sig;
        got_term++;
}

TEST(run_is_killed_by_sigterm)
{
        struct t_run t = {.argv = ARGV("sleep", "30")};
        struct sigaction sa, now_sa;
        sigset_t mask;
        pid_t killer;

        SETUP();
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        got_term = 0;
        killer = fork();
        if (killer == 0) {
                usleep(500 * 1000);
                kill(getppid(), SIGTERM);
                _exit(0);
        }
        t_exec(&t);
        waitpid(killer, NULL, 0);
        CHECK(t.rc < 0 && t.err && t.err->errnum == EINTR);
        CHECK(t.seconds < 10);
        CHECK_INTEQ(survivors(), 0);
        /* The caller's handler and mask are as they were. */
        sigaction(SIGTERM, NULL, &now_sa);
        CHECK(now_sa.sa_handler == on_term);
        sigprocmask(SIG_SETMASK, NULL, &mask);
        CHECK(!sigismember(&mask, SIGTERM));
        CHECK_INTEQ(got_term, 0);
        signal(SIGTERM, SIG_DFL);
        t_free(&t);
}

/* Last: the containers changed nothing on the host side. */
TEST(run_leaves_the_host_as_it_was)
{
        struct kbuf b = KBUF_INIT;
        struct dirent *de;
        DIR *d;
        int cgroups = 0;
        char prefix[32];

        SETUP();
        CHECK(kfs_read_file(AT_FDCWD, "/proc/self/mountinfo", 0, &b, NULL) == 0);
        CHECK_STREQ(b.data, fx.mounts);
        kbuf_release(&b);
        CHECK_INTEQ(survivors(), 0);
        snprintf(prefix, sizeof(prefix), "kiln-%ld-", (long)getpid());
        d = opendir("/sys/fs/cgroup/pids");
        while (d && (de = readdir(d)))
                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                        cgroups++;
        if (d)
                closedir(d);
        CHECK_INTEQ(cgroups, 0);
}
