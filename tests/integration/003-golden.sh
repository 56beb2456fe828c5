#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The parser against the Containerfiles of testdata/containerfiles/:
#  - `kiln check --format json` of each NN-topic.Containerfile must equal NN-topic.json byte
#    for byte (regenerate with tests/update-goldens.sh BUILD_DIR and review the diff);
#  - `kiln check` of each of them exits 0 and reports no error, as docker accepts them all;
#  - `kiln check` of each invalid/NN-topic.Containerfile exits 1 and prints every line of
#    invalid/NN-topic.expected.
# kiln runs in the file's directory with -f NAME, so the file name it prints (and the one in
# the goldens) does not depend on where the tree is.
set -u
. "$(dirname "$0")/../lib.sh"

dir=$KILN_SRCDIR/testdata/containerfiles
shopt -s nullglob
valid=("$dir"/*.Containerfile)
invalid=("$dir"/invalid/*.Containerfile)

if [ ${#valid[@]} -ge 40 ]; then
        t_pass "testdata/containerfiles has ${#valid[@]} Containerfiles"
else
        t_fail "testdata/containerfiles has at least 40 Containerfiles" "found ${#valid[@]}"
fi

# check_in DIR ARGS...: runs kiln in DIR.
check_in()
{
        local d=$1

        shift
        t_run bash -c 'cd "$1" && shift && exec "$@"' bash "$d" "$KILN" "$@"
}

for f in "${valid[@]}"; do
        base=${f##*/}
        stem=${base%.Containerfile}
        golden=$dir/$stem.json

        check_in "$dir" check --format json -f "$base"
        if [ ! -f "$golden" ]; then
                t_fail "golden $stem" "missing $stem.json: run tests/update-goldens.sh BUILD_DIR"
        elif cmp -s "$T_OUT" "$golden"; then
                t_pass "golden $stem"
        else
                t_fail "golden $stem" "kiln check --format json differs from $stem.json:"
                diff -u "$golden" "$T_OUT" | head -n 40 | sed 's/^/#   /'
                [ -s "$T_ERR" ] && t_diag_file "stderr" "$T_ERR"
        fi

        check_in "$dir" check -f "$base"
        if [ "$T_RC" -eq 0 ] && ! grep -q ': error: ' "$T_OUT" "$T_ERR"; then
                t_pass "check $stem is clean"
        else
                t_fail "check $stem is clean" "docker accepts this file; kiln check should too"
                t_report_run kiln check -f "$base"
        fi
done

# A golden whose Containerfile is gone would never be compared again.
for g in "$dir"/*.json; do
        stem=${g##*/}
        stem=${stem%.json}
        if [ ! -f "$dir/$stem.Containerfile" ]; then
                t_fail "golden $stem.json has a Containerfile" "remove $stem.json or restore $stem.Containerfile"
        fi
done

if [ ${#invalid[@]} -ge 5 ]; then
        t_pass "testdata/containerfiles/invalid has ${#invalid[@]} Containerfiles"
else
        t_fail "testdata/containerfiles/invalid has at least 5 Containerfiles" \
                "found ${#invalid[@]}"
fi

for f in "${invalid[@]}"; do
        base=${f##*/}
        stem=${base%.Containerfile}
        expected=$dir/invalid/$stem.expected
        problems=()

        if [ ! -s "$expected" ]; then
                t_fail "invalid $stem" "missing or empty invalid/$stem.expected"
                continue
        fi
        check_in "$dir/invalid" check -f "$base"
        [ "$T_RC" -eq 1 ] || problems+=("exit status $T_RC, want 1")
        while IFS= read -r line || [ -n "$line" ]; do
                [ -n "$line" ] || continue
                grep -Fqx -e "$line" "$T_OUT" || problems+=("missing line: $line")
        done <"$expected"
        if [ ${#problems[@]} -eq 0 ]; then
                t_pass "invalid $stem"
        else
                t_fail "invalid $stem" "${problems[@]}"
                t_report_run kiln check -f "$base"
        fi
done

t_done
