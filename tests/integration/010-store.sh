#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The store from the command line: images, inspect, tag, rmi and prune over images that
# tests/helpers/mkimage puts in $KILN_ROOT (until kiln build can).
set -u
. "$(dirname "$0")/../lib.sh"

[ -n "${KILN_MKIMAGE:-}" ] && [ -x "$KILN_MKIMAGE" ] || t_bail "KILN_MKIMAGE is not set"
mkimage()
{
        "$KILN_MKIMAGE" "$@" || t_bail "mkimage $* failed"
}
blob_exists()
{
        [ -f "$KILN_ROOT/blobs/sha256/${1#sha256:}" ]
}
layer_exists()
{
        [ -f "$KILN_ROOT/layers/${1#sha256:}/layer.json" ]
}
sha()
{
        printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

# ---- an empty store ----

t_ok "kiln images on an empty store exits 0" "$KILN" images
t_grep "the table has its header" '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$' "$T_OUT"
t_eq "and nothing else" "$(wc -l <"$T_OUT")" "1"
t_ok "kiln images --format json on an empty store" "$KILN" images --format json
t_eq "is an empty array" "$(jq -c . "$T_OUT")" "[]"

# ---- two images sharing a base layer ----

two_min_ago=$(date -u -d '-150 seconds' +%Y-%m-%dT%H:%M:%SZ)
three_days_ago=$(date -u -d '-3 days -1 hour' +%Y-%m-%dT%H:%M:%S.123456789+00:00)
A=$(mkimage --layer base --layer a-top --created "$two_min_ago" alpha)
B=$(mkimage --layer base --layer b-top --created "$three_days_ago" beta:1)
a12=${A#sha256:}
a12=${a12:0:12}
b12=${B#sha256:}
b12=${b12:0:12}
base=sha256:$(sha base)
a_top=sha256:$(printf '%s %s' "$base" "sha256:$(sha a-top)" | sha256sum | cut -d' ' -f1)
b_top=sha256:$(printf '%s %s' "$base" "sha256:$(sha b-top)" | sha256sum | cut -d' ' -f1)

t_ok "kiln images lists them" "$KILN" images
t_grep "alpha with its id, age and size" \
        "^localhost/alpha +latest +$a12 +2 minutes ago +11 kB$" "$T_OUT"
t_grep "beta with its tag and age" "^localhost/beta +1 +$b12 +3 days ago +11 kB$" "$T_OUT"
t_eq "newest first" "$(sed -n 2p "$T_OUT" | cut -d' ' -f1)" "localhost/alpha"
t_ok "kiln images -q" "$KILN" images -q
t_eq "prints the short ids" "$(sort "$T_OUT" | tr '\n' ' ')" "$(printf '%s\n' "$a12" "$b12" | sort | tr '\n' ' ')"
t_ok "kiln images --format json" "$KILN" images --format json
t_eq "JSON: two images" "$(jq length "$T_OUT")" "2"
t_eq "JSON: names, size and created" \
        "$(jq -c --arg id "${A#sha256:}" '.[] | select(.Id == $id) | [.Names, .Size, .Created]' "$T_OUT")" \
        "[[\"localhost/alpha:latest\"],11000,\"$two_min_ago\"]"
t_fails "kiln images --format yaml is a usage error" 2 "$KILN" images --format yaml
t_contains "names the format" "unknown format 'yaml'" "$T_ERR"

# ---- inspect ----

t_ok "kiln inspect alpha" "$KILN" inspect alpha
cp "$T_OUT" "$T_TMP/alpha.json"
t_eq "Id" "$(jq -r .Id "$T_TMP/alpha.json")" "$A"
t_eq "Names" "$(jq -c .Names "$T_TMP/alpha.json")" '["localhost/alpha:latest"]'
t_eq "Size is the sum of the layer tars" "$(jq .Size "$T_TMP/alpha.json")" "11000"
t_eq "Architecture and Os" "$(jq -c '[.Architecture, .Os, .Created]' "$T_TMP/alpha.json")" \
        "[\"amd64\",\"linux\",\"$two_min_ago\"]"
t_eq "Config is the config blob" "$(jq -c .Config.config.Env "$T_TMP/alpha.json")" \
        '["PATH=/usr/bin:/bin"]'
t_eq "Layers: chain ids" "$(jq -r '.Layers[].ChainID' "$T_TMP/alpha.json" | tr '\n' ' ')" \
        "$base $a_top "
t_eq "Layers: diff ids and sizes" "$(jq -c '.Layers[1] | [.DiffID, .Size, .Blobs]' "$T_TMP/alpha.json")" \
        "[\"sha256:$(sha a-top)\",6000,[]]"
t_ok "kiln inspect by a 12-digit id prefix" "$KILN" inspect "$a12"
t_eq "is the same" "$(cat "$T_OUT")" "$(cat "$T_TMP/alpha.json")"
t_ok "kiln inspect by full id" "$KILN" inspect "$A"
t_ok "kiln inspect by a sha256: prefix" "$KILN" inspect "sha256:${a12:0:5}"
t_fails "kiln inspect of an unknown image exits 1" 1 "$KILN" inspect nope
t_contains "says it is not found" "kiln: error: image 'nope' not found" "$T_ERR"
t_fails "kiln inspect without a name exits 2" 2 "$KILN" inspect

# ---- tag ----

t_ok "kiln tag adds names" "$KILN" tag alpha alpha2 registry.example.com/x:1
t_ok "kiln images" "$KILN" images
t_grep "alpha2 is listed" "^localhost/alpha2 +latest +$a12 " "$T_OUT"
t_grep "a registry name is kept" "^registry.example.com/x +1 +$a12 " "$T_OUT"
t_ok "kiln tag moves a name held by another image" "$KILN" tag "$b12" alpha
t_ok "kiln inspect alpha" "$KILN" inspect alpha
t_eq "alpha is now beta's" "$(jq -r .Id "$T_OUT")" "$B"
t_fails "kiln tag with an uppercase name exits 1" 1 "$KILN" tag beta:1 Foo
t_contains "names the problem" "invalid reference 'Foo': repository names must be lowercase" "$T_ERR"
t_fails "kiln tag of an unknown image exits 1" 1 "$KILN" tag nope x
t_contains "says it is not found" "image 'nope' not found" "$T_ERR"
t_fails "kiln tag with one argument exits 2" 2 "$KILN" tag alpha

# ---- rmi ----

t_ok "kiln rmi of one of two names" "$KILN" rmi alpha2
t_grep "says it untagged" '^Untagged: localhost/alpha2:latest$' "$T_OUT"
t_nogrep "does not delete the image" '^Deleted' "$T_OUT"
t_ok "the image is still there" blob_exists "$A"
t_ok "kiln rmi of its last name" "$KILN" rmi registry.example.com/x:1
t_grep "deletes the image" "^Deleted: ${A#sha256:}$" "$T_OUT"
t_fails "its config is gone" 1 blob_exists "$A"
t_fails "its own layer is gone" 1 layer_exists "$a_top"
t_ok "the shared base layer stays" layer_exists "$base"
t_ok "beta's layer stays" layer_exists "$b_top"
t_fails "kiln rmi of an unknown name exits 1" 1 "$KILN" rmi nope
t_contains "says it is not found" "image 'nope' not found" "$T_ERR"
t_fails "kiln rmi without names exits 2" 2 "$KILN" rmi

C=$(mkimage --layer base --layer c-top)
t_ok "kiln images shows an untagged image" "$KILN" images
t_grep "as <none> <none>" "^<none> +<none> +${C:7:12} " "$T_OUT"
t_ok "kiln rmi by id removes an image with all its names" "$KILN" rmi "$b12"
t_grep "untags beta:1" '^Untagged: localhost/beta:1$' "$T_OUT"
t_grep "untags alpha" '^Untagged: localhost/alpha:latest$' "$T_OUT"
t_grep "and deletes it" "^Deleted: ${B#sha256:}$" "$T_OUT"
t_ok "the base layer stays for the untagged image" layer_exists "$base"

# ---- prune ----

t_fails "kiln prune with an argument exits 2" 2 "$KILN" prune x
t_ok "kiln prune" "$KILN" prune
t_ok "kiln images" "$KILN" images
t_eq "the store is empty" "$(wc -l <"$T_OUT")" "1"
t_eq "no blobs are left" "$(ls -A "$KILN_ROOT/blobs/sha256" | wc -l)" "0"
t_eq "no layers are left" "$(ls -A "$KILN_ROOT/layers" | wc -l)" "0"
t_eq "no tmp dirs are left" "$(ls -A "$KILN_ROOT/tmp" | wc -l)" "0"

# ---- help ----

t_ok "kiln --help" "$KILN" --help
for c in images inspect prune rmi tag; do
        t_grep "kiln --help lists $c" "^  $c " "$T_OUT"
done
t_ok "kiln help rmi" "$KILN" help rmi
t_grep "shows the synopsis" '^Usage: kiln rmi NAME\|ID\.\.\.$' "$T_OUT"

t_done
