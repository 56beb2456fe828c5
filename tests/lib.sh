# SPDX-License-Identifier: Apache-2.0
# TAP helpers for the integration tests, tests/integration/NNN-topic.sh:
#
#     set -u
#     . "$(dirname "$0")/../lib.sh"
#     t_ok "version runs" "$KILN" version
#     t_grep "version names zstd" '^zstd: ' "$T_OUT"
#     t_done
#
# Each assertion prints "ok N - NAME" or "not ok N - NAME" followed by "# " lines saying why;
# t_done prints the plan "1..N" and exits 1 when an assertion failed.
#
# The environment (set by tests/integration/meson.build): KILN, the kiln binary; KILN_SRCDIR
# and KILN_BUILDDIR, the source and build trees. T_TMP is a fresh directory removed when the
# script exits; KILN_ROOT points into it so that no test touches a real store. After t_run,
# t_ok or t_fails, the command's standard output is in $T_OUT, its standard error in $T_ERR
# and its exit status in $T_RC.

T_COUNT=0
T_FAILED=0

t_diag()
{
        local line

        for line in "$@"; do
                printf '# %s\n' "$line"
        done
}

# Stops the whole script: TAP consumers report the reason.
t_bail()
{
        printf 'Bail out! %s\n' "$*"
        exit 1
}

t_pass()
{
        T_COUNT=$((T_COUNT + 1))
        printf 'ok %d - %s\n' "$T_COUNT" "$1"
}

# t_fail NAME [DIAGNOSTIC...]
t_fail()
{
        local name=$1

        shift
        T_COUNT=$((T_COUNT + 1))
        T_FAILED=$((T_FAILED + 1))
        printf 'not ok %d - %s\n' "$T_COUNT" "$name"
        t_diag "$@"
}

# t_skip NAME REASON: counts as a skip, not as a pass.
t_skip()
{
        T_COUNT=$((T_COUNT + 1))
        printf 'ok %d - %s # SKIP %s\n' "$T_COUNT" "$1" "$2"
}

# Prints the first lines of a file as diagnostics, labelled.
t_diag_file()
{
        local label=$1 file=$2 line n=0

        [ -s "$file" ] || {
                t_diag "$label: (empty)"
                return
        }
        t_diag "$label:"
        while IFS= read -r line || [ -n "$line" ]; do
                n=$((n + 1))
                if [ $n -gt 20 ]; then
                        t_diag "  ..."
                        break
                fi
                t_diag "  $line"
        done <"$file"
}

# t_run CMD...: runs CMD with its output captured; never fails by itself.
t_run()
{
        "$@" >"$T_OUT" 2>"$T_ERR"
        T_RC=$?
}

t_report_run()
{
        t_diag "command: $*" "exit status: $T_RC"
        t_diag_file "stdout" "$T_OUT"
        t_diag_file "stderr" "$T_ERR"
}

# t_ok NAME CMD...: passes when CMD exits 0.
t_ok()
{
        local name=$1

        shift
        t_run "$@"
        if [ "$T_RC" -eq 0 ]; then
                t_pass "$name"
        else
                t_fail "$name"
                t_report_run "$@"
        fi
}

# t_fails NAME EXPECTED_EXIT CMD...: passes when CMD exits with EXPECTED_EXIT.
t_fails()
{
        local name=$1 want=$2

        shift 2
        t_run "$@"
        if [ "$T_RC" -eq "$want" ]; then
                t_pass "$name"
        else
                t_fail "$name" "expected exit status $want"
                t_report_run "$@"
        fi
}

# t_grep NAME PATTERN FILE: passes when a line of FILE matches the extended regex PATTERN.
t_grep()
{
        if grep -Eq -e "$2" -- "$3" 2>/dev/null; then
                t_pass "$1"
        else
                t_fail "$1" "no line matches /$2/"
                t_diag_file "$3" "$3"
        fi
}

# t_nogrep NAME PATTERN FILE: passes when no line of FILE matches PATTERN.
t_nogrep()
{
        if [ ! -f "$3" ]; then
                t_fail "$1" "$3 does not exist"
        elif grep -Eq -e "$2" -- "$3"; then
                t_fail "$1" "a line matches /$2/"
                t_diag_file "$3" "$3"
        else
                t_pass "$1"
        fi
}

