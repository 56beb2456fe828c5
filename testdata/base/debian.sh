#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds a Debian bookworm base image from Debian's mirror with mmdebstrap (variant
# minbase, plus PACKAGES when given), with kiln itself: the rootfs tarball, then
# FROM scratch + ADD.
#
#     testdata/base/debian.sh KILN [NAME [PACKAGES...]]     (default NAME: debian)
#
# The tarball is reproducible for the same package versions (SOURCE_DATE_EPOCH is fixed),
# and it is kept in KILN_BASE_CACHE (default: /var/cache/kiln-base as root, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/kiln-base) under a name made of the suite and the package
# list, so building the image again reads no mirror. MIRROR overrides the mirror
# (default: http://deb.debian.org/debian). Exits 75 (EX_TEMPFAIL) when the tarball is not
# cached and the mirror cannot be reached, so that tests can report a skip with the reason.
set -euo pipefail

kiln=${1:?usage: debian.sh KILN [NAME [PACKAGES...]]}
name=${2:-debian}
shift $(($# >= 2 ? 2 : 1))
suite=bookworm
mirror=${MIRROR:-http://deb.debian.org/debian}
command -v mmdebstrap >/dev/null ||
        { echo "debian.sh: mmdebstrap not found (apt-get install mmdebstrap)" >&2; exit 1; }

if [ -n "${KILN_BASE_CACHE:-}" ]; then
        cache=$KILN_BASE_CACHE
elif [ "$(id -u)" = 0 ]; then
        cache=/var/cache/kiln-base
else
        cache=${XDG_CACHE_HOME:-$HOME/.cache}/kiln-base
fi
mkdir -p "$cache"
pkgs=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
# v2: device nodes are left out of the tarball (the sandbox gives containers their /dev,
# and no user namespace can create them).
key=$suite-minbase-v2${pkgs:+-$(printf '%s' "$pkgs" | sha256sum | cut -c1-12)}
tarball=$cache/$key.tar

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-debian.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ ! -s "$tarball" ]; then
        if ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)' \
                "$mirror/dists/$suite/Release" 2>/dev/null; then
                echo "debian.sh: the Debian mirror $mirror cannot be reached" >&2
                exit 75
        fi
        mode=root
        [ "$(id -u)" = 0 ] || mode=unshare
        # apt's lists and caches are left out of the image, as Debian's own images do.
        SOURCE_DATE_EPOCH=0 mmdebstrap --quiet --mode="$mode" --variant=minbase \
                --format=tar --skip=output/dev ${pkgs:+--include="$pkgs"} \
                --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
                "$suite" "$work/rootfs.tar" "$mirror" >&2
        mv "$work/rootfs.tar" "$tarball.tmp-$$"
        mv "$tarball.tmp-$$" "$tarball"
fi
mkdir "$work/ctx"
ln "$tarball" "$work/ctx/rootfs.tar" 2>/dev/null || cp "$tarball" "$work/ctx/rootfs.tar"
cat >"$work/ctx/Containerfile" <<'CF'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["bash"]
CF
"$kiln" build -q --timestamp 0 -t "$name" "$work/ctx"
