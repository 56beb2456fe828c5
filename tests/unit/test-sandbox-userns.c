/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
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
#include "common/idmap.h"
#include "tap.h"

#define NOBODY 65534

static char *write_temp(const char *text)
{
        char *path = strdup("/tmp/kiln-test-subid-XXXXXX");
        int fd = path ? mkstemp(path) : -1;

        if (fd < 0 || kfs_write_all(fd, text, strlen(text)) < 0)
                abort();
        kfs_close(fd);
        return path;
}

TEST(subid_ranges_by_name_and_number_in_file_order)
{
        char *path = write_temp("alice:100000:65536\n"
                                "bob:165536:65536\n"
                                "1001:300000:10\n"
                                "\n"
                                "alice:bad:5\n"
                                "alice:5\n"
                                "alice:7:0\n"
                                "alice:4294967295:2\n"
                                "alice:-1:3\n"
                                "alice:400000:1");
        struct sandbox_idrange *r = NULL;
        size_t n = 99;

        CHECK(sandbox_subid_ranges(path, "alice", 1001, &r, &n, NULL) == 0);
        CHECK_INTEQ(n, 3);
        if (n == 3) {
                CHECK(r[0].start == 100000 && r[0].count == 65536);
                CHECK(r[1].start == 300000 && r[1].count == 10); /* by uid number */
                CHECK(r[2].start == 400000 && r[2].count == 1);  /* last line, no newline */
        }
        free(r);
        r = NULL;
        /* A prefix of a name is not the name; a user without a login name still matches
         * by number. */
        CHECK(sandbox_subid_ranges(path, "ali", 5, &r, &n, NULL) == 0);
        CHECK_INTEQ(n, 0);
        CHECK_NULL(r);
        CHECK(sandbox_subid_ranges(path, NULL, 1001, &r, &n, NULL) == 0);
        CHECK(n == 1 && r && r[0].start == 300000);
        free(r);
        unlink(path);
        free(path);
}

TEST(subid_ranges_missing_file_has_none)
{
        struct sandbox_idrange *r = NULL;
        size_t n = 99;

        CHECK(sandbox_subid_ranges("/nonexistent/subuid", "alice", 1, &r, &n, NULL) == 0);
        CHECK_INTEQ(n, 0);
        CHECK_NULL(r);
}

TEST(userns_enter_as_root_does_nothing)
{
        struct sandbox_userns ns = {0};
        struct kbuf before = KBUF_INIT, after = KBUF_INIT;

        if (geteuid() != 0)
                SKIP("needs root");
        CHECK(kfs_read_file(AT_FDCWD, "/proc/self/uid_map", 0, &before, NULL) == 0);
        CHECK_INTEQ(sandbox_userns_enter(&ns, NULL), 0);
        CHECK(kfs_read_file(AT_FDCWD, "/proc/self/uid_map", 0, &after, NULL) == 0);
        CHECK_STREQ(after.data, before.data);
        CHECK_NULL(ns.warning);
        CHECK_NULL(ns.hint);
        kidmap_set_hint("a hint");
        CHECK_NULL(kidmap_single_id_hint());
        kidmap_set_hint(NULL);
        kbuf_release(&before);
        kbuf_release(&after);
}

/* The owner error keeps kerr_set's form when the ids are mapped. */
TEST(idmap_owner_error_mapped_ids_are_plain)
{
        struct kerr *err = NULL;

        if (!kidmap_is_mapped(false, 1000) || !kidmap_is_mapped(true, 1000))
                SKIP("this process's user namespace does not map 1000");
        CHECK(kidmap_owner_error(&err, EINVAL, 1000, 1000, "set owner of '%s'", "/x") < 0);
        CHECK(err && err->errnum == EINVAL && err->code == KERR_IO);
        CHECK_STREQ(err ? err->msg : NULL, "set owner of '/x'");
        kerr_free(err);
        err = NULL;
        CHECK(kidmap_owner_error(&err, EPERM, 5, 5, "chown '%s'", "/y") < 0);
        CHECK(err && err->errnum == EPERM);
        kerr_free(err);
}

static void line(struct kbuf *out, const char *key, const char *value)
{
        kbuf_printf(out, "%s=%s\n", key, value ? value : "(null)");
}

