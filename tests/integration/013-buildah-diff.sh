#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Differential test: every case under testdata/diff/NN-topic/ is built by kiln and by
# buildah, both images are exported to OCI layouts and unpacked by umoci, and the two are
# compared: every path with its type, mode, owner, size, contents digest and link target (not
# mtimes), and the config fields a Containerfile sets.
#
# A case directory holds a Containerfile and its context. Optional files in it:
#   flags               extra build flags, one per line (--build-arg K=V, --target S)
#   setup.sh            run in the copied context first (tarballs, modes git does not keep)
#   Containerfile.base  built first by both tools as localhost/<case>-base (ONBUILD)
#   docker.jq           a jq filter applied to buildah's normalised config where buildah
#                       departs from docker's documented behaviour, which kiln follows; the
#                       file says why.
#   docker-tree.sed     the same for the tree listing: a sed script applied to buildah's.
#
# Every case may use the base image localhost/diffbase, built by both tools from a tarball
# with /etc/passwd and /etc/group so that --chown by name resolves.
#
# Buildah writes Healthcheck, OnBuild and Shell only into docker-format configs, and its
# push to an OCI layout converts to an OCI config without them; so buildah builds with
# --format docker and its config is read from that image (buildah inspect). kiln's config,
# which keeps those fields whatever the format, is read from its OCI layout.
set -u
. "$(dirname "$0")/../lib.sh"

cases_dir=$KILN_SRCDIR/testdata/diff
for tool in buildah umoci jq; do
        command -v "$tool" >/dev/null || {
                printf '1..0 # SKIP %s is not installed\n' "$tool"
                exit 0
        }
done
if [ "$(id -u)" != 0 ]; then
        printf '1..0 # SKIP needs root (buildah storage, umoci unpack with real owners)\n'
        exit 0
fi

cd "$T_TMP" || t_bail "cd $T_TMP"
printf '[engine]\ncgroup_manager = "cgroupfs"\n' >containers.conf
command -v runc >/dev/null && printf 'runtime = "runc"\n' >>containers.conf
export CONTAINERS_CONF=$T_TMP/containers.conf
BUILDAH=(buildah --root "$T_TMP/broot" --runroot "$T_TMP/brun" --storage-driver vfs)

# The config fields compared, normalised: absent, null, "", [] and {} are all null (buildah
# writes empty values where docker and kiln omit the field), buildah's own labels dropped.
# Healthcheck durations are kept as written (nanoseconds).
norm_jq='
def empty_to_null: if . == "" or . == [] or . == {} then null else . end;
.config // {} |
(.Labels // {} | with_entries(select(.key | startswith("io.buildah.") | not))) as $labels |
{
  Env: .Env, Cmd: .Cmd, Entrypoint: .Entrypoint, WorkingDir: .WorkingDir, User: .User,
  ExposedPorts: .ExposedPorts, Volumes: .Volumes, Labels: $labels,
  StopSignal: .StopSignal, Healthcheck: .Healthcheck, OnBuild: .OnBuild, Shell: .Shell
} | map_values(empty_to_null)'

# config_of_layout DIR TAG: the image config in an OCI layout.
config_of_layout()
{
        local m c

        m=$(jq -r --arg t "$2" \
                '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
                "$1/index.json") || return 1
        c=$(jq -r '.config.digest' "$1/blobs/${m/://}") || return 1
        cat "$1/blobs/${c/://}"
}

# list_tree DIR: one line per path below DIR, sorted: path, type, mode, owner, and the size and
# sha256 of a regular file or the target of a symlink.
list_tree()
{
        local p t rest

        (cd "$1" && find . -mindepth 1 -printf '%p\t%y\t%m\t%U:%G\n' | LC_ALL=C sort) |
                while IFS=$'\t' read -r p t rest; do
                        case $t in
                        f) printf '%s %s %s %s %s\n' "$p" "$t" "$rest" "$(stat -c %s "$1/$p")" \
                                "$(sha256sum <"$1/$p" | cut -d' ' -f1)" ;;
                        l) printf '%s %s %s -> %s\n' "$p" "$t" "$rest" "$(readlink "$1/$p")" ;;
                        *) printf '%s %s %s\n' "$p" "$t" "$rest" ;;
                        esac
                done
}

