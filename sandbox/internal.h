/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Cross-file internals of the sandbox module (run.c and its helpers). Nothing outside
 * sandbox/ includes this, except the unit tests. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

struct kerr;
struct kbuf;

/* Where the host's root is seen while the container's root is assembled (see rootfs.c). */
#define SBX_OLDROOT "/oldroot"
#define SBX_NEWROOT "/newroot"

/* ---- chan.c: what the container's setup tells sandbox_run before it execs ----
 *
 * The child writes messages to a close-on-exec pipe: a record for each file or directory it
 * creates in the root file system (so that the parent can remove them after the run), 'X'
 * right before execve, and an error when setup or exec fails. End of file after 'X' means
 * that the command runs. */

enum sbx_created_kind {
        SBX_CREATED_FILE = 'F',   /* an empty file made as a mount target */
        SBX_CREATED_DIR = 'D',    /* a directory made as (or on the way to) a mount target */
        SBX_CREATED_COPYUP = 'C', /* a lower directory that creating in it copied up */
};

struct sbx_created {
        enum sbx_created_kind kind;
        char *path;  /* relative to the root (= the upper dir), no symlinks */
        mode_t mode; /* COPYUP: the directory's mode, owner before the copy-up */
        uid_t uid;
        gid_t gid;
};

struct sbx_created_list {
        struct sbx_created *v;
        size_t n, cap;
};

void sbx_created_list_release(struct sbx_created_list *l);
void sbx_created_list_add(struct sbx_created_list *l, const struct sbx_created *c);
bool sbx_created_list_has(const struct sbx_created_list *l, const char *path);

/* Child side; each returns 0 or -1 (errno set). */
int sbx_chan_send_created(int fd, const struct sbx_created *c);
int sbx_chan_send_exec(int fd);
void sbx_chan_send_error(int fd, const struct kerr *e);
/* Stack idx was mounted for fuse-overlayfs: refused is the kernel's errno when it refused
 * overlayfs (0 when fuse-overlayfs was asked for), why its words. */
int sbx_chan_send_fuse(int fd, size_t idx, int refused, const char *why);

/* A fuse-overlayfs mount the parent has to serve. */
struct sbx_chan_fuse {
        size_t idx;
        int refused;
        char *why;
};

/* Parent side: a message decoder fed with what was read from the pipe. */
struct sbx_chan_reader {
        struct kbuf *buf;
        bool exec_started;
        struct kerr *error;
        struct sbx_chan_fuse *fuse; /* fuse-overlayfs mounts not yet served */
        size_t n_fuse;
};
/* Consumes the complete messages in r->buf, adding records to list (and fuse mounts to
 * r->fuse, which the caller empties). -1 on a malformed message. */
int sbx_chan_parse(struct sbx_chan_reader *r, struct sbx_created_list *list);
/* Frees r->fuse and empties it. */
void sbx_chan_fuse_clear(struct sbx_chan_reader *r);

/* ---- target.c: mount targets inside the container's root ---- */

/* The state of the root while it is assembled (child side). */
struct sbx_root {
        int rootfd;                   /* the container's root directory (O_PATH) */
        int upperfd;                  /* the upper dir when the root is an overlay, else -1 */
        uint64_t mnt_id;              /* the root's mount id */
        unsigned n_staged;            /* overlay mounts staged so far (rootfs.c) */
        int chan;                     /* where records go */
        struct sbx_created_list seen; /* what was recorded (to record each once) */
};

/* Resolves target (an absolute path in the container) below r->rootfd with symlinks followed
 * inside the root, creating what is missing: parent directories, and the last component as a
 * directory (dir) or an empty file of file_mode. What is created in the root file system is
 * recorded on r->chan; creating inside any other mount than a tmpfs is refused. Returns an
 * O_PATH fd of the target, and its path relative to the root in *ret_rel (may be NULL). */
int sbx_target_open(struct sbx_root *r, const char *target, bool dir, mode_t file_mode,
                    char **ret_rel, struct kerr **err);
/* The mount id of fd (statx STATX_MNT_ID). */
int sbx_mount_id(int fd, uint64_t *ret);

/* "/oldroot/proc/self/fd/N": a path that mount(2) resolves to fd. */
void sbx_fd_path(char *buf, size_t size, int fd);

/* Parent side, after the run: removes what the setup recorded from the upper dir, latest
 * first, leaving what the command changed or filled. */
