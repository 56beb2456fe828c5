# SPDX-License-Identifier: Apache-2.0
# TAP helpers for the integration tests, tests/integration/NNN-topic.sh:
#
#     set -u
#     . "$(dirname "$0")/../lib.sh"
#     t_ok "version runs" "$KILN" version
#     t_grep "version names zstd" '^zstd: ' "$T_OUT"
#     t_done
#
# Each assertion prints "ok N - NAME" or "not ok N - NAME" followed by "# " lines saying why;
# t_done prints the plan "1..N" and exits 1 when an assertion failed.
#
# The environment (set by tests/integration/meson.build): KILN, the kiln binary; KILN_SRCDIR
# and KILN_BUILDDIR, the source and build trees. T_TMP is a fresh directory removed when the
# script exits; KILN_ROOT points into it so that no test touches a real store. After t_run,
# t_ok or t_fails, the command's standard output is in $T_OUT, its standard error in $T_ERR
# and its exit status in $T_RC.

T_COUNT=0
T_FAILED=0

t_diag()
{
        local line

        for line in "$@"; do
                printf '# %s\n' "$line"
        done
}

# Stops the whole script: TAP consumers report the reason.
t_bail()
{
        printf 'Bail out! %s\n' "$*"
        exit 1
}

t_pass()
{
        T_COUNT=$((T_COUNT + 1))
        printf 'ok %d - %s\n' "$T_COUNT" "$1"
}

# t_fail NAME [DIAGNOSTIC...]
t_fail()
{
        local name=$1

        shift
        T_COUNT=$((T_COUNT + 1))
        T_FAILED=$((T_FAILED + 1))
        printf 'not ok %d - %s\n' "$T_COUNT" "$name"
        t_diag "$@"
}

# t_skip NAME REASON: counts as a skip, not as a pass.
t_skip()
{
        T_COUNT=$((T_COUNT + 1))
        printf 'ok %d - %s # SKIP %s\n' "$T_COUNT" "$1" "$2"
}

# Prints the first lines of a file as diagnostics, labelled.
t_diag_file()
{
        local label=$1 file=$2 line n=0

        [ -s "$file" ] || {
                t_diag "$label: (empty)"
                return
        }
        t_diag "$label:"
        while IFS= read -r line || [ -n "$line" ]; do
                n=$((n + 1))
                if [ $n -gt 20 ]; then
                        t_diag "  ..."
                        break
                fi
                t_diag "  $line"
        done <"$file"
}

# t_run CMD...: runs CMD with its output captured; never fails by itself.
t_run()
{
        "$@" >"$T_OUT" 2>"$T_ERR"
        T_RC=$?
}

t_report_run()
{
        t_diag "command: $*" "exit status: $T_RC"
        t_diag_file "stdout" "$T_OUT"
        t_diag_file "stderr" "$T_ERR"
}

# t_ok NAME CMD...: passes when CMD exits 0.
t_ok()
{
        local name=$1

        shift
        t_run "$@"
        if [ "$T_RC" -eq 0 ]; then
                t_pass "$name"
        else
                t_fail "$name"
                t_report_run "$@"
        fi
}

# t_fails NAME EXPECTED_EXIT CMD...: passes when CMD exits with EXPECTED_EXIT.
t_fails()
{
        local name=$1 want=$2

        shift 2
        t_run "$@"
        if [ "$T_RC" -eq "$want" ]; then
                t_pass "$name"
        else
                t_fail "$name" "expected exit status $want"
                t_report_run "$@"
        fi
}

# t_grep NAME PATTERN FILE: passes when a line of FILE matches the extended regex PATTERN.
t_grep()
{
        if grep -Eq -e "$2" -- "$3" 2>/dev/null; then
                t_pass "$1"
        else
                t_fail "$1" "no line matches /$2/"
                t_diag_file "$3" "$3"
        fi
}

