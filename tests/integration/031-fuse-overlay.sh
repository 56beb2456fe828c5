#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# RUN over fuse-overlayfs (KILN_OVERLAY=fuse), as root and as a user without root
# (kilntest): the RUN steps create, modify, chmod, chown, hard-link, rename and delete files
# and replace directories, and their layers come out the same as over overlayfs (with
# --timestamp, the same image), whiteouts and opaque dirs included; the notice comes once;
# the daemon is kiln's child while the build runs and none is left after it; without
# fuse-overlayfs in PATH, or without /dev/fuse, the build fails saying what is missing.
set -u
. "$(dirname "$0")/../lib.sh"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"

# In the environment of every kiln run here, which its fuse-overlayfs daemons inherit: how
# they are found on the host, and told apart from anyone else's.
MARK=KILN_FUSE_TEST_MARK=$$

mkdir -p ctx
cat >ctx/Containerfile <<'CF'
FROM busybox
RUN mkdir -p /d/sub /r /t /rm-me && echo a >/d/a && echo b >/d/b && echo deep >/d/sub/deep && \
    echo old >/r/old && echo f >/f && ln /f /hl && echo m >/mod && chmod 600 /d/b && \
    ln -s /f /link && echo x >/rm-me/x && echo t >/t/t
RUN grep -o ' / [^ ]*' /proc/mounts | tail -1 && \
    echo changed >/mod && chmod 640 /d/a && chown 1000:1000 /d/b && ln /d/a /d/a2 && \
    rm /f && rm -r /d/sub && rm -r /r && mkdir /r && echo new >/r/new && rm -r /rm-me && \
    rm -r /home && mkdir /home && echo y >/home/y && rm /usr/bin/yes && \
    mkdir -p /n/m && echo z >/n/m/z && mkdir /again && rmdir /again && mv /t /t2 && \
    mkfifo /fifo && sleep 2
RUN test ! -e /f && test ! -e /d/sub && test ! -e /rm-me && test ! -e /usr/bin/yes && \
    test "$(cat /hl)" = f && test "$(ls /r)" = new && test "$(ls /home)" = y && \
    test "$(cat /mod)" = changed && test "$(stat -c %u:%g:%a /d/b)" = 1000:1000:600 && \
    test "$(stat -c %a /d/a)" = 640 && test "$(stat -c %i /d/a)" = "$(stat -c %i /d/a2)" && \
    test "$(cat /t2/t)" = t && test -p /fifo && test ! -e /t && echo checked
CF

