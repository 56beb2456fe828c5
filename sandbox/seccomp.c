/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/banned.h"

DEFINE_CLEANUP(scmp_filter_ctx, seccomp_release)

/* ---- docker's default profile ----
 *
 * The same rules as moby's profiles/seccomp/default.json: everything not listed fails with
 * EPERM; the list below is allowed outright; the rest depends on the capabilities the
 * container gets, the architecture, or an argument. */

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define CAPS(c) (UINT64_C(1) << (c))

static const char *const allowed[] = {
        "accept",
        "accept4",
        "access",
        "adjtimex",
        "alarm",
        "bind",
        "brk",
        "capget",
        "capset",
        "chdir",
        "chmod",
        "chown",
        "chown32",
        "clock_adjtime",
        "clock_adjtime64",
        "clock_getres",
        "clock_getres_time64",
        "clock_gettime",
        "clock_gettime64",
        "clock_nanosleep",
        "clock_nanosleep_time64",
        "close",
        "close_range",
        "connect",
        "copy_file_range",
        "creat",
        "dup",
        "dup2",
        "dup3",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_ctl_old",
        "epoll_pwait",
        "epoll_pwait2",
        "epoll_wait",
        "epoll_wait_old",
        "eventfd",
        "eventfd2",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "faccessat",
        "faccessat2",
        "fadvise64",
        "fadvise64_64",
        "fallocate",
        "fanotify_mark",
        "fchdir",
        "fchmod",
        "fchmodat",
        "fchown",
        "fchown32",
        "fchownat",
        "fcntl",
        "fcntl64",
        "fdatasync",
        "fgetxattr",
        "flistxattr",
        "flock",
        "fork",
        "fremovexattr",
        "fsetxattr",
        "fstat",
        "fstat64",
        "fstatat64",
        "fstatfs",
        "fstatfs64",
        "fsync",
        "ftruncate",
        "ftruncate64",
        "futex",
        "futex_time64",
        "futex_waitv",
        "futimesat",
        "getcpu",
        "getcwd",
        "getdents",
        "getdents64",
        "getegid",
        "getegid32",
        "geteuid",
        "geteuid32",
        "getgid",
        "getgid32",
        "getgroups",
        "getgroups32",
        "getitimer",
        "getpeername",
        "getpgid",
        "getpgrp",
        "getpid",
        "getppid",
        "getpriority",
        "getrandom",
        "getresgid",
        "getresgid32",
        "getresuid",
        "getresuid32",
        "getrlimit",
        "get_robust_list",
        "getrusage",
        "getsid",
        "getsockname",
        "getsockopt",
        "get_thread_area",
        "gettid",
        "gettimeofday",
        "getuid",
        "getuid32",
        "getxattr",
        "inotify_add_watch",
        "inotify_init",
        "inotify_init1",
        "inotify_rm_watch",
        "io_cancel",
        "ioctl",
        "io_destroy",
        "io_getevents",
        "io_pgetevents",
        "io_pgetevents_time64",
        "ioprio_get",
        "ioprio_set",
        "io_setup",
        "io_submit",
        "io_uring_enter",
        "io_uring_register",
        "io_uring_setup",
        "ipc",
        "kill",
        "landlock_add_rule",
        "landlock_create_ruleset",
        "landlock_restrict_self",
        "lchown",
        "lchown32",
        "lgetxattr",
        "link",
        "linkat",
        "listen",
        "listxattr",
        "llistxattr",
        "_llseek",
        "lremovexattr",
        "lseek",
        "lsetxattr",
        "lstat",
        "lstat64",
        "madvise",
        "membarrier",
        "memfd_create",
        "memfd_secret",
        "mincore",
        "mkdir",
        "mkdirat",
        "mknod",
        "mknodat",
        "mlock",
        "mlock2",
        "mlockall",
        "mmap",
        "mmap2",
        "mprotect",
        "mq_getsetattr",
        "mq_notify",
        "mq_open",
        "mq_timedreceive",
        "mq_timedreceive_time64",
        "mq_timedsend",
        "mq_timedsend_time64",
        "mq_unlink",
        "mremap",
        "msgctl",
        "msgget",
        "msgrcv",
        "msgsnd",
        "msync",
        "munlock",
        "munlockall",
        "munmap",
        "name_to_handle_at",
        "nanosleep",
        "newfstatat",
        "_newselect",
        "open",
        "openat",
        "openat2",
        "pause",
        "pidfd_open",
        "pidfd_send_signal",
        "pipe",
        "pipe2",
        "pkey_alloc",
        "pkey_free",
        "pkey_mprotect",
        "poll",
        "ppoll",
        "ppoll_time64",
        "prctl",
        "pread64",
        "preadv",
        "preadv2",
        "prlimit64",
        "process_mrelease",
        "pselect6",
        "pselect6_time64",
        "pwrite64",
        "pwritev",
        "pwritev2",
        "read",
        "readahead",
        "readlink",
        "readlinkat",
        "readv",
        "recv",
        "recvfrom",
        "recvmmsg",
        "recvmmsg_time64",
        "recvmsg",
        "remap_file_pages",
        "removexattr",
        "rename",
        "renameat",
        "renameat2",
        "restart_syscall",
        "rmdir",
        "rseq",
        "rt_sigaction",
        "rt_sigpending",
        "rt_sigprocmask",
        "rt_sigqueueinfo",
        "rt_sigreturn",
        "rt_sigsuspend",
        "rt_sigtimedwait",
        "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo",
        "sched_getaffinity",
        "sched_getattr",
        "sched_getparam",
        "sched_get_priority_max",
        "sched_get_priority_min",
        "sched_getscheduler",
        "sched_rr_get_interval",
        "sched_rr_get_interval_time64",
        "sched_setaffinity",
        "sched_setattr",
        "sched_setparam",
        "sched_setscheduler",
        "sched_yield",
        "seccomp",
        "select",
        "semctl",
        "semget",
        "semop",
        "semtimedop",
        "semtimedop_time64",
        "send",
        "sendfile",
        "sendfile64",
        "sendmmsg",
        "sendmsg",
        "sendto",
        "setfsgid",
        "setfsgid32",
        "setfsuid",
        "setfsuid32",
        "setgid",
        "setgid32",
        "setgroups",
        "setgroups32",
        "setitimer",
        "setpgid",
        "setpriority",
        "setregid",
        "setregid32",
        "setresgid",
        "setresgid32",
        "setresuid",
        "setresuid32",
        "setreuid",
        "setreuid32",
        "setrlimit",
        "set_robust_list",
        "setsid",
        "setsockopt",
        "set_thread_area",
        "set_tid_address",
        "setuid",
        "setuid32",
        "setxattr",
        "shmat",
        "shmctl",
        "shmdt",
        "shmget",
        "shutdown",
        "sigaltstack",
        "signalfd",
        "signalfd4",
        "sigprocmask",
        "sigreturn",
        "socketcall",
        "socketpair",
        "splice",
        "stat",
        "stat64",
        "statfs",
        "statfs64",
        "statx",
        "symlink",
        "symlinkat",
        "sync",
        "sync_file_range",
        "syncfs",
        "sysinfo",
        "tee",
        "tgkill",
        "time",
        "timer_create",
        "timer_delete",
        "timer_getoverrun",
        "timer_gettime",
        "timer_gettime64",
        "timer_settime",
        "timer_settime64",
        "timerfd_create",
        "timerfd_gettime",
        "timerfd_gettime64",
        "timerfd_settime",
        "timerfd_settime64",
        "times",
        "tkill",
        "truncate",
        "truncate64",
        "ugetrlimit",
        "umask",
        "uname",
        "unlink",
        "unlinkat",
        "utime",
        "utimensat",
        "utimensat_time64",
        "utimes",
        "vfork",
        "vmsplice",
        "wait4",
        "waitid",
        "waitpid",
        "write",
        "writev",
        NULL,
};

