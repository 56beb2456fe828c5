#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Crash safety: kiln build, push to oci-archive: and pull are killed with SIGKILL at several
# points of a large COPY, export and import. Afterwards the store must be usable and
# consistent (every blob hashes to its name, every layer dir has a complete layer.json, the
# earlier images intact), the dead process's tmp/ entries are swept by the next kiln run,
# an export's destination is absent or complete, the next push to it removes the temp files
# the killed one left beside it, and the work succeeds when run again.
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
wait_for bash -c "ls '$T_TMP' | grep -q '^out-$n\.tar\.tmp-'"
stop
t_pass "push killed while writing the archive ($STATUS)"
killed "push killed while writing the archive"

t_ok "the push succeeds afterwards" "$KILN" push big "oci-archive:$T_TMP/ref.tar"
t_oci_archive_valid "... to an archive that follows the image-spec" "$T_TMP/ref.tar"
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

# The next push to a killed push's destination removes the temp files the killed one left
# there ("<dest>.tmp-<pid>-<hex>", the pid gone) and nothing else: not a live process's, not
# another destination's, not a user's file that only looks alike.
sh -c 'exit 0' &
gone=$!
wait "$gone"
left_by_kills=$(ls -A "$T_TMP" | grep -cE '^out-[0-9]+\.tar\.tmp-[0-9]+-[0-9a-f]+$')
t_ok "the killed pushes left temp files beside their destinations ($left_by_kills)" \
        test "$left_by_kills" -ge 1
printf 'x' >"$T_TMP/out-1.tar.tmp-$gone-00ff"
printf 'x' >"$T_TMP/out-1.tar.tmp-$$-00ff"
printf 'x' >"$T_TMP/other.tar.tmp-$gone-00ff"
printf 'x' >"$T_TMP/out-1.tar.tmp-$gone-notes"
printf 'x' >"$T_TMP/out-1.tar.tmp-$gone-00ff.keep"
# What must survive: everything but the temp files of dead pushes (the live one's included).
{
        ls -A "$T_TMP" | grep -vE '^out-[0-9]+\.tar\.tmp-[0-9]+-[0-9a-f]+$'
        echo "out-1.tar.tmp-$$-00ff"
} | sort >"$T_TMP/before.list"
for ((i = 1; i <= n; i++)); do
        t_ok "push again to out-$i.tar" "$KILN" push big "oci-archive:$T_TMP/out-$i.tar"
        t_ok "out-$i.tar is complete" cmp -s "$T_TMP/out-$i.tar" "$T_TMP/ref.tar"
        t_eq "no dead push's temp file is left beside out-$i.tar" \
                "$(ls -A "$T_TMP" | grep -E "^out-$i\.tar\.tmp-" | grep -v "^out-1\.tar\.tmp-$$-00ff$" |
                        grep -vE "^out-1\.tar\.tmp-$gone-(notes|00ff\.keep)$")" ""
done
missing=$(ls -A "$T_TMP" | sort | comm -23 "$T_TMP/before.list" -)
t_eq "nothing else in the directory was removed" "$missing" ""
t_ok "a live process's temp file stays" test -e "$T_TMP/out-1.tar.tmp-$$-00ff"
t_ok "another destination's stays" test -e "$T_TMP/other.tar.tmp-$gone-00ff"
t_ok "look-alike names stay" test -e "$T_TMP/out-1.tar.tmp-$gone-notes" -a \
        -e "$T_TMP/out-1.tar.tmp-$gone-00ff.keep"

# The same for docker-archive: and oci:, killed once their temp files exist.
run_bg "$KILN" push big "docker-archive:$T_TMP/docker.tar"
wait_for bash -c "ls '$T_TMP' | grep -q '^docker\.tar\.tmp-'"
stop
t_pass "docker-archive push killed while writing ($STATUS)"
t_ok "it left a temp file" bash -c "ls '$T_TMP' | grep -q '^docker\.tar\.tmp-'"
t_ok "push again to docker.tar" "$KILN" push big "docker-archive:$T_TMP/docker.tar"
t_eq "no temp file is left beside docker.tar" "$(ls -A "$T_TMP" | grep '^docker\.tar\.tmp-')" ""
t_ok "skopeo reads docker.tar" skopeo inspect "docker-archive:$T_TMP/docker.tar"

mkdir -p "$T_TMP/layout/blobs/sha256"
printf 'mine\n' >"$T_TMP/layout/notes.txt"
printf 'x' >"$T_TMP/layout/index.json.tmp-$gone-1f"
run_bg "$KILN" push big "oci:$T_TMP/layout:v1"
wait_for bash -c "ls '$T_TMP/layout/blobs/sha256' | grep -q '\.tmp-'"
stop
t_pass "oci: push killed while copying blobs ($STATUS)"
t_ok "it left a temp blob" bash -c "ls '$T_TMP/layout/blobs/sha256' | grep -q '\.tmp-'"
t_ok "push again to the layout" "$KILN" push big "oci:$T_TMP/layout:v1"
t_eq "no temp file is left in the layout" \
        "$(find "$T_TMP/layout" -name '*.tmp-*' -printf '%P\n')" ""
t_ok "the user's file in the layout stays" test -e "$T_TMP/layout/notes.txt"
t_ok "skopeo reads the layout" skopeo inspect "oci:$T_TMP/layout:v1"


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