/* In a child that became nobody: enter, then report what the namespace looks like. */
static void child_enter(int fd)
{
        struct sandbox_userns ns = {0};
        struct kerr *err = NULL;
        struct kbuf out = KBUF_INIT, map = KBUF_INIT;
        char path[] = "/tmp/kiln-test-userns-XXXXXX", num[32];
        int r, f;

        if (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
                _exit(3);
        /* Changing uid made the process non-dumpable, which hides /proc/self from it. */
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        r = sandbox_userns_enter(&ns, &err);
        snprintf(num, sizeof(num), "%d", r);
        line(&out, "enter", num);
        if (r < 0) {
                _cleanup_free_ char *m = kerr_format(err);
                line(&out, "error", m);
        }
        snprintf(num, sizeof(num), "%d:%d:%d", (int)getuid(), (int)geteuid(), (int)getgid());
        line(&out, "ids", num);
        snprintf(num, sizeof(num), "%lu:%lu", ns.n_uids, ns.n_gids);
        line(&out, "counts", num);
        if (kfs_read_file(AT_FDCWD, "/proc/self/uid_map", 0, &map, NULL) == 0) {
                /* The kernel pads the columns: keep the numbers only. */
                unsigned long a = 9, b = 9, c = 9;
                sscanf(map.data, "%lu %lu %lu", &a, &b, &c);
                snprintf(num, sizeof(num), "%lu %lu %lu", a, b, c);
                line(&out, "uid_map", num);
        }
        kbuf_release(&map);
        if (kfs_read_file(AT_FDCWD, "/proc/self/setgroups", 0, &map, NULL) == 0)
                line(&out, "setgroups", map.data);
        kbuf_release(&map);
        line(&out, "warning", ns.warning);
        line(&out, "hint", ns.hint);
        /* A real chown to an unmapped id, as a layer write would do. */
        kidmap_set_hint(ns.hint);
        line(&out, "single_id_hint", kidmap_single_id_hint());
        f = mkstemp(path);
        if (f >= 0) {
                snprintf(num, sizeof(num), "%d", fchown(f, 0, 0));
                line(&out, "chown0", num);
                if (fchown(f, 1000, 0) < 0) {
                        _cleanup_free_ char *m = NULL;
                        kerr_free(err);
                        err = NULL;
                        kidmap_owner_error(&err, errno, 1000, 0, "set owner of '%s'", "/app/x");
                        m = kerr_format(err);
                        line(&out, "chown1000", m);
                }
                unlink(path);
                kfs_close(f);
        }
        kfs_write_all(fd, out.data, out.len);
        _exit(0);
}

static const char *value(const char *text, const char *key, char *buf, size_t size)
{
        size_t klen = strlen(key);

        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        size_t n = strcspn(p + klen + 1, "\n");
                        snprintf(buf, size, "%.*s", (int)n, p + klen + 1);
                        return buf;
                }
        }
        return NULL;
}

TEST(userns_enter_without_ranges_maps_only_the_own_ids)
{
        struct sandbox_idrange *r = NULL;
        size_t nu = 0, ng = 0;
        struct kbuf out = KBUF_INIT;
        int fds[2], status = 0;
        char v[1024], v2[1024];
        pid_t pid;
        const char *want_chown = "set owner of '/app/x': uid 1000 is not mapped in kiln's user "
                                 "namespace (add subordinate ids for nobody to /etc/subuid and "
                                 "/etc/subgid: usermod --add-subuids";

        if (geteuid() != 0)
                SKIP("needs root to become another user");
        if (sandbox_subid_ranges("/etc/subuid", "nobody", NOBODY, &r, &nu, NULL) < 0)
                SKIP("cannot read /etc/subuid");
        free(r);
        if (sandbox_subid_ranges("/etc/subgid", "nobody", NOBODY, &r, &ng, NULL) < 0)
                SKIP("cannot read /etc/subgid");
        free(r);
        if (nu && ng)
                SKIP("nobody has subordinate ids here");
        if (pipe2(fds, O_CLOEXEC) < 0)
                abort();
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                abort();
        if (pid == 0) {
                kfs_close(fds[0]);
                child_enter(fds[1]);
        }
        kfs_close(fds[1]);
        CHECK(kfs_read_fd(fds[0], "child", 0, &out, NULL) == 0);
        kfs_close(fds[0]);
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!out.data)
                kbuf_puts(&out, "");
        CHECK_STREQ(value(out.data, "enter", v, sizeof(v)), "1");
        CHECK_NULL(value(out.data, "error", v, sizeof(v)));
        CHECK_STREQ(value(out.data, "ids", v, sizeof(v)), "0:0:0");
        CHECK_STREQ(value(out.data, "counts", v, sizeof(v)), "1:1");
        CHECK_STREQ(value(out.data, "uid_map", v, sizeof(v)), "0 65534 1");
        CHECK_STREQ(value(out.data, "setgroups", v, sizeof(v)), "deny");
        CHECK(value(out.data, "warning", v, sizeof(v)) &&
              strstr(v, "only your own uid and gid are mapped") &&
              strstr(v, "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody"));
        CHECK(value(out.data, "hint", v, sizeof(v)) && strstr(v, "/etc/subuid"));
        /* One id mapped: the hint goes with any failed step too. */
        CHECK_STREQ(value(out.data, "single_id_hint", v, sizeof(v)),
                    value(out.data, "hint", v2, sizeof(v2)));
        CHECK_STREQ(value(out.data, "chown0", v, sizeof(v)), "0");
        CHECK(value(out.data, "chown1000", v, sizeof(v)) &&
              strncmp(v, want_chown, strlen(want_chown)) == 0 && !strstr(v, "Invalid argument"));
        kbuf_release(&out);
}
