#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Quick start: installs what kiln needs, builds it, and runs the main job on the bundled
# example (testdata/examples/hello).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
kiln_install_packages $KILN_BUILD_PACKAGES
[ -f build/release/build.ninja ] || meson setup build/release --buildtype=release >/dev/null
ninja -C build/release >/dev/null
echo "+ kiln check --format json testdata/examples/hello"
exec build/release/cmd/kiln check --format json testdata/examples/hello