int sbx_created_cleanup(const char *upper, const struct sbx_created_list *l, struct kerr **err);

/* ---- rootfs.c ---- */

struct sbx_child;

/* In the child (new mount namespace): builds the root at /newroot from spec, with /proc,
 * /dev, /sys, the /etc files and the extra mounts, and pivots into it. */
int sbx_rootfs_setup(const struct sbx_child *c, struct kerr **err);
/* After the pivot: makes "/" read-only. */
int sbx_rootfs_make_readonly(struct kerr **err);
/* Makes the mount at path read-only, keeping its other flags; recursive for rbind trees. */
int sbx_remount_ro(const char *path, bool recursive, struct kerr **err);

/* ---- overlay.c ---- */

/* A stack of layers to merge: host paths (absolute, normalised; seen below SBX_OLDROOT),
 * bottom first, and an upper dir with its work dir, or neither (a read-only tree of at
 * least two lowers). */
struct sbx_stack {
        const char *const *lowers;
        size_t n_lowers;
        const char *upper, *work;
};

/* Child: mounts the stack at target, stack idx of the run (see struct sbx_fuse): with
 * overlayfs, or through the run's /dev/fuse fd for fuse-overlayfs when the run's mode says
 * so or the kernel refuses overlayfs (then the parent is told on c->chan to start the
 * daemon, and the call waits for its first answer). */
int sbx_overlay_mount(const struct sbx_child *c, size_t idx, const struct sbx_stack *s,
                      const char *target, struct kerr **err);
/* For tests: pretend the new mount API has no "lowerdir+" (kernels before 6.8). */
void sbx_overlay_set_legacy(bool legacy);
#define SBX_OVERLAY_MAX_LAYERS 500 /* the kernel's OVL_MAX_STACK */

/* ---- fuse.c: fuse-overlayfs, when the kernel will not mount overlayfs ----
 *
 * The parent opens /dev/fuse before the clone, one fd per stack the run may merge, so that
 * the child inherits the same open files. The child mounts "fuse" on its target with
 * fd=N (in its own mount namespace: nothing is mounted on the host side) and tells the
 * parent, which starts fuse-overlayfs on its copy of that fd ("/dev/fd/N" as the mount
 * point: libfuse then serves the connection without mounting anything). The daemon is
 * kiln's child, not the container's: the container can neither see it, nor signal it, nor
 * wait for it, and it is still there to take the writes the kernel flushes while the
 * container's mount namespace goes away. It is killed and reaped when the container has
 * been, and dies with kiln (PR_SET_PDEATHSIG). */

enum sbx_overlay_mode {
        SBX_OVERLAY_AUTO = 0, /* overlayfs, or fuse-overlayfs when the kernel refuses it */
        SBX_OVERLAY_NATIVE,   /* overlayfs only */
        SBX_OVERLAY_FUSE,     /* fuse-overlayfs only */
};

struct sbx_fuse_mount {
        int fd;      /* /dev/fuse for this stack, or -1 (none, or handed to its daemon) */
        pid_t pid;   /* the daemon serving it; 0 before one was started, -1 once reaped */
        int errfd;   /* the read end of its standard error, or -1 */
        bool used;   /* the child mounted it */
        int status;  /* the daemon's wait status, once reaped */
        bool exited; /* reaped, after exiting on its own (not killed by kiln) */
};

/* Stack 0 is the root (when it has lower dirs), stack 1 + i the spec's mount i (when it is
 * an overlay of more than one dir or with an upper dir). */
struct sbx_fuse {
        enum sbx_overlay_mode mode;
        bool first;     /* skip overlayfs: KILN_OVERLAY=fuse, or the kernel refused it before */
        char *program;  /* fuse-overlayfs in PATH, or NULL */
        char *unusable; /* why fuse-overlayfs cannot stand in, or NULL */
        bool pretend_refused; /* sbx_fuse_pretend_refused() */
        struct sbx_fuse_mount *m;
        size_t n;
};

/* For tests: the child pretends that the kernel refuses overlayfs (EPERM). Either way this
 * forgets what the process found out about the kernel and whether it said so. */
void sbx_fuse_pretend_refused(bool refused);

/* Parent, before the clone: reads KILN_OVERLAY (KERR_INVALID for anything but native, fuse
 * or auto), looks for fuse-overlayfs and opens /dev/fuse for each stack of s that may need
 * it. With KILN_OVERLAY=fuse a missing program or an unusable /dev/fuse is an error
 * (KERR_UNSUPPORTED, saying what to install); otherwise it is noted in f->unusable. */
