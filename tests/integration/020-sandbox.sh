#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The sandbox without root: test-sandbox-run (the unit tests of sandbox_run, which the unit
# suite runs as root) run as the test user kilntest, which makes it enter kiln's user
# namespace first; each of its cases is reported here as "rootless: NAME". Then, from the
# host: nothing of its containers is left running, mounted or in /tmp.
set -u
. "$(dirname "$0")/../lib.sh"

: "${KILN_SANDBOX_TEST:=$KILN_BUILDDIR/tests/unit/test-sandbox-run}"
: "${KILN_PROBE:=$KILN_BUILDDIR/tests/unit/kiln-probe}"

if ! t_rootless_users; then
        t_skip "the sandbox without root" "$T_SKIP_REASON"
        t_done
fi
if ! runuser -u kilntest -- test -x "$KILN_SANDBOX_TEST" ||
        ! runuser -u kilntest -- test -r "$KILN_PROBE"; then
        t_skip "the sandbox without root" \
                "kilntest cannot run '$KILN_SANDBOX_TEST' (a directory above it is private)"
        t_done
fi

chmod 0755 "$T_TMP"
mounts_before=$(cat /proc/self/mountinfo)
tmp_before=$(find /tmp -maxdepth 1 -name 'kiln-test-sandbox-*' -user kilntest | sort)
runuser -u kilntest -- env -i PATH=/usr/bin:/bin HOME="$T_TMP" KILN_PROBE="$KILN_PROBE" \
        ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS} ${UBSAN_OPTIONS:+UBSAN_OPTIONS=$UBSAN_OPTIONS} \
        "$KILN_SANDBOX_TEST" >"$T_TMP/tap" 2>"$T_TMP/tap.err"
rc=$?

# Its TAP, case by case: diagnostics come before the line they explain.
diag=()
cases=0
while IFS= read -r line; do
        case $line in
        "ok "*" # SKIP "*)
                name=${line#ok * - }
                cases=$((cases + 1))
                t_skip "rootless: ${name% # SKIP *}" "${name##* # SKIP }"
                diag=()
                ;;
        "ok "*)
                cases=$((cases + 1))
                t_pass "rootless: ${line#ok * - }"
                diag=()
                ;;
        "not ok "*)
                cases=$((cases + 1))
                t_fail "rootless: ${line#not ok * - }" "${diag[@]}"
                diag=()
                ;;
        "#"*)
                diag+=("${line#\# }")
                ;;
        esac
done <"$T_TMP/tap"
if [ "$rc" -eq 0 ] && [ "$cases" -gt 0 ]; then
        t_pass "test-sandbox-run as kilntest exits 0 after $cases cases"
else
        t_fail "test-sandbox-run as kilntest exits 0 after its cases" "exit status $rc, $cases cases"
        t_diag_file "stderr" "$T_TMP/tap.err"
fi
t_grep "its plan covers every case" "^1\.\.$cases\$" "$T_TMP/tap"

t_eq "no process of its containers is left on the host" \
        "$(grep -las 'KILN_SBX_MARK=' /proc/[0-9]*/environ | wc -l)" "0"
t_eq "the host's mount table is as it was" "$(cat /proc/self/mountinfo)" "$mounts_before"
t_eq "its temporary directories are gone" \
        "$(find /tmp -maxdepth 1 -name 'kiln-test-sandbox-*' -user kilntest | sort)" "$tmp_before"
t_done