# t_contains NAME STRING FILE: as t_grep with a fixed string (for messages full of quotes and
# brackets).
t_contains()
{
        if grep -Fq -e "$2" -- "$3" 2>/dev/null; then
                t_pass "$1"
        else
                t_fail "$1" "no line contains '$2'"
                t_diag_file "$3" "$3"
        fi
}

# t_eq NAME GOT WANT
t_eq()
{
        if [ "$2" = "$3" ]; then
                t_pass "$1"
        else
                t_fail "$1" "got:  '$2'" "want: '$3'"
        fi
}

# Ends the script: the plan, and exit 1 when an assertion failed.
t_done()
{
        printf '1..%d\n' "$T_COUNT"
        if [ "$T_FAILED" -gt 0 ]; then
                t_diag "$T_FAILED of $T_COUNT failed"
                exit 1
        fi
        exit 0
}

t_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${KILN_SRCDIR:=$(dirname "$t_lib_dir")}"
: "${KILN_BUILDDIR:=$KILN_SRCDIR/build}"
: "${KILN:=$KILN_BUILDDIR/cmd/kiln}"
export KILN KILN_SRCDIR KILN_BUILDDIR
[ -x "$KILN" ] || t_bail "no kiln binary at '$KILN' (set KILN or build first)"

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-test.XXXXXX") || t_bail "cannot create a temporary directory"
trap 'rm -rf "$T_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T_OUT=$T_TMP/.stdout
T_ERR=$T_TMP/.stderr
T_RC=0
: >"$T_OUT"
: >"$T_ERR"
export KILN_ROOT=$T_TMP/store

# t_rootless_users: makes sure that two real non-root users exist for the rootless tests:
# kilntest, with two subordinate id ranges in /etc/subuid and /etc/subgid (200000:1000 under
# its login name, then 300000:64536 under its uid number, as both forms are allowed), and
# kilnnorange, with none. Idempotent, and the files are replaced by rename, so a test
# running meanwhile never sees them half-written. Returns 1 with the reason in
# T_SKIP_REASON when it cannot (not root, a tool missing), which the caller reports as a
# skip; bails out when creating them fails.
t_rootless_users()
{
        local tool

        T_SKIP_REASON=
        if [ "$(id -u)" -ne 0 ]; then
                T_SKIP_REASON="creating the test users needs root"
                return 1
        fi
        for tool in useradd runuser flock newuidmap newgidmap; do
                if ! command -v "$tool" >/dev/null; then
                        T_SKIP_REASON="$tool is not installed"
                        return 1
                fi
        done
        (
                flock 9
                for u in kilntest kilnnorange; do
                        id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/sh "$u" || exit 1
                done
                uid=$(id -u kilntest) nouid=$(id -u kilnnorange)
                for f in /etc/subuid /etc/subgid; do
                        touch "$f" || exit 1
                        # useradd may have given them ranges of its own: keep only ours.
                        {
                                grep -Ev "^(kilntest|$uid|kilnnorange|$nouid):" "$f"
                                printf 'kilntest:200000:1000\n%s:300000:64536\n' "$uid"
                        } >"$f.kiln-test"
                        if cmp -s "$f" "$f.kiln-test"; then
                                rm -f "$f.kiln-test"
                        else
                                chmod 0644 "$f.kiln-test" && mv "$f.kiln-test" "$f" || exit 1
                        fi
                done
        ) 9>/run/kiln-test-users.lock ||
                t_bail "could not create the users kilntest and kilnnorange"
}

# ---- image-spec validation ----
#
# t_oci_check KIND FILE [LABEL] prints the violations of a JSON document (KIND as in
# tests/oci-check.jq), "LABEL: PATH: RULE" each, and returns 1 when there is one.
# t_oci_layout_check DIR, t_oci_archive_check FILE and t_docker_archive_check FILE do the same
# for everything an export wrote: every document reachable from index.json (or manifest.json),
# every blob against its descriptor's size and digest and the name it is stored under, and
# every layer against its config's diff_id. t_oci_valid NAME KIND FILE, t_oci_layout_valid
# NAME DIR, t_oci_archive_valid NAME FILE and t_docker_archive_valid NAME FILE are the
# assertions. Each check runs jq over all its documents at once, not once per document, to
# stay fast: a layout takes a fraction of a second.

