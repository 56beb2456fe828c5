#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kiln build --jobs: independent stages build at once, as root and as a user without root
# (kilntest, with subordinate ids):
#   - two stages that meet over TCP on 127.0.0.1 (host network: one listens, the other
#     connects) build with --jobs 2, and with the default (one job per CPU, when there are
#     two); with --jobs 1 they build one after the other, so the listener waits in vain and
#     the build fails: the stages really ran at the same time
#   - each stage's lines come out whole, behind "[NAME] "; the final stage has both results
#   - the image is the one --jobs 1 builds from the same stages (same layers), and a rebuild
#     with --jobs 2 takes every step from the cache
#   - a stage that fails ends the build with its error (file, line) while another stage
#     still runs; that one is stopped: its processes are gone and the store's tmp/ is empty
#   - SIGINT while two stages run: kiln exits non-zero within seconds saying why, the
#     stages' processes are gone, no image got the name, and tmp/ is empty
set -u
. "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" != 0 ]; then
        t_skip "--jobs" "sending signals to kilntest's kiln needs root"
        t_done
fi
command -v setpriv >/dev/null || t_bail "setpriv (util-linux) is not installed"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"
MARK=kiln-jobs-$$-$RANDOM$RANDOM

# both_marked WORD: the processes marked WORD-a or WORD-b.
both_marked()
{
        echo $(($(t_marked "$1-a") + $(t_marked "$1-b")))
}

