#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the busybox base image offline from Debian's busybox-static, with kiln itself:
# a rootfs tarball (busybox, its applet links, a minimal /etc) and FROM scratch + ADD.
#
#     testdata/base/busybox.sh KILN [NAME]      (default NAME: busybox)
#
# /home/user belongs to user (1000:1000), as a distribution's home would; BUSYBOX_HOME_OWNER=0
# makes it root's too, for a kiln that can map no other id (no subordinate ids).
#
# The tarball is made with fixed owners, order and times, so the image id depends only on
# the busybox binary.
set -euo pipefail

kiln=${1:?usage: busybox.sh KILN [NAME]}
name=${2:-busybox}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "busybox.sh: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-busybox.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home/user,var,dev,proc,sys}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
"$busybox" --list-full | while read -r applet; do
        [ "$applet" = bin/busybox ] && continue
        ln -sf /bin/busybox "$root/$applet"
done
cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
P
cat >"$root/etc/group" <<'G'
root:x:0:
daemon:x:1:
nogroup:x:65534:
user:x:1000:
G
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

# Everything is root's but the home of user, which is theirs, as in any distribution.
tarflags=(--sort=name --mtime=@0 --numeric-owner
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
tar "${tarflags[@]}" --owner=0 --group=0 --exclude=./home/user -C "$root" \
        -cf "$work/ctx-rootfs.tar" .
home_owner=${BUSYBOX_HOME_OWNER:-1000}
tar "${tarflags[@]}" --owner="$home_owner" --group="$home_owner" -C "$root" -rf "$work/ctx-rootfs.tar" \
        ./home/user
mkdir -p "$work/ctx"
mv "$work/ctx-rootfs.tar" "$work/ctx/rootfs.tar"
cat >"$work/ctx/Containerfile" <<'CF'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
CF
"$kiln" build -q --timestamp 0 -t "$name" "$work/ctx"