# t_nogrep NAME PATTERN FILE: passes when no line of FILE matches PATTERN.
t_nogrep()
{
        if [ ! -f "$3" ]; then
                t_fail "$1" "$3 does not exist"
        elif grep -Eq -e "$2" -- "$3"; then
                t_fail "$1" "a line matches /$2/"
                t_diag_file "$3" "$3"
        else
                t_pass "$1"
        fi
}

# t_contains NAME STRING FILE: as t_grep with a fixed string (for messages full of quotes and
# brackets).
t_contains()
{
        if grep -Fq -e "$2" -- "$3" 2>/dev/null; then
                t_pass "$1"
        else
                t_fail "$1" "no line contains '$2'"
                t_diag_file "$3" "$3"
        fi
}

# t_eq NAME GOT WANT
t_eq()
{
        if [ "$2" = "$3" ]; then
                t_pass "$1"
        else
                t_fail "$1" "got:  '$2'" "want: '$3'"
        fi
}

# Ends the script: the plan, and exit 1 when an assertion failed.
t_done()
{
        printf '1..%d\n' "$T_COUNT"
        if [ "$T_FAILED" -gt 0 ]; then
                t_diag "$T_FAILED of $T_COUNT failed"
                exit 1
        fi
        exit 0
}

t_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${KILN_SRCDIR:=$(dirname "$t_lib_dir")}"
: "${KILN_BUILDDIR:=$KILN_SRCDIR/build}"
: "${KILN:=$KILN_BUILDDIR/cmd/kiln}"
export KILN KILN_SRCDIR KILN_BUILDDIR
[ -x "$KILN" ] || t_bail "no kiln binary at '$KILN' (set KILN or build first)"

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-test.XXXXXX") || t_bail "cannot create a temporary directory"
trap 'rm -rf "$T_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T_OUT=$T_TMP/.stdout
T_ERR=$T_TMP/.stderr
T_RC=0
: >"$T_OUT"
: >"$T_ERR"
export KILN_ROOT=$T_TMP/store

# t_rootless_users: makes sure that two real non-root users exist for the rootless tests:
# kilntest, with two subordinate id ranges in /etc/subuid and /etc/subgid (200000:1000 under
# its login name, then 300000:64536 under its uid number, as both forms are allowed), and
# kilnnorange, with none. Idempotent, and the files are replaced by rename, so a test
# running meanwhile never sees them half-written. Returns 1 with the reason in
# T_SKIP_REASON when it cannot (not root, a tool missing), which the caller reports as a
# skip; bails out when creating them fails.
t_rootless_users()
{
        local tool

        T_SKIP_REASON=
        if [ "$(id -u)" -ne 0 ]; then
                T_SKIP_REASON="creating the test users needs root"
                return 1
        fi
        for tool in useradd runuser flock newuidmap newgidmap; do
                if ! command -v "$tool" >/dev/null; then
                        T_SKIP_REASON="$tool is not installed"
                        return 1
                fi
        done
        (
                flock 9
                for u in kilntest kilnnorange; do
                        id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/sh "$u" || exit 1
                done
                uid=$(id -u kilntest) nouid=$(id -u kilnnorange)
                for f in /etc/subuid /etc/subgid; do
                        touch "$f" || exit 1
                        # useradd may have given them ranges of its own: keep only ours.
                        {
                                grep -Ev "^(kilntest|$uid|kilnnorange|$nouid):" "$f"
                                printf 'kilntest:200000:1000\n%s:300000:64536\n' "$uid"
                        } >"$f.kiln-test"
                        if cmp -s "$f" "$f.kiln-test"; then
                                rm -f "$f.kiln-test"
                        else
                                chmod 0644 "$f.kiln-test" && mv "$f.kiln-test" "$f" || exit 1
                        fi
                done
        ) 9>/run/kiln-test-users.lock ||
                t_bail "could not create the users kilntest and kilnnorange"
}