int sbx_fuse_prepare(struct sbx_fuse *f, const struct sandbox_spec *s, struct kerr **err);
/* Parent: starts fuse-overlayfs on stack idx of s (after the child mounted it). refused is
 * the kernel's errno when overlayfs was refused (0: fuse-overlayfs was asked for) and why
 * its words; the first time in this process, a notice says that fuse-overlayfs is used. */
int sbx_fuse_start(struct sbx_fuse *f, const struct sandbox_spec *s, size_t idx, int refused,
                   const char *why, struct kerr **err);
/* Parent, once the container is reaped: kills and reaps the daemons. Returns -1 with *err
 * when one of them had exited on its own with a failure before (its standard error in the
 * message), since the container may then have lost writes. */
int sbx_fuse_stop(struct sbx_fuse *f, struct kerr **err);
/* Closes what is left and frees; stops the daemons first when that was not done. */
void sbx_fuse_release(struct sbx_fuse *f);

/* ---- fuse-upper.c ---- */

/* After fuse-overlayfs: rewrites the upper dir it left into overlay's own format, so that
 * it is a layer as the kernel's overlayfs writes them: ".wh.NAME" files become whiteouts,
 * ".wh..wh..opq" files and user.fuseoverlayfs.opaque become the overlay opaque xattr
 * (trusted.overlay.opaque, or user.overlay.opaque where trusted.* is not allowed), the
 * other user.fuseoverlayfs.* xattrs go, and whiteouts and opaque marks go where overlayfs
 * would not have made them: where lowers (host paths, bottom first) have nothing. Where
 * the upper dir's file system takes neither whiteouts nor overlay xattrs (an overlayfs),
 * the ".wh." files stay, as a layer tar says the same. */
int sbx_fuse_upper_normalize(const char *upper, const char *const *lowers, size_t n_lowers,
                             struct kerr **err);

/* ---- caps.c ---- */

/* The capability number named name ("CAP_CHOWN", "chown", …), or -1. */
int sbx_cap_from_name(const char *name);
/* "CAP_CHOWN" for 0, …; NULL past the last known. */
const char *sbx_cap_name(int cap);
/* docker's default set. */
uint64_t sbx_caps_default(void);
/* The highest capability the kernel knows (/proc/sys/kernel/cap_last_cap). */
int sbx_cap_last(void);
/* docker's rules: add ALL (minus drop), drop ALL (only add), or default - drop + add.
 * Unknown names fail with KERR_INVALID naming them; a named cap kiln does not hold fails
 * with KERR_UNSUPPORTED; ALL means every cap kiln holds. */
int sbx_caps_compute(const char *const *add, const char *const *drop, uint64_t *ret,
                     struct kerr **err);
/* Child, as uid 0 before switching user: drops the bounding set to set. */
int sbx_caps_bound(uint64_t set, struct kerr **err);
/* Child, after switching user: permitted/effective/inheritable (and ambient) to set for
 * uid 0, empty for any other user. */
int sbx_caps_apply(uint64_t set, bool root_user, struct kerr **err);

/* ---- seccomp.c, seccomp-json.c ---- */

#define SBX_SC_MAX_ARGS 6

struct sbx_sc_arg {
        unsigned index;
        int op; /* enum scmp_compare */
        uint64_t value, value_two;
};

/* Conditions of a rule: caps (all must be held for includes, any held excludes), arches
 * (docker's names: "amd64", "x86", …), a minimum kernel version. */
struct sbx_sc_cond {
        uint64_t caps;
        const char *const *arches;
        unsigned min_major, min_minor; /* 0.0: none */
};

struct sbx_sc_rule {
        const char *const *names;
        uint32_t action; /* SCMP_ACT_*, with the errno folded in */
        const struct sbx_sc_arg *args;
        size_t n_args;
        struct sbx_sc_cond includes, excludes;
};

struct sbx_sc_profile {
        uint32_t default_action;
        const uint32_t *arches; /* SCMP_ARCH_*, 0-terminated; NULL: native + docker's map */
        const struct sbx_sc_rule *rules;
        size_t n_rules;
};

/* docker's default profile (moby profiles/seccomp/default.json), as kiln's own table. */
const struct sbx_sc_profile *sbx_seccomp_default_profile(void);

