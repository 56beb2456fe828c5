#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Formatting and the house rules that a compiler does not check.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -Ev '^(build|testdata)/')
if ! clang-format --dry-run --Werror "${files[@]}"; then
        echo "lint: run clang-format -i on the files above" >&2
        rc=1
fi
python3 scripts/lint.py "${files[@]}" || rc=1
exit $rc