/* The namespace flags that clone may not carry without CAP_SYS_ADMIN. */
#define CLONE_NS_FLAGS                                                                             \
        (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |             \
         CLONE_NEWPID | CLONE_NEWNET)
#define AF_VSOCK_FAMILY 40

static const struct sbx_sc_arg arg_not_vsock[] = {{0, SCMP_CMP_NE, AF_VSOCK_FAMILY, 0}};
static const struct sbx_sc_arg arg_linux[] = {{0, SCMP_CMP_EQ, 0x0, 0}};
static const struct sbx_sc_arg arg_unamefix[] = {{0, SCMP_CMP_EQ, 0x8, 0}};
static const struct sbx_sc_arg arg_linux32[] = {{0, SCMP_CMP_EQ, 0x20000, 0}};
static const struct sbx_sc_arg arg_linux32_unamefix[] = {{0, SCMP_CMP_EQ, 0x20008, 0}};
static const struct sbx_sc_arg arg_query[] = {{0, SCMP_CMP_EQ, 0xffffffff, 0}};
static const struct sbx_sc_arg arg0_no_ns[] = {{0, SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0}};
static const struct sbx_sc_arg arg1_no_ns[] = {{1, SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0}};

#define ARGS(a) .args = (a), .n_args = ARRAY_SIZE(a)
#define ARCHES(...) .arches = NAMES(__VA_ARGS__)