T_OCI_JQ=$t_lib_dir/oci-check.jq
T_OCI_PY=

# The interpreter behind python3, found once: a version manager's shim costs a tenth of a
# second per start. Called by each entry point before it forks.
_t_oci_py()
{
        [ -n "$T_OCI_PY" ] || T_OCI_PY=$(python3 -c 'import sys; print(sys.executable)') ||
                T_OCI_PY=python3
}

# One JSON document per file, UTF-8, no key twice in an object (annotations.md: "Keys MUST be
# unique"), which jq cannot see. Arguments: FILE LABEL pairs; one line per problem.
_t_json_strict()
{
        "${T_OCI_PY:-python3}" - "$@" <<'PY'
import json, sys

def pairs(kv):
    seen = set()
    for k, _ in kv:
        if k in seen:
            raise ValueError(f"the key {json.dumps(k)} appears twice in one object")
        seen.add(k)
    return dict(kv)

def constant(name):
    raise ValueError(f"{name} is not JSON")

args = sys.argv[1:]
for path, label in zip(args[::2], args[1::2]):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8").strip(" \t\r\n")
        dec = json.JSONDecoder(object_pairs_hook=pairs, parse_constant=constant)
        doc, end = dec.raw_decode(text)
        if text[end:].strip(" \t\r\n"):
            print(f"{label}: .: holds more than one JSON document")
    except UnicodeDecodeError as e:
        print(f"{label}: .: is not UTF-8 (byte {e.start})")
    except (OSError, ValueError) as e:
        print(f"{label}: .: is not one JSON document: {e}")
PY
}

