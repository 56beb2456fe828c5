#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Quick start: installs what kiln needs, builds it, and runs the main job: as a user without
# root, it builds the busybox base image offline (testdata/base/busybox.sh) and then the
# bundled example (testdata/examples/hello: COPY, RUN, ENV, WORKDIR, CMD) on it, and prints
# the image and its layers.
#
# Started as root, the job runs as the user who called sudo, or else as the user 'kiln'
# (created when missing); either is given subordinate id ranges in /etc/subuid and
# /etc/subgid when it has none, as rootless builds need them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
kiln_install_packages $KILN_BUILD_PACKAGES uidmap
[ -f build/release/build.ninja ] || meson setup build/release --buildtype=release >/dev/null
ninja -C build/release >/dev/null
kiln=$PWD/build/release/cmd/kiln

as=()
if [ "$(id -u)" = 0 ]; then
        user=${SUDO_USER:-kiln}
        [ "$user" = root ] && user=kiln
        id -u "$user" >/dev/null 2>&1 || useradd -m -s /bin/sh "$user"
        for f in /etc/subuid /etc/subgid; do
                grep -qE "^($user|$(id -u "$user")):" "$f" 2>/dev/null ||
                        echo "$user:2000000:65536" >>"$f"
        done
        home=$(getent passwd "$user" | cut -d: -f6)
        as=(runuser -u "$user" -- env "HOME=$home")
        # The user builds from a copy of the example it can read, and runs kiln from here.
        work=$(mktemp -d /tmp/kiln-main.XXXXXX)
        trap 'rm -rf "$work"' EXIT
        cp -a testdata "$work/testdata"
        chown -R "$user:" "$work"
        chmod 0755 "$work"
        src=$work/testdata
else
        user=$(id -un)
        src=$PWD/testdata
fi

echo "+ as $user: testdata/base/busybox.sh (the busybox base image, built offline by kiln)"
"${as[@]}" bash "$src/base/busybox.sh" "$kiln" busybox
echo "+ as $user: kiln build -t hello testdata/examples/hello"
"${as[@]}" "$kiln" build -t hello "$src/examples/hello"
echo "+ as $user: kiln images"
"${as[@]}" "$kiln" images
echo "+ as $user: kiln inspect hello (the image's config and layers)"
"${as[@]}" "$kiln" inspect hello | python3 -c '
import json, sys
i = json.load(sys.stdin)
c = i["Config"]
print("image", i["Id"], "names", ", ".join(i.get("Names") or []))
print("cmd", json.dumps(c["config"].get("Cmd")), "workdir", c["config"].get("WorkingDir"),
      "env", json.dumps(c["config"].get("Env")))
for n, l in enumerate(i.get("Layers") or []):
        print("layer %d: diff_id %s, %s bytes" % (n + 1, l["DiffID"],
              l["Size"]))
'