static const struct sbx_sc_rule default_rules[] = {
        {.names = allowed, .action = SCMP_ACT_ALLOW},
        {.names = NAMES("process_vm_readv", "process_vm_writev", "ptrace"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.min_major = 4, .min_minor = 8}},
        {.names = NAMES("socket"), .action = SCMP_ACT_ALLOW, ARGS(arg_not_vsock)},
        /* personality: only the values glibc and util-linux's setarch use. */
        {.names = NAMES("personality"), .action = SCMP_ACT_ALLOW, ARGS(arg_linux)},
        {.names = NAMES("personality"), .action = SCMP_ACT_ALLOW, ARGS(arg_unamefix)},
        {.names = NAMES("personality"), .action = SCMP_ACT_ALLOW, ARGS(arg_linux32)},
        {.names = NAMES("personality"), .action = SCMP_ACT_ALLOW, ARGS(arg_linux32_unamefix)},
        {.names = NAMES("personality"), .action = SCMP_ACT_ALLOW, ARGS(arg_query)},
        {.names = NAMES("sync_file_range2", "swapcontext"),
         .action = SCMP_ACT_ALLOW,
         .includes = {ARCHES("ppc64le")}},
        {.names = NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                        "cacheflush", "set_tls"),
         .action = SCMP_ACT_ALLOW,
         .includes = {ARCHES("arm", "arm64")}},
        {.names = NAMES("arch_prctl"),
         .action = SCMP_ACT_ALLOW,
         .includes = {ARCHES("amd64", "x32")}},
        {.names = NAMES("modify_ldt"),
         .action = SCMP_ACT_ALLOW,
         .includes = {ARCHES("amd64", "x32", "x86")}},
        {.names = NAMES("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
         .action = SCMP_ACT_ALLOW,
         .includes = {ARCHES("s390", "s390x")}},
        {.names = NAMES("riscv_flush_icache"),
         .action = SCMP_ACT_ALLOW,
         .includes = {ARCHES("riscv64")}},
        {.names = NAMES("open_by_handle_at"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_DAC_READ_SEARCH)}},
        {.names = NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                        "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
                        "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
                        "sethostname", "setns", "syslog", "umount", "umount2", "unshare"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_ADMIN)}},
        /* Without CAP_SYS_ADMIN, clone only without namespace flags (its first argument,
         * the second on s390), and clone3 (whose flags seccomp cannot see) fails with
         * ENOSYS so that libc falls back to clone. */
        {.names = NAMES("clone"),
         .action = SCMP_ACT_ALLOW,
         ARGS(arg0_no_ns),
         .excludes = {.caps = CAPS(CAP_SYS_ADMIN), ARCHES("s390", "s390x")}},
        {.names = NAMES("clone"),
         .action = SCMP_ACT_ALLOW,
         ARGS(arg1_no_ns),
         .includes = {ARCHES("s390", "s390x")},
         .excludes = {.caps = CAPS(CAP_SYS_ADMIN)}},
        {.names = NAMES("clone3"),
         .action = SCMP_ACT_ERRNO(ENOSYS),
         .excludes = {.caps = CAPS(CAP_SYS_ADMIN)}},
        {.names = NAMES("reboot"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_BOOT)}},
        {.names = NAMES("chroot"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_CHROOT)}},
        {.names = NAMES("delete_module", "init_module", "finit_module"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_MODULE)}},
        {.names = NAMES("acct"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_PACCT)}},
        {.names = NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                        "process_vm_writev", "ptrace"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_PTRACE)}},
        {.names = NAMES("iopl", "ioperm"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_RAWIO)}},
        {.names = NAMES("settimeofday", "stime", "clock_settime", "clock_settime64"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_TIME)}},
        {.names = NAMES("vhangup"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_TTY_CONFIG)}},
        {.names = NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYS_NICE)}},
        {.names = NAMES("syslog"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_SYSLOG)}},
        {.names = NAMES("bpf"), .action = SCMP_ACT_ALLOW, .includes = {.caps = CAPS(CAP_BPF)}},
        {.names = NAMES("perf_event_open"),
         .action = SCMP_ACT_ALLOW,
         .includes = {.caps = CAPS(CAP_PERFMON)}},
};

