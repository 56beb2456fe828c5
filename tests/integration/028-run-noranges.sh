#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# RUN as a user without subordinate ids (kilnnorange), whose kiln maps only its own uid and
# gid (as 0): a base with a file of uid 1000 cannot be stored, and the error says how to add
# ranges; a plain RUN works and its files belong to 0 in the image; a RUN that chowns a
# file to 1000 fails, and kiln's error says that only the own ids are mapped and how to add
# ranges. The hint is not given where more ids are mapped: a failing step as kilntest (with
# subordinate ids) or as root.
set -u
. "$(dirname "$0")/../lib.sh"

if ! t_rootless_users; then
        t_skip "RUN without subordinate ids" "$T_SKIP_REASON"
        t_done
fi
if ! runuser -u kilnnorange -- test -x "$KILN"; then
        t_skip "RUN without subordinate ids" "kilnnorange cannot run $KILN (a directory above it is private)"
        t_done
fi
command -v umoci >/dev/null || t_bail "umoci is not installed (the checks read the image)"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"
mkdir -p ctx home-kilnnorange home-kilntest out
chown kilnnorange: home-kilnnorange out
chown kilntest: home-kilntest
printf 'FROM busybox\nRUN echo plain >/plain && id -u >/uid\n' >ctx/Containerfile.plain
printf 'FROM busybox\nRUN touch /f && chown 1000:1000 /f\n' >ctx/Containerfile.chown
printf 'FROM busybox\nRUN exit 3\n' >ctx/Containerfile.fail
chmod -R a+rX ctx

# as USER CMD...: runs CMD as USER with a home of its own, where its store is (the default
# store of a user without root).
as()
{
        local u=$1

        shift
        runuser -u "$u" -- env -u KILN_ROOT HOME="$T_TMP/home-$u" "$@"
}
store=$T_TMP/home-kilnnorange/.local/share/kiln
hint="add subordinate ids for kilnnorange to /etc/subuid and /etc/subgid: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 kilnnorange"

# The usual base has a home that belongs to 1000: a layer this user cannot store.
t_fails "kilnnorange: a base with a file of uid 1000 fails to build" 1 \
        as kilnnorange bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
t_contains "... saying which ids are not mapped" "uid 1000 and gid 1000 are not mapped in kiln's user namespace" "$T_ERR"
t_contains "... and how to add ranges" "$hint" "$T_ERR"
t_ok "kilnnorange: the busybox base with everything root's builds" \
        as kilnnorange env BUSYBOX_HOME_OWNER=0 bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
t_ok "kilnnorange: a plain RUN works" as kilnnorange "$KILN" build -t plain -f ctx/Containerfile.plain ctx
t_contains "... after the warning that only the own ids are mapped" \
        "only your own uid and gid are mapped (as 0)" "$T_ERR"
t_ok "kilnnorange: export" as kilnnorange "$KILN" push plain "oci:$T_TMP/out/oci:plain"
t_ok "umoci unpacks it" umoci unpack --image "$T_TMP/out/oci:plain" plain.un
t_eq "the step's file is in the image" "$(cat plain.un/rootfs/plain)" plain
t_eq "the step ran as uid 0" "$(cat plain.un/rootfs/uid)" 0
t_eq "its file belongs to 0:0" "$(stat -c %u:%g plain.un/rootfs/plain)" 0:0

t_fails "kilnnorange: a RUN that chowns to 1000 fails the build" 1 \
        as kilnnorange "$KILN" build -f ctx/Containerfile.chown ctx
t_grep "the step's own error came first" 'chown: /f: Invalid argument' "$T_ERR"
t_contains "kiln's error names the step and its status" \
        'building at STEP "RUN touch /f && chown 1000:1000 /f": exit status 1' "$T_ERR"
t_contains "... says only the own ids are mapped" \
        "kiln's user namespace maps only your own uid and gid, as 0, so a step cannot give a file another owner" \
        "$T_ERR"
t_contains "... and how to add ranges" "$hint)" "$T_ERR"
t_eq "the store's tmp/ is empty" "$(ls -A "$store/tmp")" ""

t_ok "kilntest: the busybox base builds" as kilntest bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
t_fails "kilntest: a failing RUN fails the build" 1 as kilntest "$KILN" build -f ctx/Containerfile.fail ctx
t_grep "... with its status alone, as ids are mapped" 'STEP "RUN exit 3": exit status 3$' "$T_ERR"
t_ok "root: the busybox base builds" bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
t_fails "root: a failing RUN fails the build" 1 "$KILN" build -f ctx/Containerfile.fail ctx
t_grep "... with its status alone" 'STEP "RUN exit 3": exit status 3$' "$T_ERR"
t_done