# _t_oci_rules FILE KIND LABEL...: the rules of tests/oci-check.jq over the documents, in one
# run of jq.
_t_oci_rules()
{
        local i=0 files=() args=() out

        [ $# -gt 0 ] || return 0
        while [ $# -ge 3 ]; do
                files+=(--rawfile "doc$i" "$1")
                args+=("$2" "$3")
                i=$((i + 1))
                shift 3
        done
        if ! out=$(jq -n -r -f "$T_OCI_JQ" "${files[@]}" --args "${args[@]}" 2>&1); then
                printf '%s: jq cannot check it: %s\n' "${args[1]}" "$out"
        elif [ -n "$out" ]; then
                printf '%s\n' "$out"
        fi
}

# t_oci_check KIND FILE [LABEL [FILE LABEL]...]: more files of one kind in one run.
t_oci_check()
{
        local kind=$1 file label rc=0 pairs=() triples=() out

        _t_oci_py
        set -- "$2" "${3:-$2}" "${@:4}"
        while [ $# -ge 2 ]; do
                file=$1 label=$2
                shift 2
                if [ -f "$file" ]; then
                        pairs+=("$file" "$label")
                        triples+=("$file" "$kind" "$label")
                else
                        printf '%s: missing\n' "$label"
                        rc=1
                fi
        done
        [ "${#pairs[@]}" -gt 0 ] || return $rc
        out=$(
                _t_json_strict "${pairs[@]}"
                _t_oci_rules "${triples[@]}"
        )
        [ -z "$out" ] && return $rc
        printf '%s\n' "$out"
        return 1
}

# The walkers collect violations in T_OCI_V, and the documents to check (FILE KIND LABEL) in
# T_OCI_DOCS, all checked at the end in one run of jq and one of python.
_t_oci_v()
{
        T_OCI_V+=("$*")
}

_t_oci_add()
{
        [ -z "$1" ] || mapfile -t -O "${#T_OCI_V[@]}" T_OCI_V <<<"$1"
}

# _t_oci_docs KIND FILE LABEL...
_t_oci_docs()
{
        local kind=$1

        shift
        while [ $# -ge 2 ]; do
                T_OCI_DOCS+=("$1" "$kind" "$2")
                shift 2
        done
}

_t_oci_begin()
{
        T_OCI_V=()
        T_OCI_DOCS=()
}

_t_oci_end()
{
        local i strict=()
        local -A named=()

        # Each file once for the strict parse, whatever kinds it was checked as.
        for ((i = 0; i < ${#T_OCI_DOCS[@]}; i += 3)); do
                [ -n "${named[${T_OCI_DOCS[i]}]-}" ] || strict+=("${T_OCI_DOCS[i]}" "${T_OCI_DOCS[i + 2]}")
                named[${T_OCI_DOCS[i]}]=1
        done
        if [ "${#strict[@]}" -gt 0 ]; then
                _t_oci_add "$(_t_json_strict "${strict[@]}")"
                _t_oci_add "$(_t_oci_rules "${T_OCI_DOCS[@]}")"
        fi
        [ "${#T_OCI_V[@]}" -eq 0 ] && return 0
        printf '%s\n' "${T_OCI_V[@]}"
        return 1
}

# What the walkers read of the documents, in one jq run per role: lines of fields that start
# with the file, separated by \x1f (a tab is white space to read, which runs empty fields
# together). index: FILE self MEDIATYPE, then FILE N MEDIATYPE DIGEST SIZE
# ARCH/OS/VARIANT for each entry; manifest: FILE self MEDIATYPE, FILE config MEDIATYPE DIGEST
# SIZE, then FILE N MEDIATYPE DIGEST SIZE for each layer; config: FILE DIFF_IDS ARCH/OS/VARIANT.
T_OCI_WALK='
def obj: if type == "object" then . else {} end;
def row: map(if . == null then "" else tostring end) | join("\u001f");
def platform: [.architecture, .os, .variant] | map(. // "" | tostring) | join("/");
def entries: if type == "array" then to_entries[] | select(.value | type == "object") else empty end;
range(0; $ARGS.positional | length) as $i | $ARGS.positional[$i] as $f
| $ARGS.named["doc\($i)"] | (try fromjson catch null) | obj
| if $role == "config" then
    [$f, (.rootfs | obj | .diff_ids | if type == "array" then map(tostring) | join(" ") else "" end),
     platform] | row
  else
    (.mediaType | strings | [$f, "self", .] | row),
    (if $role == "index" then
       .manifests | entries
       | [$f, .key, .value.mediaType, .value.digest, .value.size,
          (.value.platform | if type == "object" then platform else "" end)] | row
     else
       (.config | objects | [$f, "config", .mediaType, .digest, .size] | row),
       (.layers | entries | [$f, .key, .value.mediaType, .value.digest, .value.size] | row)
     end)
  end'

# _t_oci_read ROLE FILE LABEL...: T_OCI_WALK over the files, each read on its own.
_t_oci_read()
{
        local role=$1 i=0 files=() names=()

        shift
        while [ $# -ge 2 ]; do
                files+=(--rawfile "doc$i" "$1")
                names+=("$1")
                i=$((i + 1))
                shift 2
        done
        [ $i -eq 0 ] ||
                jq -n -r --arg role "$role" "$T_OCI_WALK" "${files[@]}" --args "${names[@]}" 2>/dev/null
}

# The sha256 of a layer after the decompression that its media type names (or, given "magic",
# that its first bytes show).
_t_oci_tar_digest()
{
        local mt=$1 file=$2 magic

        magic=$(head -c4 -- "$file" | od -An -tx1 | tr -d ' \n')
        if [ "$mt" = magic ]; then
                case $magic in
                1f8b*) mt=+gzip ;;
                28b52ffd) mt=+zstd ;;
                *) mt=.tar ;;
                esac
        fi
        # zstd -d would take gzip too: the first bytes say which it is.
        case $mt in
        *+gzip | *.tar.gzip)
                [[ $magic == 1f8b* ]] || {
                        echo "(not gzip data)"
                        return
                }
                gzip -dc -- "$file"
                ;;
        *+zstd | *.tar.zstd)
                [[ $magic == 28b52ffd || $magic == 5[0-9a-f]2a4d18 ]] || {
                        echo "(not zstd data)"
                        return
                }
                command -v zstd >/dev/null || {
                        echo "(unknown: zstd is not installed)"
                        return
                }
                zstd -dcq -- "$file"
                ;;
        *) cat -- "$file" ;;
        esac | sha256sum | sed 's/^\([0-9a-f]*\).*/sha256:\1/'
}

# Hashes every file under DIR/blobs once: T_OCI_BLOB["ALG:ENCODED"] is the size of each blob
# whose content matches its name; anything else there is a violation.
_t_oci_blobs()
{
        local dir=$1 type size rel alg sum name
        local -A sizes=()

        declare -gA T_OCI_BLOB=()
        if [ ! -d "$dir/blobs" ]; then
                _t_oci_v "blobs: the directory is missing"
                return
        fi
        while IFS=' ' read -r -d '' type size rel; do
                case $type/$rel in
                d/*/*) _t_oci_v "blobs/$rel: a directory where a blob belongs" ;;
                d/*)
                        [[ $rel =~ ^[a-z0-9]+([+._-][a-z0-9]+)*$ ]] ||
                                _t_oci_v "blobs/$rel: not a digest algorithm"
                        ;;
                ?/*/*/*) _t_oci_v "blobs/$rel: not blobs/ALGORITHM/ENCODED" ;;
                f/*/*) sizes[$rel]=$size ;;
                *) _t_oci_v "blobs/$rel: not a regular file at blobs/ALGORITHM/ENCODED" ;;
                esac
        done < <(find "$dir/blobs" -mindepth 1 -printf '%y %s %P\0')
        for alg in $(printf '%s\n' "${!sizes[@]}" | cut -d/ -f1 | sort -u); do
                case $alg in
                sha256 | sha512) ;;
                *)
                        _t_oci_v "blobs/$alg: an algorithm these checks cannot verify"
                        continue
                        ;;
                esac
                while read -r sum name; do
                        name=${name#\*}
                        if [ "$sum" = "$name" ]; then
                                T_OCI_BLOB[$alg:$name]=${sizes[$alg/$name]-}
                        else
                                _t_oci_v "blobs/$alg/$name: its content has $alg $sum, not its name"
                        fi
                done < <(cd "$dir/blobs/$alg" && find . -maxdepth 1 -type f -printf '%P\0' |
                        xargs -0 -r "${alg}sum" --)
        done
}

