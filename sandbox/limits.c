/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* The number of processes is capped so that a fork bomb in a step stops at the cap. As
 * root, RLIMIT_NPROC never applies to uid 0, so a pids cgroup of the run's own does it: in
 * the unified hierarchy when pids is delegated to kiln's cgroup, else in v1's pids
 * hierarchy. Inside a user namespace RLIMIT_NPROC counts the processes of each user of
 * that namespace, which is the container's (kiln's own namespace holds nothing else). */

static unsigned long run_seq;

/* kiln's cgroup in one hierarchy: "N:CONTROLLERS:PATH" lines of /proc/self/cgroup, the v1
 * line listing controller, or the v2 line ("0::PATH") when controller is NULL. */
static char *own_cgroup(const char *controller)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        _cleanup_free_ char *line = NULL;
        size_t len = 0;

        while (f && getline(&line, &len, f) >= 0) {
                char *ctl = strchr(line, ':'), *path;

                if (!ctl)
                        continue;
                path = strchr(++ctl, ':');
                if (!path)
                        continue;
                *path++ = '\0';
                path[strcspn(path, "\n")] = '\0';
                if (!controller) {
                        if (strncmp(line, "0:", 2) == 0 && *ctl == '\0')
                                return kstrdup(path);
                        continue;
                }
                for (char *save = NULL, *c = strtok_r(ctl, ",", &save); c;
                     c = strtok_r(NULL, ",", &save))
                        if (strcmp(c, controller) == 0)
                                return kstrdup(path);
        }
        return NULL;
}

/* Where the hierarchy is mounted, joined with cgroup (the path in it): from
 * /proc/self/mountinfo, "ID PARENT DEV ROOT MOUNTPOINT OPTS ... - TYPE SOURCE SUPEROPTS". */
static char *cgroup_dir(const char *fstype, const char *controller, const char *cgroup)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        size_t len = 0;

        while (f && getline(&line, &len, f) >= 0) {
                char *field[5], *save = NULL, *dash, *type, *super, *p = line;
                size_t n = 0;

                dash = strstr(line, " - ");
                if (!dash)
                        continue;
                *dash = '\0';
                type = strtok_r(dash + 3, " ", &save);
                (void)strtok_r(NULL, " ", &save);
                super = strtok_r(NULL, " \n", &save);
                if (!type || strcmp(type, fstype) != 0)
                        continue;
                if (controller) {
                        bool has = false;
                        char *s2 = NULL;

                        for (char *o = super ? strtok_r(super, ",", &s2) : NULL; o;
                             o = strtok_r(NULL, ",", &s2))
                                has = has || strcmp(o, controller) == 0;
                        if (!has)
                                continue;
                }
                save = NULL;
                for (char *t = strtok_r(p, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
                        field[n++] = t;
                if (n < 5)
                        continue;
                {
                        const char *root = field[3], *rest = cgroup;
                        size_t rl = strlen(root);
                        struct kbuf b = KBUF_INIT;

                        /* Inside a cgroup namespace the mount's root may be below "/". */
                        if (strcmp(root, "/") != 0 && strncmp(cgroup, root, rl) == 0)
                                rest = cgroup + rl;
                        kbuf_printf(&b, "%s%s", field[4], strcmp(rest, "/") == 0 ? "" : rest);
                        return kbuf_detach(&b);
                }
        }
        return NULL;
}

/* Removes the cgroups of kiln runs whose process is gone (a kiln killed mid-run). */
static void sweep(const char *parent)
{
        DIR *d = opendir(parent);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                unsigned long pid;
                char *end;

                if (strncmp(de->d_name, "kiln-", 5) != 0)
                        continue;
                pid = strtoul(de->d_name + 5, &end, 10);
                if (*end != '-' || pid == 0 || (pid_t)pid == getpid())
                        continue;
                if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                        continue;
                (void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        }
        closedir(d);
}

static int write_text(const char *dir, const char *file, const char *text)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                abort();
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        return kfs_write_all(fd, text, strlen(text));
}