free_port()
{
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir ctx
# The listener gives up after 8 s: alone, it fails. What it accepts is read by a program of
# its own (-e): nc itself would stop at the end of its standard input (/dev/null) and might
# not read the connection at all.
cat >ctx/Containerfile.meet <<'CF'
ARG PORT
FROM busybox AS server
ARG PORT
RUN echo "server listens on $PORT" && timeout 8 nc -l -p "$PORT" -e sh -c 'head -n 1 >/got'; \
    test "$(cat /got)" = hello || { echo "server: nobody came"; exit 1; }
FROM busybox AS client
ARG PORT
RUN for i in $(seq 1 100); do echo hello | nc 127.0.0.1 "$PORT" && exit 0; sleep 0.1; done; \
    echo "client: no server"; exit 1
FROM busybox
COPY --from=server /got /from-server
COPY --from=client /etc/passwd /from-client
RUN echo done >/done
CF
cat >ctx/Containerfile.pair <<'CF'
FROM busybox AS one
RUN echo one >/one
FROM busybox AS two
RUN echo two >/two
FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
CF
cat >ctx/Containerfile.fail <<'CF'
FROM busybox AS slow
ARG M
RUN sh -c "sleep 1000; true" "$M"
FROM busybox AS bad
RUN sleep 1 && exit 7
FROM busybox
COPY --from=slow /etc/passwd /a
COPY --from=bad /etc/passwd /b
CF
cat >ctx/Containerfile.int <<'CF'
FROM busybox AS a
ARG M
RUN sh -c "sleep 1000; true" "$M-a"
FROM busybox AS b
ARG M
RUN sh -c "sleep 1000; true" "$M-b"
FROM busybox
COPY --from=a /etc/passwd /a
COPY --from=b /etc/passwd /b
CF
chmod -R a+rX ctx

run_case()
{
        local label=$1 root=$2 out=$3
        shift 3
        local -a as=("$@") k
        local port word pid rc t0 ms

        k=("${as[@]}" env KILN_ROOT="$root" "$KILN")
        t_ok "$label: the busybox base builds" "${as[@]}" env KILN_ROOT="$root" \
                bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox

        port=$(free_port)
        t_ok "$label: --jobs 2: two stages that meet build at once" "${k[@]}" build --jobs 2 \
                --no-cache --build-arg "PORT=$port" -t meet -f ctx/Containerfile.meet ctx
        t_grep "$label: ... the server's lines carry its name" '^\[server\] server listens on' "$T_OUT"
        t_grep "$label: ... and its steps" '^\[server\] STEP 2/3: ARG PORT$' "$T_OUT"
        t_grep "$label: ... the client's too" '^\[client\] STEP 1/3: FROM busybox AS client$' "$T_OUT"
        t_nogrep "$label: ... no line is cut into another" '.\[(server|client)\] ' "$T_OUT"
        t_ok "$label: ... the image" "${k[@]}" push meet "oci:$out/meet:meet"
        t_ok "$label: ... unpacks" umoci unpack --image "$out/meet:meet" "$out/meet.un"
        t_eq "$label: ... with what the server got" "$(cat "$out/meet.un/rootfs/from-server")" hello

        if [ "$(nproc)" -ge 2 ]; then
                port=$(free_port)
                t_ok "$label: without --jobs (one job per CPU) they meet too" "${k[@]}" build \
                        --no-cache --build-arg "PORT=$port" -f ctx/Containerfile.meet ctx
        else
                t_skip "$label: without --jobs" "one CPU: the default is one job"
        fi
        port=$(free_port)
        t_fails "$label: --jobs 1: one after the other, the server waits in vain" 1 "${k[@]}" \
                build --jobs 1 --no-cache --build-arg "PORT=$port" -f ctx/Containerfile.meet ctx
        t_contains "$label: ... and says so" "server: nobody came" "$T_ERR"
        t_nogrep "$label: ... without prefixes" '^\[server\]' "$T_OUT"

        t_ok "$label: --jobs 1 builds the pair" "${k[@]}" build --jobs 1 --timestamp 0 -t pair1 \
                -f ctx/Containerfile.pair ctx
        t_ok "$label: ... inspect" "${k[@]}" inspect pair1
        local layers1
        layers1=$(jq -c .RootFS.Layers "$T_OUT")
        t_ok "$label: --jobs 2 builds the pair from the cache" "${k[@]}" build --jobs 2 \
                --timestamp 0 -t pair2 -f ctx/Containerfile.pair ctx
        t_eq "$label: ... every step from the cache" "$(grep -c 'Using cache' "$T_OUT")" 4
        t_ok "$label: --jobs 2 --no-cache builds the pair again" "${k[@]}" build --jobs 2 \
                --no-cache --timestamp 0 -t pair3 -f ctx/Containerfile.pair ctx
        t_ok "$label: ... inspect" "${k[@]}" inspect pair3
        t_eq "$label: ... the same layers as with --jobs 1" "$(jq -c .RootFS.Layers "$T_OUT")" "$layers1"

        word=$MARK-$label-fail
        t0=$(date +%s%N)
        t_fails "$label: a failing stage ends the build" 1 "${k[@]}" build --jobs 2 --no-cache \
                --build-arg "M=$word" -t failed -f ctx/Containerfile.fail ctx
        ms=$((($(date +%s%N) - t0) / 1000000))
        t_contains "$label: ... with its error, file and line" \
                'ctx/Containerfile.fail:5:1: building at STEP "RUN sleep 1 && exit 7": exit status 7' "$T_ERR"
        t_ok "$label: ... soon, not when the other stage ends (${ms} ms)" test "$ms" -lt 30000
        t_eq "$label: ... the other stage's processes are gone" "$(t_wait_for 0 10 t_marked "$word")" 0
        t_eq "$label: ... tmp/ is empty" "$(ls -A "$root/tmp")" ""
        t_fails "$label: ... no image got the name" 1 "${k[@]}" inspect failed

        word=$MARK-$label-int
        "${k[@]}" build --jobs 2 --no-cache --build-arg "M=$word" -t interrupted \
                -f ctx/Containerfile.int ctx >"$T_TMP/int.out" 2>"$T_TMP/int.err" &
        pid=$!
        if [ "$(t_wait_for 2 30 both_marked "$word")" != 2 ]; then
                t_fail "$label: SIGINT: both stages start"
                t_diag_file stdout "$T_TMP/int.out"
                t_diag_file stderr "$T_TMP/int.err"
                kill -KILL "$pid"
                wait "$pid" 2>/dev/null
                return
        fi
        t_pass "$label: SIGINT: both stages run at once"
        t0=$(date +%s%N)
        {
                kill -INT "$pid"
                wait "$pid"
                rc=$?
        } 2>/dev/null
        ms=$((($(date +%s%N) - t0) / 1000000))
        t_ok "$label: SIGINT: kiln exits non-zero ($rc)" test "$rc" -ne 0
        t_ok "$label: ... within 10 s (${ms} ms)" test "$ms" -lt 10000
        t_contains "$label: ... saying why" "interrupted by SIGINT" "$T_TMP/int.err"
        t_eq "$label: ... the stages' processes are gone" "$(t_wait_for 0 10 both_marked "$word")" 0
        t_eq "$label: ... nothing of the store is mounted" "$(grep -cF "$root" /proc/self/mountinfo)" 0
        t_eq "$label: ... tmp/ is empty" "$(ls -A "$root/tmp")" ""
        t_fails "$label: ... no image got the name" 1 "${k[@]}" inspect interrupted
}

run_case root "$T_TMP/store-root" "$T_TMP/out-root" env
if t_rootless_users && runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest out-kilntest
        chown kilntest: home-kilntest out-kilntest
        run_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/out-kilntest" \
                setpriv --reuid=kilntest --regid=kilntest --init-groups env HOME="$T_TMP/home-kilntest"
else
        t_skip "rootless" "${T_SKIP_REASON:-kilntest cannot run $KILN}"
fi
t_done
