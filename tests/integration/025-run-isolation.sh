#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What a RUN step of kiln build can see and change of the host, as root and as a user
# without root (kilntest, with subordinate ids). Each check runs inside real RUN steps, which
# write what they saw into files of the image (read back from the exported image), or is made
# from the host while and after the build runs:
#   - marker files planted in the host's /root and /home/kilntest are not visible; /home and
#     /root are the image's; ps shows only the step's processes; the hostname is not the host's
#   - --network=none on a RUN, and kiln build --network none: only lo (/proc/net/dev and
#     /sys/class/net); the host's network otherwise
#   - mount, umount2, unshare -U, keyctl, add_key, kexec_load and bpf fail with EPERM
#     (tests/helpers/kiln-probe, COPY'd into the image; busybox's mount and unshare too)
#   - /proc/sys and /sys are read-only: opening their files for writing (nothing is written)
#     and creating in them fail
#   - a fork bomb stops at the process limit, and neither it nor background daemons (&, setsid,
#     a double fork) outlive the step: seen from the host while the step runs, gone after
#   - writes to /, /tmp, /var/tmp, /root, /home, /etc, /run, /dev, /dev/shm, /dev/mqueue,
#     /proc/self/root, /proc/1/root, /proc/self/cwd, /sys, /proc, /sys/fs/cgroup and the
#     bind-mounted /etc/hosts, /etc/resolv.conf and /etc/hostname land in the step's layer or
#     nowhere: the host's files are unchanged, no file with the marker's name is anywhere on
#     the host but in the store's new layers, and the store's tmp/ is empty afterwards.
set -u
. "$(dirname "$0")/../lib.sh"

: "${KILN_PROBE:=$KILN_BUILDDIR/tests/unit/kiln-probe}"

if [ "$(id -u)" != 0 ]; then
        t_skip "RUN isolation" "planting markers in the host's /root and /home needs root"
        t_done
fi
[ -r "$KILN_PROBE" ] || t_bail "no kiln-probe at '$KILN_PROBE'"
command -v umoci >/dev/null || t_bail "umoci is not installed (the checks read the image)"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"

# A name no other test uses: the marker files, the processes to look for, the files a step
# writes.
MARK=kiln-iso-$$-$RANDOM$RANDOM
planted=()
cleanup()
{
        [ "${#planted[@]}" -eq 0 ] || rm -f -- "${planted[@]}"
        rm -rf "$T_TMP"
}
trap cleanup EXIT

# The host's paths where a write of a step could land, searched for the marker's name
# (a search of the whole root file system would take minutes).
host_files()
{
        {
                find / /tmp /var/tmp -maxdepth 1 -name "*$MARK*"
                find /root /etc /run /sys/fs/cgroup -maxdepth 2 -name "*$MARK*"
                find /home -maxdepth 3 -name "*$MARK*"
                find /dev -name "*$MARK*"
                find "$T_TMP" -name "*$MARK*" ! -path "$T_TMP/ctx/*" ! -path "*/layers/*/diff/*"
        } 2>/dev/null | grep -vxF -e "/root/$MARK.root-marker" -e "/home/kilntest/$MARK.home-marker" |
                sort -u
}

# refused FILE [ERRNO]: the probe's "PATH ERRNO" lines, with the errnos of a refusal
# (EROFS, EACCES, EPERM, and ERRNO if given) as "refused".
refused()
{
        sed -E "s/ (EROFS|EACCES|EPERM${2:+|$2})\$/ refused/" "$1"
}

host_etc()
{
        sha256sum /etc/hosts /etc/resolv.conf /etc/hostname 2>&1
        hostname
}

if ! t_rootless_users; then
        t_bail "the test users: $T_SKIP_REASON"
fi
printf 'host\n' >"/root/$MARK.root-marker" && planted+=("/root/$MARK.root-marker")
printf 'host\n' >"/home/kilntest/$MARK.home-marker" && planted+=("/home/kilntest/$MARK.home-marker")
[ "${#planted[@]}" -eq 2 ] || t_bail "cannot plant the marker files in /root and /home/kilntest"

