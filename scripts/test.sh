#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it: installs what it needs, lints, builds with gcc and
# --werror, runs the unit, integration and fuzz-regression suites, does it again with clang
# under AddressSanitizer and UBSan, runs each fuzzer for a while, and ends with one line
# "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
kiln_install_packages $KILN_BUILD_PACKAGES $KILN_TEST_PACKAGES || exit 1

# The rootless tests run kiln, its test helpers and the checkout's scripts as other users
# (kilntest, kilnnorange). A checkout that they cannot reach (below /root, or a private
# mktemp dir) would turn all of those into skips, so the suite runs from a copy of the
# checkout in a directory that they can read, which it removes afterwards. Its results and
# its summary line are the suite's.
if [ "$(id -u)" = 0 ] && [ -z "${KILN_TEST_COPY:-}" ] &&
        ! setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$PWD/scripts/test.sh" \
                2>/dev/null; then
        copy=$(mktemp -d /var/tmp/kiln-test.XXXXXX) || exit 1
        chmod 0755 "$copy"
        echo "the checkout $PWD is not readable by other users: running the suite from $copy/kiln"
        mkdir "$copy/kiln" && tar -C "$PWD" --exclude=./build -cf - . | tar -C "$copy/kiln" -xf - &&
                chmod -R a+rX "$copy/kiln" || exit 1
        (cd "$copy/kiln" && KILN_TEST_COPY=1 bash scripts/test.sh)
        rc=$?
        mkdir -p build
        rm -rf build/test-results
        cp -a "$copy/kiln/build/test-results" build/ 2>/dev/null
        rm -rf "$copy"
        exit $rc
fi

FUZZ_SECONDS=${KILN_FUZZ_SECONDS:-60}
SUITES=(--suite unit --suite integration --suite fuzz-regress)
results=build/test-results
rm -rf "$results"
mkdir -p "$results"

# A step that is not a meson test still counts: record its outcome as one case.
step() {
        local name=$1
        shift
        echo "=== $name"
        if "$@"; then
                echo "ok - $name" >>"$results/steps.tap"
        else
                echo "not ok - $name" >>"$results/steps.tap"
                echo "=== FAILED: $name"
        fi
}

run_suites() {
        local dir=$1
        shift
        env "$@" meson test -C "$dir" "${SUITES[@]}" --print-errorlogs --num-processes 2
        local rc=$?
        cp "$dir/meson-logs/testlog.json" "$results/$(basename "$dir").json" 2>/dev/null
        return $rc
}

step "lint" bash scripts/lint.sh

step "build gcc --werror" bash -c '
        [ -f build/ci-gcc/build.ninja ] || CC=gcc meson setup build/ci-gcc --werror >/dev/null
        ninja -C build/ci-gcc'
if [ -f build/ci-gcc/cmd/kiln ]; then
        run_suites build/ci-gcc
fi

step "build clang asan+ubsan --werror" bash -c '
        [ -f build/ci-asan/build.ninja ] || CC=clang meson setup build/ci-asan --werror \
                -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true >/dev/null
        ninja -C build/ci-asan'
if [ -f build/ci-asan/cmd/kiln ]; then
        run_suites build/ci-asan \
                ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi

fuzz_one() {
        local target=$1 corpus
        corpus=$(mktemp -d)
        cp testdata/fuzz/"$target"/* "$corpus"/
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                build/ci-asan/tests/fuzz/"$target" -max_total_time="$FUZZ_SECONDS" \
                -artifact_prefix="$results/$target-" -print_final_stats=1 "$corpus" \
                >"$results/$target.log" 2>&1
        local rc=$?
        rm -rf "$corpus"
        [ $rc -eq 0 ] || { tail -40 "$results/$target.log"; echo "reproducer: $results/$target-*"; }
        return $rc
}
for target in fuzz-parser fuzz-ignore fuzz-expand fuzz-image-json fuzz-tar; do
        if [ -x build/ci-asan/tests/fuzz/$target ]; then
                step "fuzz $target ${FUZZ_SECONDS}s" fuzz_one $target
        else
                step "fuzz $target ${FUZZ_SECONDS}s" false
        fi
done

python3 scripts/summarize.py "$results"
