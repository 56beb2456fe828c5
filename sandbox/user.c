/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* runc's limits on ids (libcontainer/user). */
#define MAX_ID 2147483647UL
#define MAX_FILE (4 * 1024 * 1024)

void sbx_user_release(struct sbx_user *u)
{
        if (!u)
                return;
        free(u->groups);
        free(u->home);
        u->groups = NULL;
        u->home = NULL;
        u->n_groups = 0;
}

/* A decimal id as runc's strconv.Atoi reads it (optionally signed; we take non-negative
 * ones only). */
static bool parse_num(const char *s, unsigned long *ret)
{
        char *end = NULL;
        unsigned long v;

        if (!*s || !((*s >= '0' && *s <= '9') || *s == '+'))
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end)
                return false;
        *ret = v;
        return true;
}

/* Splits line (modified) at ':' into up to n fields; missing ones are "". */
static void fields(char *line, char **f, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                f[i] = line;
                line = strchr(line, ':');
                if (!line) {
                        for (size_t k = i + 1; k < n; k++)
                                f[k] = (char *)"";
                        return;
                }
                *line++ = '\0';
        }
}

/* Copies the next line of text at *pos into *line (replacing it), white space trimmed
 * as runc trims it; false at the end. */
static bool next_line(const char **pos, char **line)
{
        const char *p = *pos, *end;

        if (!p || !*p)
                return false;
        end = strchrnul(p, '\n');
        *pos = *end ? end + 1 : end;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
                p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;
        free(*line);
        *line = kstrndup(p, (size_t)(end - p));
        return true;
}

struct pw_entry {
        bool found;
        char *name;
        unsigned long uid, gid;
        char *home;
};

static void find_user(const char *passwd, const char *arg, struct pw_entry *ret)
{
        unsigned long want = 0;
        bool numeric = parse_num(arg, &want);
        const char *pos = passwd;
        _cleanup_free_ char *line = NULL;

        while (!ret->found && next_line(&pos, &line)) {
                char *f[7];
                unsigned long uid = 0, gid = 0;

                if (!*line)
                        continue;
                fields(line, f, 7);
                (void)parse_num(f[2], &uid);
                (void)parse_num(f[3], &gid);
                if (numeric ? uid != want : strcmp(f[0], arg) != 0)
                        continue;
                ret->found = true;
                ret->name = kstrdup(f[0]);
                ret->uid = uid;
                ret->gid = gid;
                ret->home = kstrdup(f[5]);
        }
}

static bool find_group(const char *group, const char *arg, unsigned long *ret)
{
        unsigned long want = 0;
        bool numeric = parse_num(arg, &want), found = false;
        const char *pos = group;
        _cleanup_free_ char *line = NULL;

        while (!found && next_line(&pos, &line)) {
                char *f[4];
                unsigned long gid = 0;

                if (!*line)
                        continue;
                fields(line, f, 4);
                (void)parse_num(f[2], &gid);
                if (numeric ? gid != want : strcmp(f[0], arg) != 0)
                        continue;
                found = true;
                *ret = gid;
        }
        return found;
}

static void add_group(struct sbx_user *u, size_t *cap, gid_t gid)
{
        for (size_t i = 0; i < u->n_groups; i++)
                if (u->groups[i] == gid)
                        return;
        if (u->n_groups == *cap) {
                *cap = *cap ? 2 * *cap : 8;
                u->groups = kreallocarray(u->groups, *cap, sizeof(*u->groups));
        }
        u->groups[u->n_groups++] = gid;
}

/* The supplementary groups: the primary one first, as BuildKit and moby give it
 * (containerd's ensureAdditionalGids), then, when name is set, the groups that list it as
 * a member, in file order. */
static void supplementary_groups(const char *group, const char *name, struct sbx_user *u)
{
        size_t cap = 0;
        const char *pos = group;
        _cleanup_free_ char *line = NULL;

        add_group(u, &cap, u->gid);
        if (!name)
                return;

        while (next_line(&pos, &line)) {
                char *f[4], *m, *msave = NULL;
                unsigned long gid = 0;

                if (!*line)
                        continue;
                fields(line, f, 4);
                (void)parse_num(f[2], &gid);
                for (m = strtok_r(f[3], ",", &msave); m; m = strtok_r(NULL, ",", &msave)) {
                        if (strcmp(m, name) == 0)
                                add_group(u, &cap, (gid_t)gid);
                }
        }
}

