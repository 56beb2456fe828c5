/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/banned.h"

#define MAX_HOST_FILE (1024 * 1024)

static const char loopback_hosts[] = "127.0.0.1\tlocalhost\n"
                                     "::1\tlocalhost ip6-localhost ip6-loopback\n";

int sbx_loopback_up(struct kerr **err)
{
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr;

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "bring up lo: socket");
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return kerr_set(err, errno, KERR_IO, "bring up lo: read its flags");
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return kerr_set(err, errno, KERR_IO, "bring up lo");
        return 0;
}

static int write_file(int dirfd, const char *dir, const char *name, const char *data, size_t len,
                      struct kerr **err)
{
        _cleanup_close_ int fd =
                openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "create '%s/%s'", dir, name);
        if (fchmod(fd, 0644) < 0 || kfs_write_all(fd, data, len) < 0)
                return kerr_set(err, errno, KERR_IO, "write '%s/%s'", dir, name);
        return 0;
}

/* The host's file (following links, as a resolver would), or nothing when it is missing. */
static int read_host(const char *path, struct kbuf *out, struct kerr **err)
{
        struct kerr *e = NULL;

        if (kfs_read_file(AT_FDCWD, path, MAX_HOST_FILE, out, &e) == 0)
                return 0;
        if (e->errnum == ENOENT) {
                kerr_free(e);
                return 0;
        }
        if (err) {
                kerr_free(*err);
                *err = e;
        } else {
                kerr_free(e);
        }
        return kerr_wrap(err, "read the host's '%s'", path);
}

int sbx_write_etc_files(const char *etc_dir, enum sandbox_net net, const char *hostname,
                        struct kerr **err)
{
        _cleanup_close_ int dirfd = -1;
        struct kbuf hosts = KBUF_INIT, resolv = KBUF_INIT, name = KBUF_INIT;
        int r = -1;

        if (kfs_mkdir_p(AT_FDCWD, etc_dir, 0755, err) < 0)
                return kerr_wrap(err, "create the sandbox's etc dir");
        dirfd = open(etc_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", etc_dir);
        if (net == SANDBOX_NET_HOST) {
                if (read_host("/etc/hosts", &hosts, err) < 0 ||
                    read_host("/etc/resolv.conf", &resolv, err) < 0)
                        goto out;
        }
        if (!hosts.len)
                kbuf_puts(&hosts, loopback_hosts);
        else if (hosts.data[hosts.len - 1] != '\n')
                kbuf_putc(&hosts, '\n');
        /* The container's own name resolves, as on Debian, to 127.0.1.1 (on lo either way). */
        kbuf_printf(&hosts, "127.0.1.1\t%s\n", hostname);
        kbuf_printf(&name, "%s\n", hostname);
        if (write_file(dirfd, etc_dir, "hosts", hosts.data, hosts.len, err) < 0 ||
            write_file(dirfd, etc_dir, "resolv.conf", resolv.data ? resolv.data : "", resolv.len,
                       err) < 0 ||
            write_file(dirfd, etc_dir, "hostname", name.data, name.len, err) < 0)
                goto out;
        r = 0;
out:
        kbuf_release(&hosts);
        kbuf_release(&resolv);
        kbuf_release(&name);
        return r;
}
