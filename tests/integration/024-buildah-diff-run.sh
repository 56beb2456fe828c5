#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Differential test for Containerfiles with RUN: every case under testdata/diff-run/NN-topic/
# is built by kiln and by buildah bud on the same busybox image, and the two images are
# compared as tests/diff-lib.sh does (the rootfs trees without times, the config fields),
# with the number of layers too, so that a step that changes nothing adds none.
#
# buildah builds with --layers, one layer per step as docker and kiln make them, so that
# the counts compare. Two of its habits are taken out of every comparison, each in one place:
# the mount points its RUN steps leave (testdata/diff-run/buildah-stubs.sed, which says
# why), and the layer that holds nothing but those (DIFF_STUB_PATHS) or nothing at all,
# which docker does not commit (BuildKit's exporter drops a layer whose diff is empty, and
# its history entry says empty_layer). What else buildah 1.28 does otherwise than docker is
# corrected per case, in the case's own files, each saying why.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../diff-lib.sh"

diff_init
cd "$T_TMP" || t_bail "cd $T_TMP"

# The lister must see each property compared: a tree, then the same tree with one thing
# changed at a time.
mkdir -p probe/d
printf 'a\n' >probe/f
ln probe/f probe/d/hard
ln -s f probe/l
probe_list()
{
        diff_list_tree "$T_TMP/probe" >"$T_TMP/probe.$1"
}
probe_list before
probe_changes=(
        "content:printf 'b\n' >probe/d/hard"
        "mode:chmod 4644 probe/f"
        "owner:chown 1000:65534 probe/d"
        "link target:ln -sfn d probe/l"
        "hard link:rm probe/d/hard && cp -p probe/f probe/d/hard"
        "type:mkfifo probe/fifo"
        "xattr:python3 -c 'import os; os.setxattr(\"probe/f\", \"user.k\", b\"v\")'"
)
for change in "${probe_changes[@]}"; do
        what=${change%%:*}
        cp -a probe probe.saved
        if eval "${change#*:}" 2>/dev/null; then
                probe_list after
                if cmp -s probe.before probe.after; then
                        t_fail "the tree listing shows a change of $what"
                        t_diag_file "listing" probe.after
                else
                        t_pass "the tree listing shows a change of $what"
                fi
        else
                t_skip "the tree listing shows a change of $what" "this file system cannot make it"
        fi
        rm -rf probe
        mv probe.saved probe
done

# Both tools build on kiln's busybox image, which buildah imports from an archive.
t_base_image busybox || t_bail "the busybox base cannot be built"
t_ok "the busybox base exports" "$KILN" push busybox "oci-archive:$T_TMP/busybox.tar:busybox"
t_ok "buildah imports it" "${BUILDAH[@]}" pull -q "oci-archive:$T_TMP/busybox.tar"
base_id=$(tail -1 "$T_OUT")
t_ok "buildah names it" "${BUILDAH[@]}" tag "$base_id" localhost/busybox:latest
t_ok "kiln inspects its base" "$KILN" inspect busybox
t_eq "both stores hold the same base image" "sha256:$base_id" "$(jq -r .Id "$T_OUT")"

DIFF_BUD_FLAGS=(--layers)
DIFF_LAYERS=1
DIFF_STUB_PATHS=(etc etc/hosts etc/hostname etc/resolv.conf run)
DIFF_TREE_SED=$KILN_SRCDIR/testdata/diff-run/buildah-stubs.sed
diff_run_cases "$KILN_SRCDIR/testdata/diff-run"
t_done