int sbx_user_resolve_in(const char *spec, const char *passwd, const char *group,
                        struct sbx_user *ret, struct kerr **err)
{
        _cleanup_free_ char *copy = kstrdup(spec ? spec : "");
        char *user = copy, *grp = strchr(copy, ':');
        struct pw_entry pw = {0};
        struct sbx_user u = {0};
        unsigned long gid;

        if (grp)
                *grp++ = '\0';
        if (!*user)
                user = (char *)"0";
        find_user(passwd, user, &pw);
        if (!pw.found) {
                unsigned long uid;

                if (!parse_num(user, &uid))
                        return kerr_set(err, 0, KERR_NOTFOUND,
                                        "user '%s' is not in the container's /etc/passwd", user);
                /* As runc: a number without an entry is that uid with gid 0 and home /. */
                pw.uid = uid;
                pw.gid = 0;
        }
        gid = pw.gid;
        if (grp && *grp && !find_group(group, grp, &gid) && !parse_num(grp, &gid)) {
                free(pw.name);
                free(pw.home);
                return kerr_set(err, 0, KERR_NOTFOUND,
                                "group '%s' is not in the container's /etc/group", grp);
        }
        if (pw.uid > MAX_ID || gid > MAX_ID) {
                free(pw.name);
                free(pw.home);
                return kerr_set(err, 0, KERR_INVALID,
                                "user '%s': uids and gids must be from 0 to %lu", spec, MAX_ID);
        }
        u.uid = (uid_t)pw.uid;
        u.gid = (gid_t)gid;
        u.home = pw.home && *pw.home ? TAKE_PTR(pw.home) : kstrdup("/");
        /* As runc: an explicit group leaves out the groups the user is a member of. */
        supplementary_groups(group, grp && *grp ? NULL : pw.name, &u);
        free(pw.name);
        free(pw.home);
        *ret = u;
        return 0;
}

/* The container's file, or NULL when it is missing or not a regular file. */
static int read_etc(const char *path, char **ret, struct kerr **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct kbuf b = KBUF_INIT;
        struct stat st;

        *ret = NULL;
        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                        return 0;
                return kerr_set(err, errno, KERR_IO, "open the container's '%s'", path);
        }
        if (fstat(fd, &st) < 0)
                return kerr_set(err, errno, KERR_IO, "stat the container's '%s'", path);
        if (!S_ISREG(st.st_mode)) {
                klog_debug("sandbox: the container's '%s' is not a regular file", path);
                return 0;
        }
        if (kfs_read_fd(fd, path, MAX_FILE, &b, err) < 0)
                return kerr_wrap(err, "read the container's '%s'", path);
        *ret = kbuf_detach(&b);
        return 0;
}

int sbx_user_resolve(const char *spec, struct sbx_user *ret, struct kerr **err)
{
        _cleanup_free_ char *passwd = NULL, *group = NULL;

        if (read_etc("/etc/passwd", &passwd, err) < 0 || read_etc("/etc/group", &group, err) < 0)
                return -1;
        return sbx_user_resolve_in(spec, passwd, group, ret, err);
}

/* In a user namespace mapped without newgidmap, setgroups is denied for good. */
static bool setgroups_denied(void)
{
        char buf[16] = {0};
        int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return false;
        n = kfs_read_all(fd, buf, sizeof(buf) - 1);
        kfs_close(fd);
        return n > 0 && strncmp(buf, "deny", 4) == 0;
}

int sbx_user_switch(const struct sbx_user *u, struct kerr **err)
{
        if (setgroups(u->n_groups, u->groups) < 0) {
                if (errno != EPERM || !setgroups_denied())
                        return kerr_set(err, errno, errno == EINVAL ? KERR_INVALID : KERR_IO,
                                        "set the supplementary groups");
                klog_debug("sandbox: setgroups is denied in kiln's user namespace");
        }
        if (setresgid(u->gid, u->gid, u->gid) < 0) {
                if (errno == EINVAL)
                        return kerr_set(err, 0, KERR_INVALID,
                                        "switch to gid %lu: it is not mapped in kiln's user "
                                        "namespace",
                                        (unsigned long)u->gid);
                return kerr_set(err, errno, KERR_IO, "switch to gid %lu", (unsigned long)u->gid);
        }
        if (setresuid(u->uid, u->uid, u->uid) < 0) {
                if (errno == EINVAL)
                        return kerr_set(err, 0, KERR_INVALID,
                                        "switch to uid %lu: it is not mapped in kiln's user "
                                        "namespace",
                                        (unsigned long)u->uid);
                return kerr_set(err, errno, KERR_IO, "switch to uid %lu", (unsigned long)u->uid);
        }
        return 0;
}
