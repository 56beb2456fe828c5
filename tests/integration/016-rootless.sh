#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kiln run by real non-root users: kilntest, with two subordinate id ranges, and
# kilnnorange, with none. Without --root or KILN_ROOT the store is the user's own; files
# keep their in-image owners through a build, an export and umoci (run as root); rmi and
# prune remove layers owned by subordinate ids; without ranges only owner 0 works, with one
# warning, and another owner fails with the way to add ranges.
set -u
. "$(dirname "$0")/../lib.sh"

unset KILN_ROOT XDG_DATA_HOME
if ! t_rootless_users; then
        t_skip "kiln without root" "$T_SKIP_REASON"
        t_done
fi
if ! runuser -u kilntest -- test -x "$KILN"; then
        t_skip "kiln without root" "kilntest cannot run '$KILN' (a directory above it is private)"
        t_done
fi

# The users need to reach their homes, contexts and outputs inside T_TMP.
chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"
for u in kilntest kilnnorange; do
        mkdir -p "home-$u" "out-$u"
        chown "$u:" "home-$u" "out-$u"
done
mkdir -p xdg && chown kilntest: xdg

# as USER CMD...: CMD as USER with its home in T_TMP and nothing else chosen for it.
as()
{
        local user=$1

        shift
        runuser -u "$user" -- env -u KILN_ROOT -u XDG_DATA_HOME HOME="$T_TMP/home-$user" "$@"
}

mkdir -p ctx/dir
printf 'owned by 1000\n' >ctx/x
printf 'owned by 65534\n' >ctx/y
printf 'owned by 0\n' >ctx/z
printf 'inside a read-only directory\n' >ctx/dir/f
cat >ctx/Containerfile <<'CF'
FROM scratch
COPY --chown=1000:1000 x /app/x
COPY --chown=65534:65534 y /app/y
COPY z /app/z
COPY --chown=1000:1000 --chmod=0500 dir /ro/
CF
printf 'FROM scratch\nCOPY z /app/z\n' >ctx/Containerfile.plain
printf 'FROM scratch\nCOPY --chown=1000 x /app/x\n' >ctx/Containerfile.chown
printf 'FROM scratch\nCOPY --chown=70000:70000 x /app/x\n' >ctx/Containerfile.far
chmod -R a+rX ctx

# ---- kilntest: subordinate ids ----
store=$T_TMP/home-kilntest/.local/share/kiln
t_ok "kilntest builds with --chown 1000 and 65534" as kilntest "$KILN" build -t rl ctx
t_nogrep "kilntest gets no warning" 'warning' "$T_ERR"
t_ok "the store is in \$HOME/.local/share/kiln" test -f "$store/images.json"
t_eq "the store belongs to kilntest on the host" "$(stat -c %U:%G "$store" "$store/layers" |
        sort -u)" "kilntest:kilntest"
t_ok "no store was made in /var/lib/kiln's place" test ! -e "$T_TMP/home-kilntest/var"

# Inside ids 1..1000 are the first range (200000), 1001.. the second (300000), 0 the user.
uid=$(id -u kilntest)
t_eq "1000 lands in the first range on the host" \
        "$(stat -c %u:%g "$store"/layers/*/diff/app/x)" "200999:200999"
t_eq "65534 lands in the second range on the host" \
        "$(stat -c %u:%g "$store"/layers/*/diff/app/y)" "364533:364533"
t_eq "0 is kilntest itself on the host" "$(stat -c %u:%g "$store"/layers/*/diff/app/z)" \
        "$uid:$(id -g kilntest)"

t_ok "kilntest exports to oci:" as kilntest "$KILN" push rl "oci:$T_TMP/out-kilntest/lay:v1"
t_oci_layout_valid "... a layout that follows the image-spec" "$T_TMP/out-kilntest/lay"
t_ok "umoci unpacks it as root" umoci unpack --image "$T_TMP/out-kilntest/lay:v1" bundle
t_eq "COPY --chown=1000:1000 gives 1000:1000" "$(stat -c %u:%g bundle/rootfs/app/x)" "1000:1000"
t_eq "COPY --chown=65534:65534 gives 65534:65534" "$(stat -c %u:%g bundle/rootfs/app/y)" \
        "65534:65534"
