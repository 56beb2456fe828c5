#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# apt-get in a RUN step over the Debian base (testdata/base/debian.sh), with the host's
# network, as root and as a user without root (kilntest, with subordinate ids):
# apt-get update && apt-get install -y --no-install-recommends hello works, apt's downloads
# ran sandboxed as its _apt user (no "unsandboxed" warning, and apt gave _apt its partial dir,
# which needs the ids of the image's users to be mapped), and the exported image has the
# package: the binary, dpkg's record, and its output when the step ran it. The mirror is
# probed from the host first: when it cannot be reached the test is a skip, with the reason.
set -u
. "$(dirname "$0")/../lib.sh"

mirror=${MIRROR:-http://deb.debian.org/debian}
if ! command -v mmdebstrap >/dev/null; then
        t_skip "apt-get install in a RUN" "mmdebstrap is not installed"
        t_done
fi
command -v umoci >/dev/null || t_bail "umoci is not installed (the checks read the image)"
if ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)' \
        "$mirror/dists/bookworm/Release" 2>/dev/null; then
        t_skip "apt-get install in a RUN" "the Debian mirror $mirror cannot be reached"
        t_done
fi
if ! t_base_image debian; then
        t_skip "apt-get install in a RUN" "$T_SKIP_REASON"
        t_done
fi

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"
mkdir ctx
# The lists and the downloaded .deb are dropped in the step, as Debian's images do, so that
# the layer is small; what the checks need is kept in /apt.
cat >ctx/Containerfile <<'CF'
FROM debian
RUN apt-get update && apt-get install -y --no-install-recommends hello && \
    mkdir /apt && stat -c %U /var/lib/apt/lists/partial >/apt/partial-owner && \
    hello >/apt/hello.out && apt-get clean && rm -rf /var/lib/apt/lists/*
CF
chmod -R a+rX ctx

# run_case LABEL STORE OUT AS...: builds as AS (a command prefix), exports and checks.
run_case()
{
        local label=$1 root=$2 out=$3 r
        shift 3
        local -a k=("$@" env KILN_ROOT="$root" "$KILN")

        t_ok "$label: the build runs apt-get update and install" "${k[@]}" build -t apt ctx
        t_grep "$label: apt installed hello" '^Setting up hello ' "$T_OUT"
        t_nogrep "$label: apt's downloads were not unsandboxed" 'unsandboxed' "$T_OUT"
        t_nogrep "$label: ... nor did apt warn about it" 'unsandboxed' "$T_ERR"
        t_ok "$label: export" "${k[@]}" push apt "oci:$out:apt"
        rm -rf "$out.un"
        t_ok "$label: umoci unpacks it" umoci unpack --image "$out:apt" "$out.un"
        r=$out.un/rootfs
        t_ok "$label: /usr/bin/hello is in the image" test -x "$r/usr/bin/hello"
        t_ok "$label: dpkg records hello as installed" \
                grep -Pzq '(^|\n)Package: hello\nStatus: install ok installed\n' "$r/var/lib/dpkg/status"
        t_eq "$label: hello ran in the step" "$(cat "$r/apt/hello.out")" "Hello, world!"
        t_eq "$label: apt gave its partial dir to _apt" "$(cat "$r/apt/partial-owner")" _apt
        t_eq "$label: the store's tmp/ is empty" "$(ls -A "$root/tmp")" ""
}

if [ "$(id -u)" = 0 ]; then
        run_case root "$KILN_ROOT" "$T_TMP/out-root/oci" env
else
        t_skip "root" "not running as root"
fi

if t_rootless_users && runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest out-kilntest
        chown kilntest: home-kilntest out-kilntest
        # The rootfs tarball that root's base build made (or found) in the base cache.
        as=(runuser -u kilntest -- env HOME="$T_TMP/home-kilntest"
                KILN_BASE_CACHE="${KILN_BASE_CACHE:-/var/cache/kiln-base}")
        t_ok "rootless: the Debian base builds from the cached rootfs" "${as[@]}" \
                KILN_ROOT="$T_TMP/home-kilntest/store" \
                bash "$KILN_SRCDIR/testdata/base/debian.sh" "$KILN" debian
        run_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/out-kilntest/oci" "${as[@]}"
else
        t_skip "rootless" "${T_SKIP_REASON:-kilntest cannot run $KILN}"
fi
t_done