# build_both NAME CONTEXT FILE [FLAGS...]: builds with both tools under the same name.
build_both()
{
        local name=$1 ctx=$2 file=$3

        shift 3
        t_run "$KILN" build -q -t "$name" -f "$file" "$@" "$ctx"
        if [ "$T_RC" -ne 0 ]; then
                t_fail "$name: kiln build"
                t_report_run kiln build "$@"
                return 1
        fi
        t_run "${BUILDAH[@]}" bud --layers=false --pull=never --format docker -t "$name" \
                -f "$file" "$@" "$ctx"
        if [ "$T_RC" -ne 0 ]; then
                t_fail "$name: buildah bud"
                t_report_run buildah bud "$@"
                return 1
        fi
}

# compare NAME [DOCKER_JQ [DOCKER_TREE_SED]]: exports, unpacks and compares the two images
# called NAME.
compare()
{
        local name=$1 fix=${2:-} tree_fix=${3:-} out=$T_TMP/out/$1

        mkdir -p "$out"
        t_run "$KILN" push "$name" "oci:$out/kiln:$name"
        [ "$T_RC" -eq 0 ] || {
                t_fail "$name: kiln push"
                t_report_run kiln push
                return 1
        }
        t_oci_layout_valid "$name: kiln's layout follows the image-spec" "$out/kiln"
        t_run "${BUILDAH[@]}" push "$name" "oci:$out/buildah:$name"
        [ "$T_RC" -eq 0 ] || {
                t_fail "$name: buildah push"
                t_report_run buildah push
                return 1
        }
        for tool in kiln buildah; do
                t_run umoci unpack --image "$out/$tool:$name" "$out/$tool.bundle"
                [ "$T_RC" -eq 0 ] || {
                        t_fail "$name: umoci unpack ($tool)"
                        t_report_run umoci unpack
                        return 1
                }
                list_tree "$out/$tool.bundle/rootfs" >"$out/$tool.tree"
        done
        local what="$name: same tree" who=buildah
        if [ -n "$tree_fix" ]; then
                sed -f "$tree_fix" "$out/buildah.tree" >"$out/docker.tree"
                mv "$out/docker.tree" "$out/buildah.tree"
                what="$what (buildah corrected to the docker behaviour)"
                who="buildah corrected to the docker behaviour"
        fi
        if diff -u "$out/buildah.tree" "$out/kiln.tree" >"$out/tree.diff"; then
                t_pass "$what"
        else
                t_fail "$what" "$who (-) and kiln (+):"
                t_diag_file "diff" "$out/tree.diff"
        fi

        config_of_layout "$out/kiln" "$name" | jq -S "$norm_jq" >"$out/kiln.config"
        "${BUILDAH[@]}" inspect --type image "$name" | jq -S ".Docker | $norm_jq" >"$out/buildah.config"
        if [ -n "$fix" ]; then
                jq -S -f "$fix" "$out/buildah.config" >"$out/docker.config"
                mv "$out/docker.config" "$out/buildah.config"
        fi
        what="$name: same config" who=buildah
        if [ -n "$fix" ]; then
                what="$what (buildah corrected to the docker behaviour)"
                who="buildah corrected to the docker behaviour"
        fi
        if diff -u "$out/buildah.config" "$out/kiln.config" >"$out/config.diff"; then
                t_pass "$what"
        else
                t_fail "$what" "$who (-) and kiln (+):"
                t_diag_file "diff" "$out/config.diff"
        fi
}

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
if build_both diffbase base base/Containerfile; then
        compare diffbase
fi

for dir in "$cases_dir"/*/; do
        case=$(basename "$dir")
        ctx=$T_TMP/ctx/$case
        mkdir -p "$T_TMP/ctx"
        cp -a "$dir" "$ctx"
        if [ -f "$ctx/setup.sh" ]; then
                (cd "$ctx" && bash ./setup.sh) || {
                        t_fail "$case: setup.sh"
                        continue
                }
        fi
        flags=()
        [ -f "$ctx/flags" ] && mapfile -t flags <"$ctx/flags"
        if [ -f "$ctx/Containerfile.base" ]; then
                build_both "$case-base" "$ctx" "$ctx/Containerfile.base" || continue
        fi
        build_both "$case" "$ctx" "$ctx/Containerfile" "${flags[@]}" || continue
        fix= tree_fix=
        [ -f "$ctx/docker.jq" ] && fix=$ctx/docker.jq
        [ -f "$ctx/docker-tree.sed" ] && tree_fix=$ctx/docker-tree.sed
        compare "$case" "$fix" "$tree_fix"
done

# KILN_DIFF_KEEP=DIR keeps the layouts, listings and configs for a look after the run.
[ -n "${KILN_DIFF_KEEP:-}" ] && cp -a "$T_TMP/out" "$KILN_DIFF_KEEP"
t_done
