#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Differential test for Containerfiles without RUN: every case under testdata/diff/NN-topic/
# is built by kiln and by buildah, both images are exported to OCI layouts and unpacked by
# umoci, and the two are compared: every path with its type, mode, owner, size, contents
# digest and link target (not mtimes), and the config fields a Containerfile sets. The
# comparison, and the files a case directory may hold, are in tests/diff-lib.sh.
#
# Every case may use the base image localhost/diffbase, built by both tools from a tarball
# with /etc/passwd and /etc/group so that --chown by name resolves.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../diff-lib.sh"

diff_init
cd "$T_TMP" || t_bail "cd $T_TMP"

# The base image: a tarball with accounts, added to scratch.
mkdir -p rootfs/etc rootfs/home/app rootfs/srv base
cat >rootfs/etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
www:x:33:33:www:/var/www:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
EOF
cat >rootfs/etc/group <<'EOF'
root:x:0:
www:x:33:
staff:x:50:app
app:x:1000:
EOF
chown 1000:1000 rootfs/home/app
chmod 0750 rootfs/home/app
tar --numeric-owner -C rootfs -cf base/rootfs.tar .
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["/bin/sh"]\n' >base/Containerfile
if diff_build_both diffbase base base/Containerfile base/Containerfile; then
        diff_compare diffbase
fi

diff_run_cases "$KILN_SRCDIR/testdata/diff"
t_done