# _t_oci_blob LABEL DIGEST SIZE: the blob a descriptor names is there, with its size; its path
# is then in T_OCI_FILE.
_t_oci_blob()
{
        local label=$1 digest=$2 size=$3 have

        T_OCI_FILE=
        [[ $digest =~ ^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$ ]] || return 1
        have=${T_OCI_BLOB[$digest]-}
        if [ -z "$have" ]; then
                [ -e "$T_OCI_DIR/blobs/${digest%%:*}/${digest#*:}" ] ||
                        _t_oci_v "$label: the blob $digest is missing"
                return 1
        fi
        [ "$have" = "$size" ] ||
                _t_oci_v "$label: the descriptor says $size bytes, the blob $digest has $have"
        T_OCI_FILE=$T_OCI_DIR/blobs/${digest%%:*}/${digest#*:}
}

t_oci_layout_check()
{
        local dir=${1%/} depth=0 f i mt digest size plat rel label cfg n want got
        local -a indexes=() next=() manifests=() dmanifests=() configs=() dconfigs=() diff_ids=()
        local -A label_of=() mt_of=() plat_of=() cfg_of=() layers_of=() diffs_of=() cplat_of=()
        local -A seen=() tar_of=()

        _t_oci_py
        T_OCI_DIR=$dir
        _t_oci_begin
        if [ -f "$dir/oci-layout" ]; then
                _t_oci_docs oci-layout "$dir/oci-layout" oci-layout
        else
                _t_oci_v "oci-layout: missing"
        fi
        _t_oci_blobs "$dir"
        if [ -f "$dir/index.json" ]; then
                indexes=("$dir/index.json" index.json)
        else
                _t_oci_v "index.json: missing"
        fi
        label_of[$dir/index.json]=index.json

        # Indexes, level by level.
        while [ "${#indexes[@]}" -gt 0 ]; do
                _t_oci_docs index "${indexes[@]}"
                next=()
                while IFS=$'\x1f' read -r f i mt digest size plat; do
                        if [ "$i" = self ]; then
                                [ -z "${mt_of[$f]-}" ] || [ "${mt_of[$f]}" = "$mt" ] ||
                                        _t_oci_v "${label_of[$f]}: its descriptor says mediaType ${mt_of[$f]}, the document $mt"
                                continue
                        fi
                        label="${label_of[$f]}: .manifests[$i]"
                        _t_oci_blob "$label" "$digest" "$size" || continue
                        [ -z "$plat" ] || plat_of[$T_OCI_FILE]+="$plat "
                        [ -z "${seen[$digest]-}" ] || continue
                        seen[$digest]=1
                        rel=${T_OCI_FILE#"$dir/"}
                        mt_of[$T_OCI_FILE]=$mt
                        case $mt in
                        application/vnd.oci.image.index.v1+json)
                                label_of[$T_OCI_FILE]="$rel (index)"
                                next+=("$T_OCI_FILE" "$rel (index)")
                                ;;
                        application/vnd.oci.image.manifest.v1+json)
                                label_of[$T_OCI_FILE]="$rel (manifest)"
                                manifests+=("$T_OCI_FILE" "$rel (manifest)")
                                ;;
                        application/vnd.docker.distribution.manifest.v2+json)
                                label_of[$T_OCI_FILE]="$rel (docker manifest)"
                                dmanifests+=("$T_OCI_FILE" "$rel (docker manifest)")
                                ;;
                        *) _t_oci_v "$label: $mt is not a manifest or index type that kiln writes" ;;
                        esac
                done < <(_t_oci_read index "${indexes[@]}")
                indexes=("${next[@]}")
                depth=$((depth + 1))
                if [ "$depth" -gt 8 ] && [ "${#indexes[@]}" -gt 0 ]; then
                        _t_oci_v "${indexes[1]}: indexes nested more than 8 deep"
                        break
                fi
        done

        # Manifests: their configs and layers.
        _t_oci_docs manifest "${manifests[@]}"
        _t_oci_docs docker-manifest "${dmanifests[@]}"
        while IFS=$'\x1f' read -r f i mt digest size; do
                label=${label_of[$f]}
                if [ "$i" = self ]; then
                        [ "${mt_of[$f]}" = "$mt" ] ||
                                _t_oci_v "$label: its descriptor says mediaType ${mt_of[$f]}, the document $mt"
                elif [ "$i" = config ]; then
                        _t_oci_blob "$label: .config" "$digest" "$size" || continue
                        cfg_of[$f]=$T_OCI_FILE
                        rel="${T_OCI_FILE#"$dir/"} (config)"
                        # The same config is checked by the rules of each format that uses it.
                        if [ "${mt_of[$f]}" = application/vnd.docker.distribution.manifest.v2+json ]; then
                                [ -n "${seen[docker $digest]-}" ] || dconfigs+=("$T_OCI_FILE" "$rel")
                                seen[docker $digest]=1
                        else
                                [ -n "${seen[oci $digest]-}" ] || configs+=("$T_OCI_FILE" "$rel")
                                seen[oci $digest]=1
                        fi
                else
                        layers_of[$f]+="$i $mt $digest $size"$'\n'
                fi
        done < <(_t_oci_read manifest "${manifests[@]}" "${dmanifests[@]}")

        _t_oci_docs config "${configs[@]}"
        _t_oci_docs docker-config "${dconfigs[@]}"
        while IFS=$'\x1f' read -r f i plat; do
                diffs_of[$f]=$i
                cplat_of[$f]=$plat
        done < <(_t_oci_read config "${configs[@]}" "${dconfigs[@]}")

        # Each manifest against its config: the platform its index gave, the layers.
        for f in "${!cfg_of[@]}"; do
                cfg=${cfg_of[$f]}
                label=${label_of[$f]}
                read -r -a diff_ids <<<"${diffs_of[$cfg]-}"
                for plat in ${plat_of[$f]-}; do
                        [ "$plat" = "${cplat_of[$cfg]-}" ] ||
                                _t_oci_v "$label: the index gives the platform $plat, the config ${cplat_of[$cfg]-}"
                done
                n=0
                while read -r i mt digest size; do
                        [ -n "$i" ] || continue
                        n=$((n + 1))
                        _t_oci_blob "$label: .layers[$i]" "$digest" "$size" || continue
                        [ "$i" -lt "${#diff_ids[@]}" ] || continue
                        [ -n "${tar_of[$mt $digest]-}" ] ||
                                tar_of[$mt $digest]=$(_t_oci_tar_digest "$mt" "$T_OCI_FILE")
                        got=${tar_of[$mt $digest]}
                        want=${diff_ids[$i]}
                        [ "$got" = "$want" ] ||
                                _t_oci_v "$label: .layers[$i] ($mt) uncompresses to $got, not the diff_id $want"
                done <<<"${layers_of[$f]-}"
                [ "$n" -eq "${#diff_ids[@]}" ] ||
                        _t_oci_v "$label: $n layers, but the config has ${#diff_ids[@]} diff_ids"
        done
        _t_oci_end
}

