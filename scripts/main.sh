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
kiln=build/release/cmd/kiln
echo "+ testdata/base/busybox.sh (the busybox base image, built offline by kiln)"
bash testdata/base/busybox.sh "$kiln" busybox
echo "+ kiln images"
"$kiln" images
echo "+ kiln check --format json testdata/examples/hello"
exec "$kiln" check --format json testdata/examples/hello