mkdir ctx
cp "$KILN_PROBE" ctx/kiln-probe
printf 'in the image\n' >"ctx/$MARK.control"
# @M@ is the marker. The steps record what they see in /probe; "; true" keeps a step whose
# probe failed from failing the build, so that the file says what went wrong.
sed "s/@M@/$MARK/g" >ctx/Containerfile <<'CF'
FROM busybox
COPY kiln-probe @M@.control /probe/
RUN find / -name '*@M@*' >/probe/found 2>/dev/null; ls -A /root >/probe/root.ls; ls -A /home >/probe/home.ls; true
RUN ps -o pid,args >/probe/ps; true
RUN hostname >/probe/hostname; cat /etc/hostname >/probe/etc-hostname; true
RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort >/probe/net.host
RUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort >/probe/net.none && ls /sys/class/net >/probe/sysnet.none
RUN exec /probe/kiln-probe syscalls >/probe/syscalls
RUN unshare -U true 2>/probe/unshare.err; echo $? >/probe/unshare.rc; mount -t tmpfs none /mnt 2>/probe/mount.err; echo $? >/probe/mount.rc; grep -c ' /mnt ' /proc/self/mountinfo >/probe/mnt.mounted; true
RUN /probe/kiln-probe ro /proc/sys /sys >/probe/ro; \
    for p in /proc/sys/kernel/hostname /proc/sys/kernel/core_pattern /proc/sys/vm/drop_caches /sys/class/net/lo/mtu /sys/kernel/mm/transparent_hugepage/enabled; do \
        echo "$p $(/probe/kiln-probe write $p)"; \
    done >/probe/sys.write; \
    for d in /sys/@M@ /sys/fs/cgroup/@M@ /proc/sys/@M@; do echo "$d $(/probe/kiln-probe mkdir $d)"; done >/probe/sys.mkdir; true
RUN mkdir -p /run /var/tmp && \
    for p in /@M@.w /tmp/@M@.w /var/tmp/@M@.w /root/@M@.w /home/@M@.w /etc/@M@.w /run/@M@.w \
             /dev/@M@.w /dev/shm/@M@.w /dev/mqueue/@M@.w /dev/pts/@M@.w \
             /proc/self/root/@M@.self-root /proc/1/root/tmp/@M@.pid1-root /proc/self/cwd/@M@.cwd \
             /sys/@M@.w /sys/fs/cgroup/@M@.w /proc/@M@.w /proc/sys/kernel/@M@.w /proc/self/@M@.w; do \
        if echo x >"$p"; then echo "$p"; fi 2>/dev/null; \
    done >/probe/written; \
    echo "127.0.0.9 @M@" >>/etc/hosts && echo "search @M@.invalid" >>/etc/resolv.conf && echo "@M@" >/etc/hostname && \
    grep -l @M@ /etc/hosts /etc/resolv.conf /etc/hostname >/probe/etc.written; true
RUN exec /probe/kiln-probe bomb 3 kiln-bomb-@M@ >/probe/bomb
CF
printf 'FROM busybox\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " >/net && ls /sys/class/net >/sysnet\n' \
        >ctx/Containerfile.nonet
sed "s/@M@/$MARK/g" >ctx/Containerfile.daemons <<'CF'
FROM busybox
RUN sh -c 'sleep 1000; true' kiln-bg-@M@ & \
    setsid sh -c 'sleep 1000; true' kiln-setsid-@M@ & \
    (sh -c 'sleep 1000; true' kiln-orphan-@M@ &); \
    sleep 4; echo started
CF
chmod -R a+rX ctx
host_net=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort)

