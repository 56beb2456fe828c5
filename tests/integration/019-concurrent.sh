#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Several kiln processes on one store at once: parallel builds (some of the very same
# context, so that they race to commit the same layers and blobs), tags, rmi and listings.
# Afterwards every name points at a complete image, the name index is whole, every blob
# hashes to its name, every layer is complete, nothing is left in tmp/, and each image
# exports and is read back by skopeo.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"

N=6
for i in $(seq 1 $N); do
        mkdir -p "ctx$i/d"
        for j in $(seq 1 200); do
                printf 'context %d file %d\n' "$i" "$j" >"ctx$i/d/f$j"
        done
        printf 'FROM scratch\nCOPY d /d/\nCOPY d /again/\nLABEL n=%d\n' "$i" >"ctx$i/Containerfile"
done
# Two copies of one context: the same layers, committed by two processes at once.
cp -a ctx1 twin

"$KILN" build -q -t victim ctx2 >/dev/null 2>&1 || t_bail "build the image rmi removes"
"$KILN" build -q -t tagsrc ctx3 >/dev/null 2>&1 || t_bail "build the image that gets tagged"

pids=()
for i in $(seq 1 $N); do
        "$KILN" build -q -t "c$i" -t shared "ctx$i" >"b$i.out" 2>"b$i.err" &
        pids+=($!)
done
"$KILN" build -q --timestamp 0 -t twin twin >btwin.out 2>btwin.err &
pids+=($!)
"$KILN" build -q --timestamp 0 -t twin2 twin >btwin2.out 2>btwin2.err &
pids+=($!)
(
        for k in $(seq 1 20); do
                "$KILN" tag tagsrc "t$k" >/dev/null 2>&1 || exit 1
        done
) >tags.err 2>&1 &
pids+=($!)
"$KILN" rmi victim >rmi.out 2>rmi.err &
pids+=($!)
(
        for k in $(seq 1 20); do
                "$KILN" images --format json >/dev/null || exit 1
        done
) >images.err 2>&1 &
pids+=($!)

failed=0
for p in "${pids[@]}"; do
        wait "$p" || failed=$((failed + 1))
done
t_eq "every concurrent build, tag, rmi and listing succeeded" "$failed" 0
if [ "$failed" -ne 0 ]; then
        for f in b*.err tags.err rmi.err images.err; do
                t_diag_file "$f" "$f"
        done
fi

t_ok "the name index is valid JSON" jq -e . "$KILN_ROOT/images.json"
t_ok "kiln images lists the store" "$KILN" images --format json
cp "$T_OUT" images.json
for i in $(seq 1 $N); do
        t_eq "c$i is the image its build printed" \
                "$(jq -r --arg n "localhost/c$i:latest" \
                        '.[] | select(.Names | index($n)) | .Id' images.json)" \
                "$(cat "b$i.out")"
done
shared=$(jq -r '.[] | select(.Names | index("localhost/shared:latest")) | .Id' images.json)
t_ok "shared names one of the images built with it" grep -qx "$shared" b[1-$N].out
t_eq "both builds of one context gave one image" "$(cat btwin.out)" "$(cat btwin2.out)"
t_eq "the tags made meanwhile are all there" \
        "$(jq '[.[] | (.Names // [])[] | select(test("^localhost/t[0-9]+:latest$"))] | length' images.json)" 20
t_nogrep "victim's name is gone" 'localhost/victim:latest' images.json

bad=0
for f in "$KILN_ROOT"/blobs/sha256/*; do
        [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${f##*/}" ] || bad=$((bad + 1))
done
t_eq "every blob hashes to its name" "$bad" 0
bad=0
for d in "$KILN_ROOT"/layers/*/; do
        jq -e .diff_id "$d/layer.json" >/dev/null 2>&1 && [ -d "$d/diff" ] || bad=$((bad + 1))
done
t_eq "every layer is complete" "$bad" 0
t_eq "nothing is left in tmp/" "$(ls -A "$KILN_ROOT/tmp")" ""

for name in c1 c$N twin t20; do
        t_ok "$name exports" "$KILN" push "$name" "oci:$T_TMP/out:$name"
        if command -v skopeo >/dev/null; then
                t_ok "skopeo reads $name" skopeo inspect "oci:$T_TMP/out:$name"
        else
                t_skip "skopeo reads $name" "skopeo is not installed"
        fi
done
t_oci_layout_valid "the layout they went to follows the image-spec" "$T_TMP/out"
t_ok "prune runs after it all" "$KILN" prune
t_ok "c1 is still whole after prune" "$KILN" push c1 "oci:$T_TMP/out2:c1"
t_oci_layout_valid "... and exports to a layout that follows the image-spec" "$T_TMP/out2"
t_done
