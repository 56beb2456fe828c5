#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kiln build interrupted while a RUN step runs (a shell that sleeps, marked by a unique
# argument), as root and as a user without root (kilntest, with subordinate ids):
#   - SIGINT (what Ctrl-C sends) and SIGTERM to the kiln process: kiln exits non-zero within
#     seconds saying why, the step's processes are gone, nothing of the store is mounted on
#     the host, the run's pids cgroup is removed, the store's tmp/ is empty after the next
#     kiln command, no image got the build's name, and an image built earlier is intact
#   - SIGKILL of kiln: the container dies with it (PR_SET_PDEATHSIG), its step dir is left in
#     tmp/ and the next kiln command sweeps it; the next RUN removes the leftover cgroup, and
#     the same build then succeeds.
# The signals go to kiln's PID only, never to its process group, so that only kiln can have
# killed the container. kiln runs as kilntest through setpriv, which execs, so the PID that
# the shell knows is kiln's.
set -u
. "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" != 0 ]; then
        t_skip "interrupting RUN" "sending signals to kilntest's kiln needs root"
        t_done
fi
command -v setpriv >/dev/null || t_bail "setpriv (util-linux) is not installed"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"
MARK=kiln-int-$$-$RANDOM$RANDOM
kiln_exe=$(readlink -f "$KILN")

# gone PID: "gone" once PID has exited (a zombie, or reaped), else "running".
gone()
{
        local stat

        stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
                echo gone
                return
        }
        stat=${stat##*) }
        [ "${stat%% *}" = Z ] && echo gone || echo running
}

mkdir ctx
printf 'FROM busybox\nRUN echo kept >/kept\n' >ctx/Containerfile.earlier
printf 'FROM busybox\nARG M\nRUN echo before >/before\nRUN sh -c "sleep 1000; true" "$M"\n' \
        >ctx/Containerfile
chmod -R a+rX ctx

run_case()
{
        local label=$1 root=$2 out=$3
        shift 3
        local -a as=("$@") k
        local id sig word pid rc t0 ms state leftover cgroup=

        k=("${as[@]}" env KILN_ROOT="$root" "$KILN")
        t_ok "$label: the busybox base builds" "${as[@]}" env KILN_ROOT="$root" \
                bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
        t_ok "$label: an earlier image builds" "${k[@]}" build -t earlier -f ctx/Containerfile.earlier ctx
        id=$(tail -1 "$T_OUT")

        for sig in INT TERM KILL; do
                word=$MARK-$label-$sig
                "${k[@]}" build -t "int-$sig" --build-arg "M=$word" ctx >"$T_TMP/build.out" \
                        2>"$T_TMP/build.err" &
                pid=$!
                if [ "$(t_wait_for 1 30 t_marked "$word")" != 1 ]; then
                        t_fail "$label: SIG$sig: the RUN step starts"
                        t_diag_file stdout "$T_TMP/build.out"
                        t_diag_file stderr "$T_TMP/build.err"
                        kill -KILL "$pid"
                        wait "$pid" 2>/dev/null
                        continue
                fi
                t_eq "$label: SIG$sig: the signal goes to kiln itself" \
                        "$(readlink "/proc/$pid/exe")" "$kiln_exe"
                t0=$(date +%s%N)
                # bash reports a job killed by a signal on its stderr, when it notices.
                {
                        kill -s "$sig" "$pid"
                        t_wait_for gone 20 gone "$pid" >/dev/null
                        ms=$((($(date +%s%N) - t0) / 1000000))
                        state=$(gone "$pid")
                        [ "$state" = gone ] || kill -KILL "$pid"
                        wait "$pid"
                        rc=$?
                } 2>/dev/null
                [ "$state" = gone ] || t_fail "$label: SIG$sig: kiln exits" "still running after 20 s"
                if [ "$sig" = KILL ]; then
                        t_eq "$label: SIGKILL: kiln dies" "$rc" 137
                        # PR_SET_PDEATHSIG reaches the container's PID 1 some time after.
                        t_eq "$label: SIGKILL: the container dies with kiln" \
                                "$(t_wait_for 0 10 t_marked "$word")" 0
                        leftover=$(ls -A "$root/tmp")
                        t_ok "$label: SIGKILL: the step's dir is left in tmp/ ($leftover)" \
                                test -n "$leftover"
                        cgroup=$(find /sys/fs/cgroup -maxdepth 3 -name "kiln-$pid-*" 2>/dev/null)
                else
                        t_ok "$label: SIG$sig: kiln exits non-zero ($rc)" test "$rc" -ne 0
                        t_ok "$label: SIG$sig: ... within 5 s (${ms} ms)" test "$ms" -lt 5000
                        t_contains "$label: SIG$sig: ... saying why" "interrupted by SIG$sig" \
                                "$T_TMP/build.err"
                        t_eq "$label: SIG$sig: the step's processes are gone" "$(t_marked "$word")" 0
                        t_eq "$label: SIG$sig: the run's pids cgroup is removed" \
                                "$(find /sys/fs/cgroup -maxdepth 3 -name "kiln-$pid-*" 2>/dev/null)" ""
                fi
                t_eq "$label: SIG$sig: nothing of the store is mounted on the host" \
                        "$(grep -cF "$root" /proc/self/mountinfo)" 0
                t_ok "$label: SIG$sig: the next kiln command" "${k[@]}" images
                t_eq "$label: SIG$sig: ... leaves tmp/ empty" "$(ls -A "$root/tmp")" ""
                t_fails "$label: SIG$sig: the build's name names no image" 1 \
                        "${k[@]}" inspect "int-$sig"
        done

        # The cgroup that SIGKILL left (as root), and the build once more, to its end, with a
        # step that ends.
        printf 'FROM busybox\nRUN echo after >/after\n' >"$T_TMP/Containerfile.after"
        chmod a+r "$T_TMP/Containerfile.after"
        t_ok "$label: a build after the interrupts" "${k[@]}" build -t after \
                -f "$T_TMP/Containerfile.after" ctx
        t_eq "$label: ... and the cgroup that the killed kiln left is gone (${cgroup:-none was left})" \
                "$(find /sys/fs/cgroup -maxdepth 3 -name "kiln-$pid-*" 2>/dev/null)" ""
        t_ok "$label: the earlier image is still there" "${k[@]}" inspect earlier
        t_eq "$label: ... with its id" "$(jq -r .Id "$T_OUT" 2>/dev/null)" "sha256:$id"
        t_ok "$label: ... and exports" "${k[@]}" push earlier "oci:$out:earlier"
        t_oci_layout_valid "$label: ... as a valid layout" "$out"
        rm -rf "$out.un"
        t_ok "$label: ... that umoci unpacks" umoci unpack --image "$out:earlier" "$out.un"
        t_eq "$label: ... with its RUN's file" "$(cat "$out.un/rootfs/kept" 2>&1)" kept
        t_eq "$label: the store's tmp/ is empty at the end" "$(ls -A "$root/tmp")" ""
}

run_case root "$T_TMP/store-root" "$T_TMP/out-root/oci" env
if t_rootless_users && runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest out-kilntest
        chown kilntest: home-kilntest out-kilntest
        run_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/out-kilntest/oci" \
                setpriv --reuid=kilntest --regid=kilntest --init-groups env HOME="$T_TMP/home-kilntest"
else
        t_skip "rootless" "${T_SKIP_REASON:-kilntest cannot run $KILN}"
fi
t_done
