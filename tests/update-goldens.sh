#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the goldens of tests/integration/003-golden.sh: for each
# testdata/containerfiles/NN-topic.Containerfile, writes `kiln check --format json` of it to
# NN-topic.json, running kiln in that directory as the test does. It only writes: review the
# change with `git diff testdata/containerfiles` before committing it.
set -uo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
        echo "usage: $0 BUILD_DIR   (the meson build directory with cmd/kiln)" >&2
        exit 2
fi
kiln=$(cd "$1" 2>/dev/null && pwd)/cmd/kiln
if [ ! -x "$kiln" ]; then
        echo "$0: no kiln binary in '$1/cmd' (run ninja -C $1 first)" >&2
        exit 1
fi
dir=$(cd "$(dirname "$0")/../testdata/containerfiles" && pwd) || exit 1
cd "$dir" || exit 1

shopt -s nullglob
rc=0
n=0
for f in *.Containerfile; do
        stem=${f%.Containerfile}
        tmp=$stem.json.tmp

        "$kiln" check --format json -f "$f" >"$tmp"
        status=$?
        if [ ! -s "$tmp" ]; then
                echo "$0: $f: kiln printed nothing (exit status $status)" >&2
                rm -f "$tmp"
                rc=1
                continue
        fi
        # Every file here is one docker accepts: an error is a parser bug to look at, not a
        # golden to keep quietly.
        [ $status -eq 0 ] || echo "$0: warning: $f: kiln check exits $status" >&2
        mv "$tmp" "$stem.json"
        n=$((n + 1))
done
for g in *.json; do
        [ -f "${g%.json}.Containerfile" ] || echo "$0: stale golden $g (its Containerfile is gone)" >&2
done
echo "wrote $n goldens in $dir; review them with: git diff -- testdata/containerfiles"
exit $rc