t_eq "a plain COPY gives 0:0" "$(stat -c %u:%g bundle/rootfs/app/z)" "0:0"
t_eq "the read-only directory keeps its owner and mode" \
        "$(stat -c %u:%g:%a bundle/rootfs/ro/f)" "1000:1000:500"

t_ok "kilntest lists its images" as kilntest "$KILN" images
t_grep "images shows the build" '^localhost/rl +latest ' "$T_OUT"
t_ok "kilntest removes the image" as kilntest "$KILN" rmi rl
t_ok "kilntest prunes" as kilntest "$KILN" prune
t_eq "no layer dir is left" "$(find "$store/layers" -mindepth 1 | wc -l)" "0"
t_eq "no blob is left" "$(find "$store/blobs/sha256" -mindepth 1 | wc -l)" "0"

t_fails "kilntest cannot COPY --chown past its 65537 ids" 1 \
        as kilntest "$KILN" build -f ctx/Containerfile.far ctx
t_contains "the error says what is mapped" "uid 70000 and gid 70000 are not mapped in kiln's \
user namespace (it maps uids 0-65536 and gids 0-65536; add subordinate ids for kilntest" "$T_ERR"

# Ranges without the tools: the same as no ranges, with a warning that says so.
t_fails "without newuidmap in PATH, COPY --chown=1000 fails" 1 \
        as kilntest env PATH=/nonexistent "$KILN" --root "$T_TMP/home-kilntest/nopath" \
        build -f ctx/Containerfile.chown ctx
t_eq "... after one warning" \
        "$(grep -c '^kiln: warning: newuidmap and newgidmap .* are not in PATH' "$T_ERR")" "1"
t_contains "... and says to install them" \
        "uid 1000 and gid 1000 are not mapped in kiln's user namespace (install newuidmap" "$T_ERR"

t_ok "kilntest with XDG_DATA_HOME" as kilntest env XDG_DATA_HOME="$T_TMP/xdg" "$KILN" images
t_eq "the store is in \$XDG_DATA_HOME/kiln, kilntest's" "$(stat -c %U "$T_TMP/xdg/kiln" 2>&1)" \
        "kilntest"

# ---- kilnnorange: no subordinate ids ----
store=$T_TMP/home-kilnnorange/.local/share/kiln
t_ok "kilnnorange builds a plain COPY" \
        as kilnnorange "$KILN" build -t plain -f ctx/Containerfile.plain ctx
t_eq "one warning" "$(grep -c '^kiln: warning:' "$T_ERR")" "1"
t_contains "it says only the own ids are mapped" "only your own uid and gid are mapped" "$T_ERR"
t_contains "it says how to add ranges" \
        "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 kilnnorange" "$T_ERR"
t_eq "the store belongs to kilnnorange" "$(stat -c %U "$store")" "kilnnorange"
t_ok "kilnnorange exports" as kilnnorange "$KILN" push plain "oci:$T_TMP/out-kilnnorange/lay:v1"
t_oci_layout_valid "... a layout that follows the image-spec" "$T_TMP/out-kilnnorange/lay"
t_ok "umoci unpacks it" umoci unpack --image "$T_TMP/out-kilnnorange/lay:v1" bundle2
t_eq "the file is owned by 0:0 in the image" "$(stat -c %u:%g bundle2/rootfs/app/z)" "0:0"

t_fails "kilnnorange cannot COPY --chown=1000" 1 \
        as kilnnorange "$KILN" build -f ctx/Containerfile.chown ctx
t_contains "the error names the unmapped ids" \
        "uid 1000 and gid 1000 are not mapped in kiln's user namespace" \
        "$T_ERR"
t_contains "... and how to add ranges" \
        "add subordinate ids for kilnnorange to /etc/subuid and /etc/subgid: usermod" "$T_ERR"

t_ok "version does not enter a user namespace" as kilnnorange "$KILN" version
t_nogrep "... so it warns about nothing" 'warning' "$T_ERR"
t_ok "nor does check" as kilnnorange "$KILN" check ctx
t_nogrep "... which warns about nothing" 'warning' "$T_ERR"

# ---- root: as before ----
t_ok "root builds with --chown" "$KILN" --root "$T_TMP/rootstore" build -q -t rl ctx
t_nogrep "root gets no warning" 'warning' "$T_ERR"
t_eq "root's files have the owners themselves" \
        "$(stat -c %u:%g "$T_TMP"/rootstore/layers/*/diff/app/x)" "1000:1000"

t_done