# run_case LABEL STORE OUT AS...: builds, exports and checks, running kiln as AS (a command
# prefix).
run_case()
{
        local label=$1 root=$2 out=$3
        shift 3
        local -a as=("$@") k
        local r etc_before files_before store_before store_after pid i n seen t0 took

        k=("${as[@]}" env KILN_ROOT="$root" "$KILN")
        t_ok "$label: the busybox base builds" "${as[@]}" env KILN_ROOT="$root" \
                bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox

        etc_before=$(host_etc)
        files_before=$(host_files)
        store_before=$(cd "$root" && find . -mindepth 1 | sort)
        t_ok "$label: the build runs every probe" "${k[@]}" build --no-cache -t iso ctx
        t_eq "$label: the host's /etc/hosts, resolv.conf, hostname are unchanged" "$(host_etc)" \
                "$etc_before"
        t_eq "$label: no file of the steps' writes is on the host outside the new layers" \
                "$(host_files)" "$files_before"
        t_eq "$label: the store's tmp/ is empty" "$(ls -A "$root/tmp")" ""
        store_after=$(cd "$root" && find . -mindepth 1 | sort)
        t_eq "$label: what the steps wrote is in the store only in layers/*/diff" \
                "$(comm -13 <(printf '%s\n' "$store_before") <(printf '%s\n' "$store_after") |
                        grep -F -e "$MARK" | grep -v '^\./layers/[0-9a-f]*/diff/')" ""
        t_eq "$label: no bomb shell outlives its step" "$(t_marked "kiln-bomb-$MARK")" 0

        t_ok "$label: export" "${k[@]}" push iso "oci:$out:iso"
        rm -rf "$out.un"
        t_ok "$label: umoci unpacks it" umoci unpack --image "$out:iso" "$out.un"
        r=$out.un/rootfs/probe

        # What the steps saw.
        t_eq "$label: the step sees no marker of the host's /root and /home, but the image's" \
                "$(cat "$r/found")" "/probe/$MARK.control"
        t_eq "$label: /root is the image's (empty)" "$(cat "$r/root.ls")" ""
        t_eq "$label: /home is the image's" "$(cat "$r/home.ls")" "user"
        t_eq "$label: ps shows two processes, the step's shell as PID 1 and ps" \
                "$(tail -n +2 "$r/ps" | awk '{print $1}' | paste -sd' ')" "1 2"
        t_grep "$label: PID 1 is the step's shell" '^ +1 /bin/sh -c ps -o pid,args' "$r/ps"
        t_ok "$label: the hostname is not the host's" test "$(cat "$r/hostname")" != "$(hostname)"
        t_eq "$label: /etc/hostname names the container" "$(cat "$r/etc-hostname")" "$(cat "$r/hostname")"
        # Other tests may add and remove interfaces (podman's veths) meanwhile: the step
        # saw the host's network when it saw every interface the host had before and after
        # the build, and none the host never had.
        local host_after stable seen_extra
        host_after=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort)
        stable=$(comm -12 <(echo "$host_net") <(echo "$host_after"))
        seen_extra=$(comm -23 "$r/net.host" <(sort -u <(echo "$host_net") <(echo "$host_after")))
        t_eq "$label: the host's network by default: every interface it keeps" \
                "$(comm -12 "$r/net.host" <(echo "$stable"))" "$stable"
        t_eq "$label: ... and no other than the host's" "$seen_extra" ""
        t_eq "$label: RUN --network=none: only lo in /proc/net/dev" "$(cat "$r/net.none")" lo
        t_eq "$label: RUN --network=none: only lo in /sys/class/net" "$(cat "$r/sysnet.none")" lo
        for i in mount umount2 keyctl add_key kexec_load bpf unshare-user unshare-mount; do
                t_grep "$label: $i fails with EPERM" "^$i EPERM\$" "$r/syscalls"
        done
        t_ok "$label: busybox unshare -U fails" test "$(cat "$r/unshare.rc")" != 0
        t_grep "$label: ... with EPERM" 'Operation not permitted' "$r/unshare.err"
        t_ok "$label: busybox mount fails" test "$(cat "$r/mount.rc")" != 0
        t_eq "$label: ... and mounts nothing" "$(cat "$r/mnt.mounted")" 0
        t_eq "$label: /proc/sys and /sys are read-only mounts" "$(paste -sd' ' "$r/ro")" \
                "/proc/sys ro /sys ro"
        t_eq "$label: no file of /proc/sys or /sys opens for writing" \
                "$(refused "$r/sys.write")" "$(printf '%s refused\n' /proc/sys/kernel/hostname \
                        /proc/sys/kernel/core_pattern /proc/sys/vm/drop_caches \
                        /sys/class/net/lo/mtu /sys/kernel/mm/transparent_hugepage/enabled)"
        # As root the container's own sysfs has no /sys/fs/cgroup, and procfs answers a
        # mkdir in /proc/sys with ENOENT: not created either way.
        t_eq "$label: nothing can be created in /sys, /sys/fs/cgroup or /proc/sys" \
                "$(refused "$r/sys.mkdir" ENOENT)" \
                "$(printf '%s refused\n' "/sys/$MARK" "/sys/fs/cgroup/$MARK" "/proc/sys/$MARK")"

        # What the writes did: each one the image can hold is in the layer, and no other.
        # /dev/mqueue takes the name (a queue of the container's own IPC namespace) but not
        # the write.
        t_eq "$label: the writes that succeeded" "$(paste -sd' ' "$r/written")" \
                "$(printf '%s ' "/$MARK.w" "/tmp/$MARK.w" "/var/tmp/$MARK.w" "/root/$MARK.w" \
                        "/home/$MARK.w" "/etc/$MARK.w" "/run/$MARK.w" "/dev/$MARK.w" \
                        "/dev/shm/$MARK.w" "/proc/self/root/$MARK.self-root" \
                        "/proc/1/root/tmp/$MARK.pid1-root" "/proc/self/cwd/$MARK.cwd" | sed 's/ $//')"
        t_eq "$label: the image holds those of the root file system" \
                "$(cd "$out.un/rootfs" && find . -name "*$MARK*" ! -path ./probe/"$MARK.control" | sort | paste -sd' ')" \
                "$(printf '%s\n' "./$MARK.cwd" "./$MARK.self-root" "./$MARK.w" "./etc/$MARK.w" \
                        "./home/$MARK.w" "./root/$MARK.w" "./run/$MARK.w" "./tmp/$MARK.pid1-root" \
                        "./tmp/$MARK.w" "./var/tmp/$MARK.w" | sort | paste -sd' ')"
        t_eq "$label: the step could write its /etc/hosts, resolv.conf and hostname" \
                "$(paste -sd' ' "$r/etc.written")" "/etc/hosts /etc/resolv.conf /etc/hostname"
        t_ok "$label: ... which are not in the image" \
                bash -c "! ls -d '$out.un/rootfs/etc/hosts' '$out.un/rootfs/etc/resolv.conf' '$out.un/rootfs/etc/hostname' 2>/dev/null | grep ."

        # The fork bomb: at the limit (2048, kiln itself counted when the limit is
        # RLIMIT_NPROC of kiln's user namespace), not past it.
        n=$(sed -n 's/^procs \([0-9]*\)$/\1/p' "$r/bomb")
        t_ok "$label: the fork bomb stopped at the process limit (saw ${n:-?} of 2048)" \
                test "${n:-0}" -gt 1900 -a "${n:-0}" -le 2048

        # kiln build --network none.
        t_ok "$label: build --network none" "${k[@]}" build --network none -t nonet \
                -f ctx/Containerfile.nonet ctx
        t_ok "$label: export it" "${k[@]}" push nonet "oci:$out:nonet"
        rm -rf "$out.nonet"
        t_ok "$label: umoci unpacks it" umoci unpack --image "$out:nonet" "$out.nonet"
        t_eq "$label: build --network none: only lo in /proc/net/dev" "$(cat "$out.nonet/rootfs/net")" lo
        t_eq "$label: build --network none: only lo in /sys/class/net" \
                "$(cat "$out.nonet/rootfs/sysnet")" lo

        # Daemons: seen from the host while the step runs, gone when it ends.
        t0=$(date +%s)
        "${k[@]}" build -f ctx/Containerfile.daemons ctx >"$T_TMP/daemons.out" 2>&1 &
        pid=$!
        seen=
        for ((i = 0; i < 100; i++)); do
                seen="$(t_marked "kiln-bg-$MARK") $(t_marked "kiln-setsid-$MARK") $(t_marked "kiln-orphan-$MARK")"
                [ "$seen" = "1 1 1" ] && break
                sleep 0.1
        done
        t_eq "$label: the step's daemons run (&, setsid, a double fork), seen from the host" \
                "$seen" "1 1 1"
        wait "$pid"
        T_RC=$?
        took=$(($(date +%s) - t0))
        t_eq "$label: the build with daemons succeeds" "$T_RC" 0
        [ "$T_RC" = 0 ] || t_diag_file output "$T_TMP/daemons.out"
        t_ok "$label: ... when the step's shell ends, not when they do (${took}s)" test "$took" -lt 60
        t_eq "$label: no daemon of the step is left on the host" \
                "$(t_marked "kiln-bg-$MARK") $(t_marked "kiln-setsid-$MARK") $(t_marked "kiln-orphan-$MARK")" \
                "0 0 0"
        t_eq "$label: the store's tmp/ is empty" "$(ls -A "$root/tmp")" ""
}

run_case root "$T_TMP/store-root" "$T_TMP/out-root/oci" env
if runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest out-kilntest
        chown kilntest: home-kilntest out-kilntest
        run_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/out-kilntest/oci" \
                runuser -u kilntest -- env HOME="$T_TMP/home-kilntest"
else
        t_skip "rootless" "kilntest cannot run $KILN (a directory above it is private)"
fi
t_done
