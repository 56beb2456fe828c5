/* SPDX-License-Identifier: Apache-2.0 */
/* A static program that the sandbox tests copy into their images, for what busybox cannot
 * show from inside a container:
 *
 *   kiln-probe syscalls      one line per syscall: "NAME ok" or "NAME ERRNO"
 *   kiln-probe write PATH    open PATH for writing: "ok" or the errno name
 *   kiln-probe mkdir PATH    mkdir PATH: "ok" or the errno name
 *   kiln-probe ro PATH...    "ro" or "rw" for the mount at each PATH (statvfs)
 *   kiln-probe fds           the open fds, as "0 1 2"
 *   kiln-probe bomb SECONDS [TAG]
 *                            starts a shell fork bomb, waits, prints "procs N" (the
 *                            processes in its /proc) and exits, which ends the bomb; every
 *                            shell of the bomb has TAG as an argument (its $0), for the
 *                            host to look for survivors by
 *   kiln-probe segv          dies of SIGSEGV (a fault, which even PID 1 cannot ignore)
 *
 * syscalls and bomb refuse to run unless they are PID 1 (of a container's PID namespace):
 * on a host they would act on the host. The mount targets do not exist, so a mount that
 * the sandbox allows fails with ENOENT instead of changing anything. Test-only; never
 * installed. */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
        static char buf[16];

        switch (e) {
        case 0:
                return "ok";
        case EPERM:
                return "EPERM";
        case EACCES:
                return "EACCES";
        case ENOSYS:
                return "ENOSYS";
        case EINVAL:
                return "EINVAL";
        case ENOENT:
                return "ENOENT";
        case EFAULT:
                return "EFAULT";
        case EBADF:
                return "EBADF";
        case EROFS:
                return "EROFS";
        case EEXIST:
                return "EEXIST";
        case ENOTDIR:
                return "ENOTDIR";
        case EBUSY:
                return "EBUSY";
        case ENOKEY:
                return "ENOKEY";
        case EDQUOT:
                return "EDQUOT";
        case ENOMEM:
                return "ENOMEM";
        case EOPNOTSUPP:
                return "EOPNOTSUPP";
        default:
                snprintf(buf, sizeof(buf), "E%d", e);
                return buf;
        }
}

static void report(const char *name, long rc)
{
        printf("%s %s\n", name, rc < 0 ? errname(errno) : "ok");
}

/* Runs fn in a child, so that a call that succeeds changes nothing here. */
static void in_child(const char *name, long (*fn)(void))
{
        int status = 0;
        pid_t pid = fork();

        if (pid < 0) {
                printf("%s fork:%s\n", name, errname(errno));
                return;
        }
        if (pid == 0)
                _exit(fn() < 0 ? errno : 0);
        waitpid(pid, &status, 0);
        printf("%s %s\n", name, WIFEXITED(status) ? errname(WEXITSTATUS(status)) : "killed");
}

static long do_unshare_user(void)
{
        return unshare(CLONE_NEWUSER);
}

static long do_unshare_mount(void)
{
        return unshare(CLONE_NEWNS);
}

static long do_clone_newns(void)
{
        long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);

        if (pid == 0)
                _exit(0);
        if (pid > 0)
                waitpid((pid_t)pid, NULL, 0);
        return pid < 0 ? -1 : 0;
}

static int syscalls(void)
{
        char cwd[256];

        report("getcwd", getcwd(cwd, sizeof(cwd)) ? 0 : -1);
        report("mount", mount("none", "/kiln-probe-none", "tmpfs", 0, NULL));
        report("umount2", umount2("/kiln-probe-none", 0));
        /* KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3), create: 0. */
        report("keyctl", syscall(SYS_keyctl, 0, -3, 0, 0, 0));
        report("add_key", syscall(SYS_add_key, "user", "kiln-probe", "x", 1, -2));
        report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
        /* BPF_PROG_LOAD (5) of nothing. */
        report("bpf", syscall(SYS_bpf, 5, NULL, 0));
        report("personality-query", syscall(SYS_personality, 0xffffffff));
        report("personality-bad", syscall(SYS_personality, 0x0400000));
        in_child("unshare-user", do_unshare_user);
        in_child("unshare-mount", do_unshare_mount);
        in_child("clone-newns", do_clone_newns);
        return 0;
}

static int fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int list[64], n = 0;

        if (!d) {
                printf("opendir %s\n", errname(errno));
                return 1;
        }
        while ((de = readdir(d)) && n < 64) {
                int fd;

                if (de->d_name[0] == '.')
                        continue;
                fd = atoi(de->d_name);
                if (fd != dirfd(d))
                        list[n++] = fd;
        }
        closedir(d);
        for (int i = 0; i < n; i++)
                for (int k = i + 1; k < n; k++)
                        if (list[k] < list[i]) {
                                int t = list[i];

                                list[i] = list[k];
                                list[k] = t;
                        }
        for (int i = 0; i < n; i++)
                printf("%s%d", i ? " " : "", list[i]);
        printf("\n");
        return 0;
}

static int count_procs(void)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
                        n++;
        closedir(d);
        return n;
}

static int bomb(int seconds, const char *tag)
{
        struct timespec ts = {seconds, 0};
        pid_t pid = fork();

        if (pid < 0) {
                printf("fork %s\n", errname(errno));
                return 1;
        }
        if (pid == 0) {
                execl("/bin/sh", "sh", "-c", "exec 2>/dev/null; f() { f | f & }; f", tag,
                      (char *)NULL);
                _exit(127);
        }
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        printf("procs %d\n", count_procs());
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 2 && (strcmp(argv[1], "syscalls") == 0 || strcmp(argv[1], "bomb") == 0) &&
            getpid() != 1) {
                fprintf(stderr, "kiln-probe: %s runs only as PID 1 of a container\n", argv[1]);
                return 3;
        }
        if (argc >= 2 && strcmp(argv[1], "syscalls") == 0)
                return syscalls();
        if (argc >= 3 && strcmp(argv[1], "write") == 0) {
                int fd = open(argv[2], O_WRONLY | O_CLOEXEC);

                printf("%s\n", fd < 0 ? errname(errno) : "ok");
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "mkdir") == 0) {
                printf("%s\n", mkdir(argv[2], 0755) < 0 ? errname(errno) : "ok");
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "ro") == 0) {
                for (int i = 2; i < argc; i++) {
                        struct statvfs sv;

                        if (statvfs(argv[i], &sv) < 0)
                                printf("%s %s\n", argv[i], errname(errno));
                        else
                                printf("%s %s\n", argv[i], (sv.f_flag & ST_RDONLY) ? "ro" : "rw");
                }
                return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "fds") == 0)
                return fds();
        if (argc >= 3 && strcmp(argv[1], "bomb") == 0)
                return bomb(atoi(argv[2]), argc >= 4 ? argv[3] : "sh");
        if (argc >= 2 && strcmp(argv[1], "segv") == 0) {
                volatile int *p = NULL;

                *p = 1;
                return 0;
        }
        fprintf(stderr, "usage: kiln-probe syscalls|write PATH|mkdir PATH|ro PATH...|fds|bomb N "
                        "[TAG]|segv\n");
        return 2;
}