# Extracts an archive into a new directory, its path then in T_OCI_X, after checking that no
# entry leaves it.
_t_oci_extract()
{
        local file=$1 name bad=

        T_OCI_X=
        if [ ! -f "$file" ]; then
                echo "$file: missing"
                return 1
        fi
        while IFS= read -r name; do
                case /$name/ in
                //* | */../*) bad+=" '$name'" ;;
                esac
        done < <(tar -tf "$file" 2>/dev/null)
        if [ -n "$bad" ]; then
                echo "$file: entries outside the archive:$bad"
                return 1
        fi
        T_OCI_X=$(mktemp -d "$T_TMP/.oci-check.XXXXXX") || return 1
        if ! tar -xf "$file" -C "$T_OCI_X" 2>/dev/null; then
                echo "$file: tar cannot extract it"
                rm -rf "$T_OCI_X"
                return 1
        fi
}

t_oci_archive_check()
{
        local rc=0

        _t_oci_extract "$1" || return 1
        t_oci_layout_check "$T_OCI_X" || rc=1
        rm -rf "$T_OCI_X"
        return $rc
}

t_docker_archive_check()
{
        local x i j f cfg hex want got
        local -a entries=() configs=() diff_ids=() layers=()
        local -A diffs_of=() seen=()

        _t_oci_py
        _t_oci_extract "$1" || return 1
        x=$T_OCI_X
        _t_oci_begin
        if [ -f "$x/manifest.json" ]; then
                _t_oci_docs docker-archive "$x/manifest.json" manifest.json
        else
                _t_oci_v "manifest.json: missing"
        fi
        [ ! -e "$x/repositories" ] || _t_oci_docs docker-repositories "$x/repositories" repositories
        # Each image as CONFIG LAYER LAYER..., separated by \x1f.
        mapfile -t entries < <(jq -r 'if type == "array" then .[] else empty end
                | if type == "object" then . else {} end
                | [.Config // "", (.Layers | if type == "array" then .[] else empty end)]
                | map(tostring) | join("\u001f")' "$x/manifest.json" 2>/dev/null)
        for i in "${!entries[@]}"; do
                cfg=${entries[$i]%%$'\x1f'*}
                if [ -z "$cfg" ]; then
                        continue
                elif [ ! -f "$x/$cfg" ] || [ -L "$x/$cfg" ]; then
                        _t_oci_v "manifest.json: .[$i].Config: '$cfg' is not a file in the archive"
                        continue
                fi
                hex=${cfg##*/}
                hex=${hex%.json}
                if [[ $hex =~ ^[a-f0-9]{64}$ ]]; then
                        got=$(sha256sum <"$x/$cfg" | cut -d' ' -f1)
                        [ "$got" = "$hex" ] ||
                                _t_oci_v "$cfg: named after the sha256 $hex, its content has $got"
                fi
                [ -n "${seen[$cfg]-}" ] || configs+=("$x/$cfg" "$cfg")
                seen[$cfg]=1
        done
        _t_oci_docs docker-config "${configs[@]}"
        while IFS=$'\x1f' read -r f i _; do
                diffs_of[$f]=$i
        done < <(_t_oci_read config "${configs[@]}")
        for i in "${!entries[@]}"; do
                IFS=$'\x1f' read -r -a layers <<<"${entries[$i]}"
                cfg=${layers[0]}
                layers=("${layers[@]:1}")
                [ -n "${diffs_of[$x/$cfg]+x}" ] || continue
                read -r -a diff_ids <<<"${diffs_of[$x/$cfg]}"
                [ "${#layers[@]}" -eq "${#diff_ids[@]}" ] ||
                        _t_oci_v "manifest.json: .[$i]: ${#layers[@]} layers, but $cfg has ${#diff_ids[@]} diff_ids"
                for j in "${!layers[@]}"; do
                        if [ ! -f "$x/${layers[$j]}" ]; then
                                _t_oci_v "manifest.json: .[$i].Layers[$j]: '${layers[$j]}' is not a file in the archive"
                                continue
                        fi
                        [ "$j" -lt "${#diff_ids[@]}" ] || continue
                        want=${diff_ids[$j]}
                        got=$(_t_oci_tar_digest magic "$x/${layers[$j]}")
                        [ "$got" = "$want" ] ||
                                _t_oci_v "manifest.json: .[$i].Layers[$j]: '${layers[$j]}' is the tar $got, not the diff_id $want"
                done
        done
        _t_oci_end
        i=$?
        rm -rf "$x"
        return $i
}

# _t_oci_assert NAME CHECK ARGS...: passes when the check finds nothing.
_t_oci_assert()
{
        local name=$1 out line n=0 diag=()

        _t_oci_py
        shift
        if out=$("$@"); then
                t_pass "$name"
                return 0
        fi
        while IFS= read -r line; do
                n=$((n + 1))
                [ $n -le 40 ] && diag+=("  $line")
        done <<<"$out"
        [ $n -le 40 ] || diag+=("  ... and $((n - 40)) more")
        t_fail "$name" "violations of the image-spec:" "${diag[@]}"
        return 1
}

t_oci_valid()
{
        _t_oci_assert "$1" t_oci_check "$2" "$3"
}

t_oci_layout_valid()
{
        _t_oci_assert "$1" t_oci_layout_check "$2"
}

t_oci_archive_valid()
{
        _t_oci_assert "$1" t_oci_archive_check "$2"
}

t_docker_archive_valid()
{
        _t_oci_assert "$1" t_docker_archive_check "$2"
}

# t_base_image busybox|debian [NAME]: builds that base image (testdata/base/) into the
# store at $KILN_ROOT as NAME (default: the base's name). The Debian rootfs tarball is made
# once per machine and kept in the base cache (see testdata/base/debian.sh), so only the
# first test to need it reads the mirror. Returns 0, or 1 with T_SKIP_REASON set when the
# Debian mirror cannot be reached (the caller reports a skip); bails out on other failures.
t_base_image()
{
        local base=$1 name=${2:-$1} rc

        T_SKIP_REASON=
        case $base in
        busybox) bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" "$name" \
                >"$T_TMP/base.out" 2>"$T_TMP/base.err" ;;
        debian) bash "$KILN_SRCDIR/testdata/base/debian.sh" "$KILN" "$name" \
                >"$T_TMP/base.out" 2>"$T_TMP/base.err" ;;
        *) t_bail "t_base_image: unknown base '$base'" ;;
        esac
        rc=$?
        if [ $rc -eq 75 ]; then
                T_SKIP_REASON=$(tail -1 "$T_TMP/base.err")
                return 1
        fi
        [ $rc -eq 0 ] || {
                t_diag_file "base image stderr" "$T_TMP/base.err"
                t_bail "building the $base base image failed"
        }
        return 0
}

# t_marked WORD: how many processes of the host have WORD as one of their arguments
# (whole). Read by bash itself, so that no process of the scan has it.
t_marked()
{
        local f w n=0
        local -a a

        for f in /proc/[0-9]*/cmdline; do
                mapfile -d '' -t a 2>/dev/null <"$f" || continue
                for w in "${a[@]}"; do
                        if [ "$w" = "$1" ]; then
                                n=$((n + 1))
                                break
                        fi
                done
        done
        echo "$n"
}

# t_wait_for WANT SECONDS CMD...: runs CMD every 0.1 s until it prints WANT, for at most
# SECONDS; prints what it printed last.
t_wait_for()
{
        local want=$1 secs=$2 got i
        shift 2

        for ((i = 0; i < secs * 10; i++)); do
                got=$("$@")
                [ "$got" = "$want" ] && break
                sleep 0.1
        done
        echo "$got"
}
