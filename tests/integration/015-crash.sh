#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Crash safety: kiln build, push to oci-archive: and pull are killed with SIGKILL at several
# points of a large COPY, export and import. Afterwards the store must be usable and
# consistent (every blob hashes to its name, every layer dir has a complete layer.json, the
# earlier images intact), the dead process's tmp/ entries are swept by the next kiln run,
# an export's destination is absent or complete, and the work succeeds when run again.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"

# A context of 150 MB in 3072 files of 50 kB.
mkdir -p ctx/data small
head -c 150M /dev/urandom | (cd ctx/data && split -b 50k -a 4 - f) || t_bail "make the context"
printf 'FROM scratch\nCOPY . /ctx/\n' >Containerfile
printf 'small\n' >small/f
printf 'FROM scratch\nCOPY f /f\n' >small/Containerfile

store_consistent()
{
        local root=$1 f bad=0

        for f in "$root"/blobs/sha256/*; do
                [ -e "$f" ] || continue
                [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${f##*/}" ] || {
                        echo "blob ${f##*/} does not match its name"
                        bad=1
                }
        done
        for f in "$root"/layers/*/; do
                [ -d "$f" ] || continue
                jq -e '.diff_id' "$f/layer.json" >/dev/null 2>&1 && [ -d "$f/diff" ] || {
                        echo "layer $f is incomplete"
                        bad=1
                }
        done
        return $bad
}

# tmp_of ROOT PID: the names in ROOT/tmp/ that belong to PID.
tmp_of()
{
        ls -A "$1/tmp" 2>/dev/null | grep "^$2-"
}

# A command killed mid-work leaves its entries in tmp/; the next kiln run must sweep them.
LEFT=0
KILLS=0

# killed NAME: runs after each kill; checks the store at $KILN_ROOT and that EARLY (the id of
# an image made before) is intact.
killed()
{
        local name=$1 left

        left=$(tmp_of "$KILN_ROOT" "$PID" | wc -l)
        [ "$left" -gt 0 ] && LEFT=$((LEFT + 1))
        t_ok "$name: kiln images works" "$KILN" images
        t_grep "$name: the earlier image is listed" "^localhost/early +latest +${EARLY:0:12} " "$T_OUT"
        t_eq "$name: the dead process's tmp/ entries are swept" "$(tmp_of "$KILN_ROOT" "$PID")" ""
        t_ok "$name: the store is consistent" store_consistent "$KILN_ROOT"
        t_ok "$name: the earlier image is intact" "$KILN" inspect early
}

# run_bg CMD...: starts CMD in the background; PID is its pid.
run_bg()
{
        "$@" >"$T_TMP/bg.out" 2>"$T_TMP/bg.err" &
        PID=$!
}

# stop: kills PID with SIGKILL; STATUS is "killed" or "finished" (it ended first).
stop()
{
        local rc

        kill -9 "$PID" 2>/dev/null
        # (braces: bash's "Killed" notice goes to /dev/null, not to the log)
        { wait "$PID"; } 2>/dev/null
        rc=$?
        if [ $rc -eq 137 ]; then
                STATUS=killed
                KILLS=$((KILLS + 1))
        else
                STATUS="finished with $rc"
        fi
}

# wait_for CMD...: polls (every 10 ms, at most 20 s) until CMD succeeds or PID ends.
wait_for()
{
        local i

        for ((i = 0; i < 2000; i++)); do
                "$@" && return 0
                kill -0 "$PID" 2>/dev/null || return 1
                sleep 0.01
        done
        return 1
}

has_tmp() { [ -n "$(tmp_of "$KILN_ROOT" "$PID")" ]; }

t_ok "an earlier image builds" "$KILN" build -q -t early small
EARLY=$(tail -1 "$T_OUT")

# ---- kiln build ----

for d in 0.05 0.3 0.8 1.4 1.9; do
        run_bg "$KILN" build -q -f Containerfile -t big ctx
        sleep "$d"
        stop
        t_pass "build killed after ${d}s ($STATUS)"
        killed "build killed after ${d}s"
done
run_bg "$KILN" build -q -f Containerfile -t big ctx
wait_for has_tmp
stop
t_pass "build killed once its tmp/ dir appeared ($STATUS)"
killed "build killed once its tmp/ dir appeared"

t_ok "the build succeeds afterwards" "$KILN" build -q -f Containerfile -t big ctx
BIG=$(tail -1 "$T_OUT")
t_ok "the store is consistent after the build" store_consistent "$KILN_ROOT"

# ---- kiln push to oci-archive: ----

n=0
for d in 0.2 0.8 1.5 2.5; do
        n=$((n + 1))
        run_bg "$KILN" push big "oci-archive:$T_TMP/out-$n.tar"
        sleep "$d"
        stop
        t_pass "push killed after ${d}s ($STATUS)"
        killed "push killed after ${d}s"
done
n=$((n + 1))
run_bg "$KILN" push big "oci-archive:$T_TMP/out-$n.tar"
wait_for bash -c "ls '$T_TMP' | grep -q '^out-$n\.tar\..*\.tmp\$'"
stop
t_pass "push killed while writing the archive ($STATUS)"
killed "push killed while writing the archive"

t_ok "the push succeeds afterwards" "$KILN" push big "oci-archive:$T_TMP/ref.tar"
t_ok "the store is consistent after the push" store_consistent "$KILN_ROOT"
ok=true
for ((i = 1; i <= n; i++)); do
        f=$T_TMP/out-$i.tar
        if [ -e "$f" ] && ! cmp -s "$f" "$T_TMP/ref.tar"; then
                t_diag "$f exists but is not the complete archive"
                ok=false
        fi
done
t_eq "each killed push's destination is absent or complete" "$ok" true
t_diag "temp files left next to killed pushes' destinations: $(ls "$T_TMP" | grep -c '^out-.*\.tmp$')"

# ---- kiln pull from oci-archive: into a second store ----

export KILN_ROOT=$T_TMP/store2
t_ok "an earlier image builds in the second store" "$KILN" build -q -t early small
EARLY=$(tail -1 "$T_OUT")
for d in 0.1 0.4 1.0 1.8 2.6; do
        run_bg "$KILN" pull "oci-archive:$T_TMP/ref.tar"
        sleep "$d"
        stop
        t_pass "pull killed after ${d}s ($STATUS)"
        killed "pull killed after ${d}s"
done
t_ok "the pull succeeds afterwards" "$KILN" pull "oci-archive:$T_TMP/ref.tar"
t_eq "it gives the built image" "$(tail -1 "$T_OUT")" "${BIG#sha256:}"
t_ok "kiln prune works in the second store" "$KILN" prune
t_ok "the second store is consistent after prune" store_consistent "$KILN_ROOT"

# ---- the first store, pruned ----

export KILN_ROOT=$T_TMP/store
t_ok "kiln prune works" "$KILN" prune
t_ok "the store is consistent after prune" store_consistent "$KILN_ROOT"
t_ok "kiln images works after prune" "$KILN" images
t_grep "it lists the built image" "^localhost/big +latest +${BIG:0:12} " "$T_OUT"
t_ok "a rebuild after prune succeeds" "$KILN" build -q -f Containerfile -t big ctx
t_eq "a rebuild gives a valid id" "$(tail -1 "$T_OUT" | grep -cE '^[0-9a-f]{64}$')" 1

# The kills must have hit kiln mid-work, or the checks above proved little.
t_ok "most commands were killed mid-work ($KILLS kills)" test "$KILLS" -ge 10
t_ok "some left tmp/ entries for the sweep ($LEFT)" test "$LEFT" -ge 3

t_done