/* Makes the run's cgroup below kiln's in one hierarchy and sets pids.max there. */
static char *make_cgroup(const char *fstype, const char *controller, unsigned long max)
{
        _cleanup_free_ char *own = own_cgroup(controller), *parent = NULL, *dir = NULL;
        char text[32];

        if (!own)
                return NULL;
        parent = cgroup_dir(fstype, controller, own);
        if (!parent)
                return NULL;
        sweep(parent);
        if (asprintf(&dir, "%s/kiln-%ld-%lu", parent, (long)getpid(), ++run_seq) < 0)
                abort();
        if (mkdir(dir, 0755) < 0) {
                klog_debug("sandbox: no %s pids cgroup: mkdir '%s': %s", fstype, dir,
                           strerror(errno));
                return NULL;
        }
        snprintf(text, sizeof(text), "%lu", max);
        /* Without the controller enabled for it, a v2 cgroup has no pids.max. */
        if (write_text(dir, "pids.max", text) < 0) {
                klog_debug("sandbox: no %s pids cgroup: write '%s/pids.max': %s", fstype, dir,
                           strerror(errno));
                rmdir(dir);
                return NULL;
        }
        return TAKE_PTR(dir);
}

void sbx_limit_prepare(struct sbx_limit *l, unsigned long max, bool userns)
{
        l->max = max;
        l->cgroup_dir = make_cgroup("cgroup2", NULL, max);
        if (l->cgroup_dir) {
                l->kind = SANDBOX_PIDS_CGROUP_V2;
                return;
        }
        l->cgroup_dir = make_cgroup("cgroup", "pids", max);
        if (l->cgroup_dir) {
                l->kind = SANDBOX_PIDS_CGROUP_V1;
                return;
        }
        if (userns) {
                l->kind = SANDBOX_PIDS_RLIMIT;
                return;
        }
        l->kind = SANDBOX_PIDS_NONE;
        klog_debug("sandbox: no pids cgroup can be made and RLIMIT_NPROC does not apply to "
                   "root: the number of processes of a run is not limited");
}

int sbx_limit_attach(const struct sbx_limit *l, pid_t pid, struct kerr **err)
{
        char text[32];

        if (!l->cgroup_dir)
                return 0;
        snprintf(text, sizeof(text), "%ld\n", (long)pid);
        if (write_text(l->cgroup_dir, "cgroup.procs", text) < 0)
                return kerr_set(err, errno, KERR_IO, "move the container into '%s'", l->cgroup_dir);
        return 0;
}

int sbx_limit_child(const struct sbx_limit *l, struct kerr **err)
{
        struct rlimit rl;
        rlim_t v = (rlim_t)l->max;

        if (l->kind != SANDBOX_PIDS_RLIMIT)
                return 0;
        if (getrlimit(RLIMIT_NPROC, &rl) < 0)
                return kerr_set(err, errno, KERR_IO, "read RLIMIT_NPROC");
        /* Lowering is always allowed; raising past the hard limit is not (no
         * CAP_SYS_RESOURCE here). */
        if (rl.rlim_max != RLIM_INFINITY && v > rl.rlim_max)
                v = rl.rlim_max;
        rl.rlim_cur = rl.rlim_max = v;
        if (setrlimit(RLIMIT_NPROC, &rl) < 0)
                return kerr_set(err, errno, KERR_IO, "set RLIMIT_NPROC to %lu", (unsigned long)v);
        return 0;
}

void sbx_limit_release(struct sbx_limit *l)
{
        if (!l->cgroup_dir)
                return;
        /* The run's processes are gone once its PID 1 is reaped; the kernel may take a
         * moment to let go of the cgroup. */
        for (int i = 0; i < 200; i++) {
                struct timespec ts = {0, 5 * 1000 * 1000};

                if (rmdir(l->cgroup_dir) == 0 || errno == ENOENT)
                        break;
                if (errno != EBUSY) {
                        klog_debug("sandbox: remove '%s': %s", l->cgroup_dir, strerror(errno));
                        break;
                }
                nanosleep(&ts, NULL);
        }
        free(l->cgroup_dir);
        l->cgroup_dir = NULL;
}