static const struct sbx_sc_profile default_profile = {
        .default_action = SCMP_ACT_ERRNO(EPERM),
        .rules = default_rules,
        .n_rules = ARRAY_SIZE(default_rules),
};

const struct sbx_sc_profile *sbx_seccomp_default_profile(void)
{
        return &default_profile;
}

/* ---- building the filter ---- */

/* libseccomp-golang's names, which docker's profiles use in includes and excludes. */
static const struct {
        uint32_t arch;
        const char *name;
} arch_names[] = {
        {SCMP_ARCH_X86, "x86"},
        {SCMP_ARCH_X86_64, "amd64"},
        {SCMP_ARCH_X32, "x32"},
        {SCMP_ARCH_ARM, "arm"},
        {SCMP_ARCH_AARCH64, "arm64"},
        {SCMP_ARCH_MIPS, "mips"},
        {SCMP_ARCH_MIPS64, "mips64"},
        {SCMP_ARCH_MIPS64N32, "mips64n32"},
        {SCMP_ARCH_MIPSEL, "mipsel"},
        {SCMP_ARCH_MIPSEL64, "mipsel64"},
        {SCMP_ARCH_MIPSEL64N32, "mipsel64n32"},
        {SCMP_ARCH_PPC, "ppc"},
        {SCMP_ARCH_PPC64, "ppc64"},
        {SCMP_ARCH_PPC64LE, "ppc64le"},
        {SCMP_ARCH_S390, "s390"},
        {SCMP_ARCH_S390X, "s390x"},
        {SCMP_ARCH_RISCV64, "riscv64"},
};

/* docker's archMap: the compatibility architectures a native one runs. */
static const uint32_t sub_arches[][3] = {
        {SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32},
        {SCMP_ARCH_AARCH64, SCMP_ARCH_ARM, 0},
        {SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64N32},
        {SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64},
        {SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64N32},
        {SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64},
        {SCMP_ARCH_S390X, SCMP_ARCH_S390, 0},
};

static const char *native_arch_name(void)
{
        uint32_t native = seccomp_arch_native();

        for (size_t i = 0; i < ARRAY_SIZE(arch_names); i++)
                if (arch_names[i].arch == native)
                        return arch_names[i].name;
        return "";
}

static bool in_list(const char *const *list, const char *s)
{
        for (const char *const *p = list; p && *p; p++)
                if (strcmp(*p, s) == 0)
                        return true;
        return false;
}

static void kernel_version(unsigned *major, unsigned *minor)
{
        struct utsname u;

        *major = *minor = 0;
        if (uname(&u) == 0 && sscanf(u.release, "%u.%u", major, minor) < 2)
                *minor = 0;
}

/* docker's includes/excludes: all included caps held, native arch listed, kernel new
 * enough; no excluded cap held, native arch not excluded. */
