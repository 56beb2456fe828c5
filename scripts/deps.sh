# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages kiln needs to build and test; sourced by main.sh and test.sh.
# Idempotent: apt-get runs only when a package is missing.

KILN_BUILD_PACKAGES="gcc libc6-dev meson ninja-build pkg-config git python3
  libarchive-dev nettle-dev libcurl4-openssl-dev libjansson-dev libzstd-dev libseccomp-dev
  zlib1g-dev busybox-static"
KILN_TEST_PACKAGES="clang libclang-rt-14-dev clang-format jq python3 skopeo umoci podman runc
  uidmap buildah time mmdebstrap zstd strace fuse-overlayfs libcap2-bin"

kiln_install_packages() {
        local missing=() pkg sudo=()
        for pkg in "$@"; do
                dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
                        missing+=("$pkg")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
                command -v sudo >/dev/null || {
                        echo "kiln: need root (or sudo) to install: ${missing[*]}" >&2
                        return 1
                }
                sudo=(sudo)
        fi
        echo "installing: ${missing[*]}"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