/* Builds the filter of profile for a container whose bounding set is caps. */
int sbx_seccomp_build(const struct sbx_sc_profile *p, uint64_t caps, void **ret_ctx,
                      struct kerr **err);
/* Frees a filter from sbx_seccomp_build; NULL is fine. */
void sbx_seccomp_free(void *ctx);
/* Child, last thing before exec. */
int sbx_seccomp_load(void *ctx, struct kerr **err);

/* A profile loaded from docker's JSON format; everything it points to is owned by it. */
struct sbx_sc_loaded;
int sbx_seccomp_load_json(const char *path, struct sbx_sc_loaded **ret, struct kerr **err);
const struct sbx_sc_profile *sbx_seccomp_loaded_profile(const struct sbx_sc_loaded *l);
void sbx_seccomp_loaded_free(struct sbx_sc_loaded *l);

/* ---- user.c ---- */

struct sbx_user {
        uid_t uid;
        gid_t gid;
        gid_t *groups; /* supplementary groups */
        size_t n_groups;
        char *home;
};

/* Resolves spec ("user[:group]", names or numbers; NULL or "" is root) in passwd and
 * group (contents of the container's /etc/passwd and /etc/group, NULL when absent) with
 * runc's rules. Unknown names fail with KERR_NOTFOUND naming them. */
int sbx_user_resolve_in(const char *spec, const char *passwd, const char *group,
                        struct sbx_user *ret, struct kerr **err);
/* As sbx_user_resolve_in with the files of the current root (after pivot_root). */
int sbx_user_resolve(const char *spec, struct sbx_user *ret, struct kerr **err);
void sbx_user_release(struct sbx_user *u);
/* Child: setgroups, setresgid, setresuid. */
int sbx_user_switch(const struct sbx_user *u, struct kerr **err);

/* ---- net.c ---- */

/* Child, in a new network namespace: brings lo up. */
int sbx_loopback_up(struct kerr **err);
/* Parent: writes hosts, resolv.conf and hostname into etc_dir (created when missing). */
int sbx_write_etc_files(const char *etc_dir, enum sandbox_net net, const char *hostname,
                        struct kerr **err);

/* ---- limits.c ---- */

struct sbx_limit {
        enum sandbox_pids_limit kind;
        unsigned long max;
        char *cgroup_dir; /* CGROUP_V1/V2: the run's cgroup */
};

/* Parent: picks how to cap the number of processes at max (a pids cgroup when one can be
 * made, else RLIMIT_NPROC inside a user namespace, else nothing) and prepares it. */
void sbx_limit_prepare(struct sbx_limit *l, unsigned long max, bool userns);
/* Parent: moves pid into the run's cgroup (CGROUP kinds). */
int sbx_limit_attach(const struct sbx_limit *l, pid_t pid, struct kerr **err);
/* Child: sets RLIMIT_NPROC (RLIMIT kind), never above the hard limit. */
int sbx_limit_child(const struct sbx_limit *l, struct kerr **err);
/* Parent, after the run: removes the cgroup. */
void sbx_limit_release(struct sbx_limit *l);

/* ---- exec.c ---- */

/* Child, after the user switch: sets up fds 0-2, closes every other fd except keep_fd,
 * loads the seccomp filter (NULL: none), tells chan, and execs. Returns only on failure. */
int sbx_exec(const struct sandbox_spec *s, const struct sbx_user *u, void *seccomp, int chan,
             struct kerr **err);
/* Whether env (NULL-terminated "K=V") sets key. */
const char *sbx_env_get(const char *const *env, const char *key);

/* ---- run.c ---- */

/* What the child gets from sandbox_run (in its copy of the parent's memory). */
struct sbx_child {
        const struct sandbox_spec *spec; /* with absolute host paths */
        bool userns;                     /* kiln runs in a user namespace */
        const char *hostname;
        uint64_t caps;
        void *seccomp; /* scmp_filter_ctx, or NULL for unconfined */
        const struct sbx_limit *limit;
        const struct sbx_fuse *fuse; /* how the layers are merged */
        int chan;                    /* write end of the message pipe */
        int go_fd;                   /* read end of the go pipe */
};

/* Whether the calling process is in a user namespace other than the initial one. */
bool sbx_in_user_namespace(void);

/* ---- userns.c ---- */

/* The first executable name in $PATH (or the usual directories when PATH is unset), as a
 * new string; NULL when there is none. */
char *sbx_find_program(const char *name);
