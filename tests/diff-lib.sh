# SPDX-License-Identifier: Apache-2.0
# The differential tests against buildah (013-buildah-diff.sh, 024-buildah-diff-run.sh),
# sourced after lib.sh. Each case directory (testdata/diff*/NN-topic/) is built by kiln and by
# buildah, both images are exported to OCI layouts and unpacked by umoci, and the two are
# compared: every path with its type, mode, owner, size, contents digest, link target, hard
# link group, device numbers and xattrs (not times), and the config fields a Containerfile
# sets.
#
# A case directory holds a Containerfile and its context. Optional files in it:
#   flags               extra build flags for both tools, one per line (--build-arg K=V)
#   setup.sh            run in the copied context first (tarballs, modes git does not keep);
#                       exit status 75 skips the case, its last line of stderr saying why
#   Containerfile.base  built first by both tools as localhost/<case>-base (ONBUILD)
#   expect              extended regexes, one per line, each of which must match a line of
#                       kiln's tree listing (or, after a "!", none may): what the case is
#                       about, so that it fails when both tools get it wrong alike
# and, where buildah departs from docker's documented behaviour (which kiln follows), each
# saying why in its comments:
#   docker.jq           a jq filter applied to buildah's normalised config
#   docker-tree.sed     a sed script applied to buildah's tree listing
#   Containerfile.buildah  what buildah builds instead of the Containerfile, written with
#                       the syntax buildah knows, for what it cannot parse
#   buildah-flags       extra build flags for buildah only, one per line
#
# The test sets, before diff_run_cases:
#   DIFF_BUD_FLAGS      buildah bud's flags (--layers=false by default)
#   DIFF_TREE_SED       a sed script applied to every buildah listing before the case's own
#   DIFF_LAYERS         when 1, the number of layers is compared too: all of kiln's, and
#                       those of buildah's that hold something but the paths of
#                       DIFF_STUB_PATHS (its mount stubs)
#
# Buildah writes Healthcheck, OnBuild and Shell only into docker-format configs, and its
# push to an OCI layout converts to an OCI config without them; so buildah builds with
# --format docker and its config is read from that image (buildah inspect). kiln's config,
# which keeps those fields whatever the format, is read from its OCI layout.

DIFF_BUD_FLAGS=(--layers=false)
DIFF_TREE_SED=
DIFF_LAYERS=
DIFF_STUB_PATHS=()

# diff_init: checks the tools and the user (exiting with a skip plan when one is missing)
# and points buildah at a configuration and a store of its own in $T_TMP.
diff_init()
{
        local tool

        for tool in buildah umoci jq python3; do
                command -v "$tool" >/dev/null || {
                        printf '1..0 # SKIP %s is not installed\n' "$tool"
                        exit 0
                }
        done
        if [ "$(id -u)" != 0 ]; then
                printf '1..0 # SKIP needs root (buildah storage, umoci unpack with real owners)\n'
                exit 0
        fi
        printf '[engine]\ncgroup_manager = "cgroupfs"\n' >"$T_TMP/containers.conf"
        command -v runc >/dev/null && printf 'runtime = "runc"\n' >>"$T_TMP/containers.conf"
        export CONTAINERS_CONF=$T_TMP/containers.conf
        # Buildah keeps cache mounts below $TMPDIR (buildah-cache-UID): one of the test's own.
        mkdir -p "$T_TMP/btmp"
        BUILDAH=(env TMPDIR="$T_TMP/btmp" buildah --root "$T_TMP/broot" --runroot "$T_TMP/brun"
                --storage-driver vfs)
}