# The entries of each layer of IMAGE, pushed to the OCI layout OUT: "== layer N", tar's
# verbose listing (owners as numbers), and how often fuse-overlayfs' xattr prefix occurs.
layer_listing()
{
        local root=$1 img=$2 out=$3 n=0 m d blob
        shift 3

        "$@" env KILN_ROOT="$root" "$KILN" push "$img" "oci:$out" >/dev/null 2>&1 || return 1
        m=$(jq -r '.manifests[0].digest' "$out/index.json") || return 1
        for d in $(jq -r '.layers[].digest' "$out/blobs/sha256/${m#sha256:}"); do
                n=$((n + 1))
                blob=$out/blobs/sha256/${d#sha256:}
                printf '== layer %d\n' "$n"
                tar --numeric-owner -tvzf "$blob"
                printf 'fuseoverlayfs xattrs: %s\n' "$(zcat "$blob" | grep -ac fuseoverlayfs)"
        done
}

# Our fuse-overlayfs daemons on the host, one line each: "PID PARENT-PID PARENT-NAME".
daemons()
{
        local f pid ppid

        for f in $(grep -las "$MARK" /proc/[0-9]*/environ); do
                pid=${f#/proc/}
                pid=${pid%/environ}
                [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = fuse-overlayfs ] || continue
                ppid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
                printf '%s %s %s\n' "$pid" "$ppid" "$(cat "/proc/$ppid/comm" 2>/dev/null)"
        done
}

# fuse_case LABEL ROOT WORK AS...: the builds over both, into the store ROOT, run through
# AS; WORK is a directory they may write.
fuse_case()
{
        local label=$1 root=$2 work=$3
        shift 3
        local -a as=("$@")
        local -a k=("${as[@]}" env "$MARK" KILN_ROOT="$root" "$KILN")
        local pid seen=() nat fus

        t_ok "$label: the busybox base builds" "${as[@]}" env KILN_ROOT="$root" \
                bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
        t_ok "$label: the build over overlayfs" "${k[@]}" build --no-cache --timestamp 0 \
                -t over-native ctx
        cp "$T_OUT" "$T_TMP/$label.native.out"
        # Over fuse-overlayfs, watched from here while the second RUN sleeps.
        KILN_OVERLAY=fuse "${k[@]}" build --no-cache --timestamp 0 -t over-fuse ctx \
                >"$T_TMP/$label.fuse.out" 2>"$T_TMP/$label.fuse.err" &
        pid=$!
        for _ in $(seq 100); do
                mapfile -t seen < <(daemons)
                [ ${#seen[@]} -gt 0 ] && break
                sleep 0.1
        done
        wait "$pid"
        T_RC=$?
        if [ "$T_RC" -eq 0 ]; then
                t_pass "$label: the build over fuse-overlayfs"
        else
                t_fail "$label: the build over fuse-overlayfs" "exit status $T_RC"
                t_diag_file stdout "$T_TMP/$label.fuse.out"
                t_diag_file stderr "$T_TMP/$label.fuse.err"
        fi
        t_grep "$label: its RUN saw fuse-overlayfs as the root" ' / fuse\.fuse-overlayfs$' \
                "$T_TMP/$label.fuse.out"
        t_grep "$label: over overlayfs it saw overlayfs" ' / overlay$' "$T_TMP/$label.native.out"
        t_grep "$label: the last RUN checked the tree" '^checked$' "$T_TMP/$label.fuse.out"
        t_eq "$label: the notice comes once" \
                "$(grep -c 'fuse-overlayfs' "$T_TMP/$label.fuse.err")" 1
        t_contains "$label: it says why" \
                "kiln: warning: KILN_OVERLAY=fuse: the layers are mounted with fuse-overlayfs" \
                "$T_TMP/$label.fuse.err"
        if [ ${#seen[@]} -gt 0 ]; then
                t_eq "$label: a daemon ran as kiln's child" "${seen[0]##* }" kiln
        else
                t_fail "$label: a daemon ran as kiln's child" "no fuse-overlayfs with $MARK was seen"
        fi
        t_eq "$label: no fuse-overlayfs is left" "$(daemons)" ""
        t_eq "$label: nothing is left in tmp/" "$(ls -A "$root/tmp" 2>/dev/null)" ""

        nat=$("${k[@]}" inspect over-native | jq -c '[.Id, .Config.rootfs.diff_ids]')
        fus=$("${k[@]}" inspect over-fuse | jq -c '[.Id, .Config.rootfs.diff_ids]')
        t_eq "$label: the same image, layer for layer" "$fus" "$nat"
        layer_listing "$root" over-native "$work/native.oci" "${as[@]}" \
                >"$T_TMP/$label.native.ls" || t_fail "$label: push over-native"
        layer_listing "$root" over-fuse "$work/fuse.oci" "${as[@]}" \
                >"$T_TMP/$label.fuse.ls" || t_fail "$label: push over-fuse"
        t_eq "$label: the pushed layers list the same" "$(cat "$T_TMP/$label.fuse.ls")" \
                "$(cat "$T_TMP/$label.native.ls")"
        t_grep "$label: a deleted file is a whiteout" ' \.wh\.f$' "$T_TMP/$label.fuse.ls"
        t_grep "$label: a deleted dir is a whiteout" ' d/\.wh\.sub$' "$T_TMP/$label.fuse.ls"
        t_grep "$label: a deleted base file is a whiteout" ' usr/bin/\.wh\.yes$' \
                "$T_TMP/$label.fuse.ls"
        t_grep "$label: a renamed dir is a whiteout" ' \.wh\.t$' "$T_TMP/$label.fuse.ls"
        t_grep "$label: a replaced dir is opaque" ' r/\.wh\.\.wh\.\.opq$' "$T_TMP/$label.fuse.ls"
        t_grep "$label: a replaced base dir is opaque" ' home/\.wh\.\.wh\.\.opq$' \
                "$T_TMP/$label.fuse.ls"
        t_grep "$label: a hard link is one" ' d/a2 link to d/a$' "$T_TMP/$label.fuse.ls"
        t_nogrep "$label: new dirs are not opaque" ' (n|n/m|t2)/\.wh\.' "$T_TMP/$label.fuse.ls"
        t_nogrep "$label: nothing of fuse-overlayfs' own" \
                '(^| |/)\.wh\.\.opq$|\.wh\.again$|^fuseoverlayfs xattrs: [1-9]' \
                "$T_TMP/$label.fuse.ls"
}

# nofuse_case LABEL ROOT PATH AS...: KILN_OVERLAY=fuse with only PATH to look in.
nofuse_case()
{
        local label=$1 root=$2 path=$3
        shift 3

        t_fails "$label: KILN_OVERLAY=fuse without fuse-overlayfs in PATH fails" 1 "$@" \
                env PATH="$path" KILN_OVERLAY=fuse KILN_ROOT="$root" "$KILN" build --no-cache ctx
        t_contains "$label: saying what to install" \
                "fuse-overlayfs is not in PATH (install the Debian package fuse-overlayfs)" "$T_ERR"
}

fuse_program=$(command -v fuse-overlayfs)
# newuidmap and newgidmap, and no fuse-overlayfs.
mkdir -p nofuse
for tool in newuidmap newgidmap; do
        command -v "$tool" >/dev/null && ln -s "$(command -v "$tool")" "nofuse/$tool"
done

if [ "$(id -u)" != 0 ]; then
        t_skip "root" "not running as root"
elif [ -z "$fuse_program" ]; then
        t_skip "root" "fuse-overlayfs is not installed (Debian package fuse-overlayfs)"
elif ! (exec 3<>/dev/fuse) 2>/dev/null; then
        t_skip "root" "/dev/fuse cannot be opened: $( (exec 3<>/dev/fuse) 2>&1 | sed 's/.*: //')"
else
        mkdir -p work-root
        fuse_case root "$T_TMP/store-root" "$T_TMP/work-root" env
        nofuse_case root "$T_TMP/store-root" "$T_TMP/nofuse" env
fi

if t_rootless_users && runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest
        chown kilntest: home-kilntest
        chown -R kilntest: ctx
        as=(runuser -u kilntest -- env HOME="$T_TMP/home-kilntest")
        if [ -z "$fuse_program" ]; then
                t_skip "rootless" "fuse-overlayfs is not installed (Debian package fuse-overlayfs)"
        elif ! "${as[@]}" sh -c 'exec 3<>/dev/fuse' 2>/dev/null; then
                # The build says so, and what it needs.
                t_ok "rootless: the busybox base builds" "${as[@]}" \
                        env KILN_ROOT="$T_TMP/home-kilntest/store" \
                        bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
                t_fails "rootless: KILN_OVERLAY=fuse without /dev/fuse fails" 1 "${as[@]}" \
                        env KILN_OVERLAY=fuse KILN_ROOT="$T_TMP/home-kilntest/store" "$KILN" \
                        build --no-cache ctx
                t_contains "rootless: saying so" \
                        "(KILN_OVERLAY=fuse): /dev/fuse cannot be opened: Permission denied" "$T_ERR"
                # Debian's udev rules give /dev/fuse mode 0666, so that every user may mount
                # with FUSE; a machine without udev (a container, a minimal VM) may have
                # 0600. The test gives it Debian's mode for the rootless case, and puts the
                # old one back.
                fuse_mode=$(stat -c %a /dev/fuse 2>/dev/null)
                if [ -n "$fuse_mode" ] && chmod 0666 /dev/fuse 2>/dev/null; then
                        trap 'chmod "$fuse_mode" /dev/fuse; rm -rf "$T_TMP"' EXIT
                        fuse_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/home-kilntest" \
                                "${as[@]}"
                        chmod "$fuse_mode" /dev/fuse
                        trap 'rm -rf "$T_TMP"' EXIT
                else
                        t_skip "rootless" "kilntest cannot open /dev/fuse ($(stat -c '%A %U:%G' /dev/fuse 2>/dev/null || echo missing))"
                fi
        else
                fuse_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/home-kilntest" "${as[@]}"
        fi
        nofuse_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/nofuse" "${as[@]}"
else
        t_skip "rootless" "${T_SKIP_REASON:-kilntest cannot run $KILN}"
fi
t_done
