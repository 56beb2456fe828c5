#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The base images of testdata/base/, built offline (busybox, from Debian's busybox-static)
# or from Debian's mirror (a bookworm minbase rootfs made by mmdebstrap), each with kiln
# itself: they build, build again to the same image id, and unpack (umoci) to the trees
# the later tests rely on.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"

t_base_image busybox || t_bail "busybox: $T_SKIP_REASON"
id1=$(cat "$T_TMP/base.out")
t_base_image busybox busybox2 || t_bail "busybox: $T_SKIP_REASON"
t_eq "busybox: a second build is the same image" "$(cat "$T_TMP/base.out")" "$id1"
t_ok "busybox: exports" "$KILN" push busybox "oci:$T_TMP/bb:latest"
t_oci_layout_valid "busybox: the layout is valid" "$T_TMP/bb"
if command -v umoci >/dev/null; then
        t_ok "busybox: umoci unpacks it" umoci unpack --image "$T_TMP/bb:latest" "$T_TMP/bbu"
        t_ok "busybox: /bin/sh is busybox" test "$(readlink "$T_TMP/bbu/rootfs/bin/sh")" = /bin/busybox
        t_ok "busybox: /etc/passwd has user 1000" grep -q '^user:x:1000:1000:' "$T_TMP/bbu/rootfs/etc/passwd"
        t_eq "busybox: /tmp is 1777" "$(stat -c %a "$T_TMP/bbu/rootfs/tmp")" 1777
else
        t_skip "busybox: umoci unpacks it" "umoci is not installed"
fi

if ! command -v mmdebstrap >/dev/null; then
        t_skip "debian: builds" "mmdebstrap is not installed"
        t_done
fi
if ! t_base_image debian; then
        t_skip "debian: builds" "$T_SKIP_REASON"
        t_done
fi
t_pass "debian: builds"
id1=$(cat "$T_TMP/base.out")
t_base_image debian debian2 || t_bail "debian: $T_SKIP_REASON"
t_eq "debian: a second build (from the cached rootfs) is the same image" \
        "$(cat "$T_TMP/base.out")" "$id1"
t_ok "debian: inspect" "$KILN" inspect debian
t_eq "debian: the config runs bash" "$(jq -c .Config.config.Cmd "$T_OUT")" '["bash"]'
t_ok "debian: exports" "$KILN" push debian "oci:$T_TMP/deb:latest"
t_oci_layout_valid "debian: the layout is valid" "$T_TMP/deb"
if command -v umoci >/dev/null; then
        t_ok "debian: umoci unpacks it" umoci unpack --image "$T_TMP/deb:latest" "$T_TMP/debu"
        r=$T_TMP/debu/rootfs
        t_ok "debian: apt-get is there" test -x "$r/usr/bin/apt-get"
        t_ok "debian: it is bookworm" grep -q '^VERSION_CODENAME=bookworm' "$r/etc/os-release"
        t_ok "debian: apt sources point at the mirror" grep -q 'bookworm main' "$r/etc/apt/sources.list"
        t_eq "debian: no apt lists are baked in" "$(ls -A "$r/var/lib/apt/lists" | grep -v '^lock$\|^partial$')" ""
        t_eq "debian: root owns /usr/bin" "$(stat -c %u:%g "$r/usr/bin")" 0:0
else
        t_skip "debian: umoci unpacks it" "umoci is not installed"
fi
t_done
