/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* Indexed by capability number, as <linux/capability.h> numbers them. */
static const char *const cap_names[] = {
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
};

#define BIT(c) (UINT64_C(1) << (c))

/* docker's default set (moby oci/caps/defaults.go). */
static const int default_caps[] = {
        CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
        CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
        CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
        CAP_KILL,    CAP_AUDIT_WRITE,
};

int sbx_cap_from_name(const char *name)
{
        if (strncasecmp(name, "CAP_", 4) == 0)
                name += 4;
        for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
                if (strcasecmp(name, cap_names[i] + 4) == 0)
                        return (int)i;
        return -1;
}

const char *sbx_cap_name(int cap)
{
        if (cap < 0 || (size_t)cap >= ARRAY_SIZE(cap_names))
                return NULL;
        return cap_names[cap];
}

uint64_t sbx_caps_default(void)
{
        uint64_t set = 0;

        for (size_t i = 0; i < ARRAY_SIZE(default_caps); i++)
                set |= BIT(default_caps[i]);
        return set;
}

int sbx_cap_last(void)
{
        static int last = -1;
        char buf[16] = {0};
        int fd;

        if (last >= 0)
                return last;
        last = CAP_LAST_CAP;
        fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = kfs_read_all(fd, buf, sizeof(buf) - 1);

                if (n > 0) {
                        long v = strtol(buf, NULL, 10);

                        if (v > 0 && v < 64)
                                last = (int)v;
                }
                kfs_close(fd);
        }
        return last;
}

/* The capabilities the caller can pass on: its permitted set within its bounding set. */
static uint64_t held_caps(void)
{
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        uint64_t permitted, held = 0;
        int last = sbx_cap_last();

        if (syscall(SYS_capget, &h, d) < 0)
                return 0;
        permitted = (uint64_t)d[0].permitted | ((uint64_t)d[1].permitted << 32);
        for (int c = 0; c <= last; c++)
                if ((permitted & BIT(c)) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
                        held |= BIT(c);
        return held;
}

/* Parses a list into a mask; *ret_all when it holds "ALL". */
static int parse_list(const char *const *names, const char *what, uint64_t *ret, bool *ret_all,
                      struct kerr **err)
{
        *ret = 0;
        *ret_all = false;
        for (const char *const *p = names; p && *p; p++) {
                int c;

                if (strcasecmp(*p, "ALL") == 0) {
                        *ret_all = true;
                        continue;
                }
                c = sbx_cap_from_name(*p);
                if (c < 0)
                        return kerr_set(err, 0, KERR_INVALID, "%s: unknown capability '%s'", what,
                                        *p);
                *ret |= BIT(c);
        }
        return 0;
}

int sbx_caps_compute(const char *const *add, const char *const *drop, uint64_t *ret,
                     struct kerr **err)
{
        uint64_t add_set, drop_set, set, known = 0, held = held_caps();
        bool add_all, drop_all;
        int last = sbx_cap_last();

        if (parse_list(add, "cap-add", &add_set, &add_all, err) < 0 ||
            parse_list(drop, "cap-drop", &drop_set, &drop_all, err) < 0)
                return -1;
        for (int c = 0; c <= last && (size_t)c < ARRAY_SIZE(cap_names); c++)
                known |= BIT(c);
        /* moby's TweakCapabilities: ALL added wins, then ALL dropped, then drop and add. */
        if (add_all)
                set = known & ~drop_set;
        else if (drop_all)
                set = add_set;
        else
                set = (sbx_caps_default() & ~drop_set) | add_set;
        set &= known;
        for (int c = 0; c <= last; c++)
                if ((add_set & BIT(c)) && !(held & BIT(c)))
                        return kerr_set(err, 0, KERR_UNSUPPORTED,
                                        "cap-add: cannot grant '%s': kiln does not hold it",
                                        sbx_cap_name(c));
        if (set & ~held)
                klog_debug("sandbox: leaving out capabilities kiln does not hold (%#llx)",
                           (unsigned long long)(set & ~held));
        *ret = set & held;
        return 0;
}

int sbx_caps_bound(uint64_t set, struct kerr **err)
{
        int last = sbx_cap_last();

        for (int c = 0; c <= last; c++) {
                if (set & BIT(c))
                        continue;
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                        return kerr_set(err, errno, KERR_IO,
                                        "drop capability %d from the bounding set", c);
        }
        return 0;
}

int sbx_caps_apply(uint64_t set, bool root_user, struct kerr **err)
{
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        uint64_t v = root_user ? set : 0;
        int last = sbx_cap_last();

        /* docker gives a user other than root nothing but the bounding set. */
        d[0].effective = d[0].permitted = d[0].inheritable = (uint32_t)v;
        d[1].effective = d[1].permitted = d[1].inheritable = (uint32_t)(v >> 32);
        if (syscall(SYS_capset, &h, d) < 0)
                return kerr_set(err, errno, KERR_IO, "set the capabilities");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return kerr_set(err, errno, KERR_IO, "clear the ambient capabilities");
        if (!root_user)
                return 0;
        /* As runc does with the ambient list of a spec: root's set is raised there too. */
        for (int c = 0; c <= last; c++) {
                if (!(v & BIT(c)))
                        continue;
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EINVAL)
                        return kerr_set(err, errno, KERR_IO, "raise ambient capability %s",
                                        sbx_cap_name(c));
        }
        return 0;
}
