/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct kerr;

/* The sandbox module: user namespaces, mounts, seccomp, capabilities and networking. It
 * puts a non-root kiln into a user namespace and runs processes in containers. */

/* Writes the running libseccomp's version ("2.5.4") into buf. */
void sandbox_seccomp_version(char *buf, size_t size);

/* A range of subordinate ids: START and COUNT of a line "NAME:START:COUNT". */
struct sandbox_idrange {
        unsigned long start, count;
};

/* Reads the ranges of the user named user (may be NULL) or numbered id from a subuid-style
 * file, in file order, into a new array *ret_ranges (NULL when none). A missing file has
 * none; malformed lines are skipped. */
int sandbox_subid_ranges(const char *path, const char *user, unsigned long id,
                         struct sandbox_idrange **ret_ranges, size_t *ret_n, struct kerr **err);

/* The user namespace that sandbox_userns_enter() put kiln in. */
struct sandbox_userns {
        unsigned long n_uids, n_gids; /* ids mapped from 0; 1 when only the user's own */
        char *warning; /* why only the user's own ids are mapped, to show once; or NULL */
        char *hint;    /* how to map more ids, for an error about an unmapped owner */
};

/* Without root, moves the (single-threaded) caller into a new user namespace as uid/gid 0
 * over its own ids and its subuid/subgid ranges (ARCHITECTURE.md). Returns 0 as root, doing
 * nothing; 1 with *ret set (release it); -1 on failure, after which the caller should exit. */
int sandbox_userns_enter(struct sandbox_userns *ret, struct kerr **err);
/* Frees what sandbox_userns_enter() put in ns; NULL is fine. */
void sandbox_userns_release(struct sandbox_userns *ns);

/* ======================================================================================
 * Running a process in a container (run.c and its helpers)
 *
 * One call runs one process tree: RUN steps of a build and, later, kiln run. The caller
 * (already uid 0, as root or in kiln's user namespace) passes the layer stack and a fresh
 * upper dir; the sandbox mounts them as overlayfs in new mount, PID, IPC and UTS namespaces
 * (and a network namespace with only loopback for SANDBOX_NET_NONE), sets up /proc, /dev,
 * /sys, the /etc files below, pivots into it, drops to docker's default capabilities (plus
 * cap_add, minus cap_drop), sets no_new_privs, installs the seccomp filter, switches to the
 * user, closes every fd above 2 and execs. The process is PID 1 of its namespace, so when
 * it exits everything it started dies with it. Nothing is left mounted on the host side.
 *
 * The layers are merged by the kernel's overlayfs, or by fuse-overlayfs (found in kiln's
 * PATH; it needs /dev/fuse) as KILN_OVERLAY in kiln's environment says: "auto" (the
 * default) when the kernel refuses overlayfs, "fuse" always (for kernels whose overlayfs
 * misbehaves), "native" never. fuse-overlayfs then runs as kiln's child for the length of
 * the run, outside the container; the first time in a process, a notice says so on
 * standard error. Either way the upper dir ends up in overlayfs' format (0/0 whiteouts,
 * the overlay opaque xattr), so a layer does not depend on which of them wrote it.
 * ====================================================================================== */

/* How the number of processes of a run is capped (see sandbox_result). */
enum sandbox_pids_limit {
        SANDBOX_PIDS_NONE = 0,  /* not at all: as root without a pids cgroup to use */
        SANDBOX_PIDS_CGROUP_V1, /* a pids cgroup of the run's own, v1 hierarchy */
        SANDBOX_PIDS_CGROUP_V2, /* the same in the unified hierarchy (pids delegated) */
        SANDBOX_PIDS_RLIMIT,    /* RLIMIT_NPROC, which counts per user in a user namespace */
};

/* podman's default pids limit. */
#define SANDBOX_PIDS_MAX_DEFAULT 2048

enum sandbox_net {
        SANDBOX_NET_HOST = 0, /* the host's network namespace */
        SANDBOX_NET_NONE,     /* a new one with only lo, up */
};

enum sandbox_mount_type {
        SANDBOX_MOUNT_BIND = 0, /* source: a host path (file or directory) */
        SANDBOX_MOUNT_TMPFS,    /* source unused */
        SANDBOX_MOUNT_OVERLAY,  /* lowers (+ upper, work): a merged tree, subdir of it bound */
};

/* An extra mount inside the container (RUN --mount, kiln run -v/--tmpfs). target is an
 * absolute path in the container; a missing target is created as a directory (or an empty
 * file when source is a file) and removed again after the run when the sandbox made it,
 * so mount points never end up in the upper dir.
 *
 * SANDBOX_MOUNT_OVERLAY merges lowers (host dirs in overlay format, bottom first) at a
 * private point outside the container's root, then binds subdir of the merged tree at
 * target. subdir (NULL: "/") is resolved inside that tree as openat2 RESOLVE_IN_ROOT does,
 * so its symlinks never lead out of it. With upper and work (empty dirs on one file
 * system, e.g. in the step's dir under the store's tmp/) the tree is writable and what is
 * written lands in upper, for the caller to throw away; without them it is read-only, and
 * one lower alone is bound as it is. */