# The config fields compared, normalised: absent, null, "", [] and {} are all null (buildah
# writes empty values where docker and kiln omit the field), buildah's own labels dropped.
# Healthcheck durations are kept as written (nanoseconds).
DIFF_NORM_JQ='
def empty_to_null: if . == "" or . == [] or . == {} then null else . end;
.config // {} |
(.Labels // {} | with_entries(select(.key | startswith("io.buildah.") | not))) as $labels |
{
  Env: .Env, Cmd: .Cmd, Entrypoint: .Entrypoint, WorkingDir: .WorkingDir, User: .User,
  ExposedPorts: .ExposedPorts, Volumes: .Volumes, Labels: $labels,
  StopSignal: .StopSignal, Healthcheck: .Healthcheck, OnBuild: .OnBuild, Shell: .Shell
} | map_values(empty_to_null)'

# diff_manifest_of_layout DIR TAG: the path of the manifest tagged TAG in an OCI layout.
diff_manifest_of_layout()
{
        local m

        m=$(jq -r --arg t "$2" \
                '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
                "$1/index.json") || return 1
        [ -n "$m" ] || return 1
        printf '%s\n' "$1/blobs/${m/://}"
}

# diff_config_of_layout DIR TAG: the image config in an OCI layout.
diff_config_of_layout()
{
        local m c

        m=$(diff_manifest_of_layout "$1" "$2") || return 1
        c=$(jq -r '.config.digest' "$m") || return 1
        cat "$1/blobs/${c/://}"
}

# diff_layer_count DIR TAG [STUB...]: the number of layers of the image, leaving out those
# that hold nothing but the paths STUB (and so none at all: the empty tar).
diff_layer_count()
{
        local dir=$1 m d n=0 name kept
        local -A stub=()

        m=$(diff_manifest_of_layout "$1" "$2") || return 1
        shift 2
        for name in "$@"; do
                stub[$name]=1
        done
        for d in $(jq -r '.layers[].digest' "$m"); do
                kept=0
                while IFS= read -r name; do
                        name=${name#./}
                        name=${name%/}
                        [ -z "$name" ] && continue
                        [ -n "${stub[$name]-}" ] && continue
                        kept=1
                        break
                done < <(tar -tzf "$dir/blobs/${d/://}" 2>/dev/null || tar -tf "$dir/blobs/${d/://}")
                [ $kept -eq 1 ] && n=$((n + 1))
        done
        printf '%s\n' "$n"
}

# diff_list_tree DIR: one line per path below DIR, sorted by path: "PATH TYPE MODE<tab>UID:GID"
# (TYPE as find's %y, MODE in octal with the set-id and sticky bits), then the size and
# sha256 of a regular file (and "link=FIRST", the first path of its hard link group, when it
# has more than one name in the tree), the target of a symlink, the numbers of a device, and
# each xattr as "xattr:NAME=HEX". Bytes that are not printable are written \xHH.
diff_list_tree()
{
        "${T_OCI_PY:-python3}" - "$1" <<'PY'
import hashlib, os, stat, sys

root = os.fsencode(sys.argv[1])

def show(b):
    out = []
    for ch in b.decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if 0xdc80 <= o <= 0xdcff:
            out.append("\\x%02x" % (o - 0xdc00))
        elif o < 0x20 or o == 0x7f or ch == "\\":
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return "".join(out)

sys.stdout.reconfigure(encoding="utf-8", errors="surrogateescape")
kinds = [(stat.S_ISREG, "f"), (stat.S_ISDIR, "d"), (stat.S_ISLNK, "l"), (stat.S_ISCHR, "c"),
         (stat.S_ISBLK, "b"), (stat.S_ISFIFO, "p"), (stat.S_ISSOCK, "s")]
entries = []
for top, dirs, files in os.walk(root):
    for name in dirs + files:
        full = os.path.join(top, name)
        entries.append((b"." + full[len(root):], full, os.lstat(full)))
entries.sort(key=lambda e: e[0])
first = {}
for rel, full, st in entries:
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        first.setdefault((st.st_dev, st.st_ino), rel)
for rel, full, st in entries:
    kind = next(k for test, k in kinds if test(st.st_mode))
    line = "%s %s %o\t%d:%d" % (show(rel), kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if kind == "f":
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        line += " %d %s" % (st.st_size, h.hexdigest())
        group = first.get((st.st_dev, st.st_ino))
        if group is not None:
            line += " link=" + show(group)
    elif kind == "l":
        line += " -> " + show(os.readlink(full))
    elif kind in "cb":
        line += " %d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    for name in sorted(os.listxattr(full, follow_symlinks=False)):
        value = os.getxattr(full, name, follow_symlinks=False)
        line += " xattr:%s=%s" % (name, value.hex())
    print(line)
PY
}

# diff_build_both NAME CONTEXT FILE BUILDAH_FILE FLAGS... -- BUILDAH_FLAGS...: builds with
# both tools under the same name; FLAGS for both, BUILDAH_FLAGS for buildah only.
diff_build_both()
{
        local name=$1 ctx=$2 file=$3 bfile=$4 flags=() bflags=()

        shift 4
        while [ $# -gt 0 ] && [ "$1" != -- ]; do
                flags+=("$1")
                shift
        done
        [ $# -gt 0 ] && shift
        bflags=("$@")
        t_run "$KILN" build -q -t "$name" -f "$file" "${flags[@]}" "$ctx"
        if [ "$T_RC" -ne 0 ]; then
                t_fail "$name: kiln build"
                t_report_run kiln build "${flags[@]}"
                return 1
        fi
        t_run "${BUILDAH[@]}" bud "${DIFF_BUD_FLAGS[@]}" --pull=never --format docker -t "$name" \
                -f "$bfile" "${flags[@]}" "${bflags[@]}" "$ctx"
        if [ "$T_RC" -ne 0 ]; then
                t_fail "$name: buildah bud"
                t_report_run buildah bud "${flags[@]}" "${bflags[@]}"
                return 1
        fi
}

# _diff_assert_same WHAT WHO A B DIFF: passes when the files A (buildah's) and B (kiln's) are
# the same.
_diff_assert_same()
{
        if diff -u "$3" "$4" >"$5"; then
                t_pass "$1"
        else
                t_fail "$1" "$2 (-) and kiln (+):"
                t_diag_file "diff" "$5"
        fi
}

# diff_compare NAME [DOCKER_JQ [DOCKER_TREE_SED [EXPECT]]]: exports, unpacks and compares the
# two images called NAME.
diff_compare()
{
        local name=$1 fix=${2:-} tree_fix=${3:-} expect=${4:-} out=$T_TMP/out/$1 tool re

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
                diff_list_tree "$out/$tool.bundle/rootfs" >"$out/$tool.tree"
        done
        [ -z "$DIFF_TREE_SED" ] || sed -i -f "$DIFF_TREE_SED" "$out/buildah.tree"
        local what="$name: same tree" who=buildah
        if [ -n "$tree_fix" ]; then
                sed -i -f "$tree_fix" "$out/buildah.tree"
                what="$what (buildah corrected to the docker behaviour)"
                who="buildah corrected to the docker behaviour"
        fi
        _diff_assert_same "$what" "$who" "$out/buildah.tree" "$out/kiln.tree" "$out/tree.diff"
        if [ -n "$expect" ]; then
                while IFS= read -r re || [ -n "$re" ]; do
                        [ -z "$re" ] || [[ $re == '#'* ]] && continue
                        if [[ $re == '!'* ]]; then
                                t_nogrep "$name: kiln's tree has no /${re#!}/" "${re#!}" "$out/kiln.tree"
                        else
                                t_grep "$name: kiln's tree has /$re/" "$re" "$out/kiln.tree"
                        fi
                done <"$expect"
        fi

        diff_config_of_layout "$out/kiln" "$name" | jq -S "$DIFF_NORM_JQ" >"$out/kiln.config"
        "${BUILDAH[@]}" inspect --type image "$name" | jq -S ".Docker | $DIFF_NORM_JQ" >"$out/buildah.config"
        if [ "$DIFF_LAYERS" = 1 ]; then
                jq -S --argjson n "$(diff_layer_count "$out/kiln" "$name")" '.Layers = $n' \
                        "$out/kiln.config" >"$out/config.tmp" && mv "$out/config.tmp" "$out/kiln.config"
                jq -S --argjson n "$(diff_layer_count "$out/buildah" "$name" "${DIFF_STUB_PATHS[@]}")" \
                        '.Layers = $n' "$out/buildah.config" >"$out/config.tmp" &&
                        mv "$out/config.tmp" "$out/buildah.config"
        fi
        what="$name: same config" who=buildah
        if [ -n "$fix" ]; then
                jq -S -f "$fix" "$out/buildah.config" >"$out/config.tmp" &&
                        mv "$out/config.tmp" "$out/buildah.config"
                what="$what (buildah corrected to the docker behaviour)"
                who="buildah corrected to the docker behaviour"
        fi
        _diff_assert_same "$what" "$who" "$out/buildah.config" "$out/kiln.config" "$out/config.diff"
}

# diff_case DIR: builds and compares the case in DIR (see the top of this file).
diff_case()
{
        local dir=${1%/} case ctx flags=() bflags=() bfile fix= tree_fix= expect= rc

        case=$(basename "$dir")
        ctx=$T_TMP/ctx/$case
        mkdir -p "$T_TMP/ctx"
        rm -rf "$ctx"
        cp -a "$dir" "$ctx"
        if [ -f "$ctx/setup.sh" ]; then
                (cd "$ctx" && bash ./setup.sh) >"$T_TMP/setup.out" 2>"$T_TMP/setup.err"
                rc=$?
                if [ $rc -eq 75 ]; then
                        t_skip "$case" "$(tail -1 "$T_TMP/setup.err")"
                        return 0
                elif [ $rc -ne 0 ]; then
                        t_fail "$case: setup.sh"
                        t_diag_file "stderr" "$T_TMP/setup.err"
                        return 1
                fi
        fi
        [ -f "$ctx/flags" ] && mapfile -t flags < <(grep -v '^#' "$ctx/flags")
        [ -f "$ctx/buildah-flags" ] && mapfile -t bflags < <(grep -v '^#' "$ctx/buildah-flags")
        bfile=$ctx/Containerfile
        [ -f "$ctx/Containerfile.buildah" ] && bfile=$ctx/Containerfile.buildah
        if [ -f "$ctx/Containerfile.base" ]; then
                diff_build_both "$case-base" "$ctx" "$ctx/Containerfile.base" \
                        "$ctx/Containerfile.base" || return 1
        fi
        diff_build_both "$case" "$ctx" "$ctx/Containerfile" "$bfile" "${flags[@]}" -- \
                "${bflags[@]}" || return 1
        [ -f "$ctx/docker.jq" ] && fix=$ctx/docker.jq
        [ -f "$ctx/docker-tree.sed" ] && tree_fix=$ctx/docker-tree.sed
        [ -f "$ctx/expect" ] && expect=$ctx/expect
        diff_compare "$case" "$fix" "$tree_fix" "$expect"
}

# diff_run_cases DIR: every case directory below DIR, in order; KILN_DIFF_CASES, a regex,
# selects some by name. KILN_DIFF_KEEP=DIR keeps the layouts, listings and configs.
diff_run_cases()
{
        local dir

        for dir in "$1"/*/; do
                [[ $(basename "$dir") =~ ${KILN_DIFF_CASES:-.} ]] || continue
                diff_case "$dir"
        done
        [ -z "${KILN_DIFF_KEEP:-}" ] || cp -a "$T_TMP/out" "$KILN_DIFF_KEEP"
}