static bool rule_applies(const struct sbx_sc_rule *r, uint64_t caps, const char *arch)
{
        const struct sbx_sc_cond *in = &r->includes, *ex = &r->excludes;

        if ((in->caps & caps) != in->caps)
                return false;
        if (in->arches && in->arches[0] && !in_list(in->arches, arch))
                return false;
        if (in->min_major || in->min_minor) {
                unsigned major, minor;

                kernel_version(&major, &minor);
                if (major < in->min_major || (major == in->min_major && minor < in->min_minor))
                        return false;
        }
        if (ex->caps & caps)
                return false;
        if (ex->arches && in_list(ex->arches, arch))
                return false;
        return true;
}

static int add_arches(scmp_filter_ctx ctx, const struct sbx_sc_profile *p, struct kerr **err)
{
        uint32_t native = seccomp_arch_native();
        const uint32_t *list = p->arches;

        if (!list) {
                for (size_t i = 0; i < ARRAY_SIZE(sub_arches); i++)
                        if (sub_arches[i][0] == native)
                                list = &sub_arches[i][1];
                if (!list)
                        return 0;
        }
        for (size_t i = 0; list[i] && (p->arches || i < 2); i++) {
                int r;

                if (list[i] == native)
                        continue;
                r = seccomp_arch_add(ctx, list[i]);
                if (r < 0 && r != -EEXIST)
                        return kerr_set(err, -r, KERR_INVALID,
                                        "seccomp: add architecture %#x to the filter", list[i]);
        }
        return 0;
}

static int add_rule(scmp_filter_ctx ctx, const struct sbx_sc_rule *r, const char *name,
                    struct kerr **err)
{
        struct scmp_arg_cmp conds[SBX_SC_MAX_ARGS * 2];
        unsigned count[SBX_SC_MAX_ARGS] = {0};
        bool repeated = false;
        int nr = seccomp_syscall_resolve_name(name);
        int rc = 0;

        /* A name this libseccomp does not know is skipped, as runc does. */
        if (nr == __NR_SCMP_ERROR)
                return 0;
        for (size_t i = 0; i < r->n_args && i < ARRAY_SIZE(conds); i++) {
                conds[i] = (struct scmp_arg_cmp){
                        .arg = r->args[i].index,
                        .op = (enum scmp_compare)r->args[i].op,
                        .datum_a = r->args[i].value,
                        .datum_b = r->args[i].value_two,
                };
                if (r->args[i].index < SBX_SC_MAX_ARGS && ++count[r->args[i].index] > 1)
                        repeated = true;
        }
        /* libseccomp takes one condition per argument in a rule; runc adds one rule per
         * condition when a profile repeats an argument. */
        if (repeated) {
                for (size_t i = 0; i < r->n_args && rc == 0; i++)
                        rc = seccomp_rule_add_array(ctx, r->action, nr, 1, &conds[i]);
        } else {
                rc = seccomp_rule_add_array(ctx, r->action, nr, (unsigned)r->n_args, conds);
        }
        if (rc < 0)
                return kerr_set(err, -rc, KERR_INVALID, "seccomp: add the rule for '%s'", name);
        return 0;
}

int sbx_seccomp_build(const struct sbx_sc_profile *p, uint64_t caps, void **ret_ctx,
                      struct kerr **err)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(p->default_action);
        const char *arch = native_arch_name();
        int rc;

        if (!ctx)
                return kerr_set(err, 0, KERR_INVALID, "seccomp: invalid default action %#x",
                                p->default_action);
        /* Loading needs no privilege with no_new_privs, which the sandbox sets anyway. */
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
        if (rc < 0)
                return kerr_set(err, -rc, KERR_INTERNAL, "seccomp: set no_new_privs");
        if (add_arches(ctx, p, err) < 0)
                return -1;
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct sbx_sc_rule *r = &p->rules[i];

                if (!rule_applies(r, caps, arch) || r->action == p->default_action)
                        continue;
                for (const char *const *n = r->names; n && *n; n++)
                        if (add_rule(ctx, r, *n, err) < 0)
                                return -1;
        }
        *ret_ctx = TAKE_PTR(ctx);
        return 0;
}

void sbx_seccomp_free(void *ctx)
{
        if (ctx)
                seccomp_release(ctx);
}

int sbx_seccomp_load(void *ctx, struct kerr **err)
{
        int rc = seccomp_load(ctx);

        if (rc < 0)
                return kerr_set(err, -rc, KERR_IO, "load the seccomp filter");
        return 0;
}