struct sandbox_mount {
        enum sandbox_mount_type type;
        const char *source;
        const char *target;
        bool readonly;
        mode_t mode; /* tmpfs mode, and the mode of a created target file; 0: defaults */
        uid_t uid;   /* owner of a tmpfs root; 0 by default */
        gid_t gid;
        size_t size; /* tmpfs size in bytes; 0: the kernel's default */
        /* SANDBOX_MOUNT_OVERLAY */
        const char *const *lowers;
        size_t n_lowers;
        const char *upper, *work;
        const char *subdir;
};

struct sandbox_spec {
        /* The root file system: layer dirs in overlay format, bottom first, and an empty
         * upper dir with an empty work dir beside it on the same file system (both under
         * the store's tmp/). With no lower dirs the upper dir alone is the root. */
        const char *const *lowers;
        size_t n_lowers;
        const char *upper;
        const char *work;
        bool read_only; /* mount the root read-only (kiln run --read-only) */

        /* The process. argv[0] is looked up in PATH from env when it has no '/'. */
        const char *const *argv;
        const char *const *env; /* "K=V"; NULL-terminated */
        const char *cwd;        /* absolute; created (owned by the user) when missing */
        const char *user;       /* "user[:group]" by name or number, resolved in the
                                 * container's /etc/passwd and /etc/group with supplementary
                                 * groups; NULL or "" is root */
        const char *hostname;   /* NULL: a generated one, never the host's */

        enum sandbox_net net;
        unsigned long pids_max;     /* at most this many processes; 0: the default */
        const char *const *cap_add; /* "CAP_NET_ADMIN" or "NET_ADMIN", "ALL"; NULL-terminated */
        const char *const *cap_drop;
        const char *seccomp; /* NULL: the default profile; "unconfined"; or a path to a
                              * profile in docker's JSON format */
        const struct sandbox_mount *mounts;
        size_t n_mounts;

        /* The container's /etc/hosts, /etc/resolv.conf and /etc/hostname are bind-mounted
         * from files the sandbox writes in this directory (under the store's tmp/): the
         * host's resolv.conf and hosts (host network) or loopback-only ones (none). */
        const char *etc_dir;

        /* Standard streams of the process: any fds of the caller (0-2 included), or -1
         * for /dev/null. The process writes to them directly, so output streams. */
        int stdin_fd, stdout_fd, stderr_fd;
};

/* The outcome of a run: exited (status 0..255) or killed by a signal. */
struct sandbox_result {
        bool signaled;
        int status; /* exit status, or the signal number when signaled */
        /* How pids_max was enforced; SANDBOX_PIDS_NONE is worth a warning (kiln run). */
        enum sandbox_pids_limit pids_limit;
};

/* Runs spec to completion. 0 with *ret set when the process ran (whatever its status);
 * < 0 with *err when the sandbox could not be set up or the command could not be started,
 * naming what failed: KERR_NOTFOUND for a command not found ("executable file 'x' not found
 * in $PATH") or a USER or group the image does not have; KERR_INVALID (errnum EACCES,
 * ENOEXEC) for a command that cannot be executed, and for a bad spec or capability name;
 * KERR_UNSUPPORTED when the kernel refuses what is needed (an overlay stack too deep for
 * its mount options: flatten it; overlayfs refused with no fuse-overlayfs to stand in, or
 * KILN_OVERLAY=fuse without it: the message says what to install); KERR_INVALID for a
 * KILN_OVERLAY other than native, fuse or auto. Host paths may be relative; etc_dir is created when
 * missing and its three files rewritten. env gets HOME from the image's passwd when it has
 * none, and PATH lookups fall back to docker's default PATH.
 *
 * While it runs, SIGINT, SIGTERM and SIGHUP to kiln kill the whole container (and then
 * this returns an error with errnum EINTR); the caller's signal mask and dispositions are
 * restored afterwards. The container dies with the calling thread, and its setup runs
 * libc code between clone and exec as after fork: call it when no other thread can hold
 * a libc lock (kiln runs its steps from one thread). */
int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *ret, struct kerr **err);

/* How many lower dirs one overlay mount of sandbox_run takes on this kernel: 500 (the
 * kernel's stack limit) with the new mount API's "lowerdir+" (Linux 6.8), else as many
 * store paths (".../layers/<chain>/diff") as one page of mount(2) options holds, with room
 * to spare (SANDBOX_LEGACY_MAX_LOWERS). A deeper stack must be flattened first. */
#define SANDBOX_LEGACY_MAX_LOWERS 40
size_t sandbox_overlay_max_lowers(void);
