#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Layer stacks deeper than one overlay mount takes (the kernel's 500), as root and as a user
# without root (kilntest): a stage of 525 layers whose early layers delete files, replace a
# directory (opaque) and carry owners, modes, a hard link, a setuid bit, a fifo, a symlink
# and a file capability. A RUN over it sees the merged tree through the flattened bottom
# part, kept in the store under the chain id of its top layer: made once (by the COPY whose
# view first needed it), reused by the RUN, by RUN --mount=type=bind,from= over the same
# stage and by a second build, and gone with its layers on prune. The image itself is
# checked with umoci.
set -u
. "$(dirname "$0")/../lib.sh"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"

N=520
mkdir -p ctx/f
for i in $(seq 1 $N); do
        echo "$i" >"ctx/f/f$i"
done

# The layers below the COPYs: deletions (whiteouts), a directory replaced (opaque), the
# metadata that must survive flattening, and a directory time a later copy-up keeps.
{
        cat <<'CF'
FROM capbase AS deep
RUN mkdir -p /t /d/old /f && echo keep >/t/keep && ln /t/keep /t/keep2 && \
    chown 123:456 /t/keep && chmod 4750 /t/keep && echo gone >/t/gone && \
    echo old >/d/old/a && mkfifo /t/fifo && ln -s keep /t/sym && chown -h 7:8 /t/sym && \
    chown 11:12 /t && chmod 0751 /t
RUN rm /t/gone /bin/vi && rm -r /d/old && mkdir /d/old && echo new >/d/old/b && \
    chmod 0710 /d/old && touch -d '2001-09-09 01:46:40' /d
CF
        for i in $(seq 1 $N); do
                echo "COPY f/f$i /f/"
        done
        cat <<'CF'
RUN rm /f/f2 && touch /t/new /d/old/c && { \
    echo "check: gone $(test -e /t/gone && echo present || echo absent)" \
         "vi $(test -e /bin/vi && echo present || echo absent)"; \
    echo "check: old $(ls /d/old | tr '\n' ' ')mode $(stat -c %a /d/old)"; \
    echo "check: keep $(stat -c '%u:%g %a' /t/keep) $(cat /t/keep)"; \
    echo "check: link $(test "$(stat -c %i /t/keep)" = "$(stat -c %i /t/keep2)" && echo same)"; \
    echo "check: fifo $(test -p /t/fifo && echo yes) sym $(readlink /t/sym) $(stat -c %u:%g /t/sym)"; \
    echo "check: f $(ls /f | wc -l) $(cat /f/f1 /f/f300 /f/fLAST | tr '\n' ' ')"; \
    echo "check: cap $(stat -c '%a %s' /cap/ping)"; }
FROM busybox
RUN --mount=type=bind,from=deep,target=/s \
    echo "bind: gone $(test -e /s/t/gone && echo present || echo absent)" \
         "old $(ls /s/d/old | tr '\n' ' ')keep $(stat -c '%u:%g %a' /s/t/keep)" \
         "f $(ls /s/f | wc -l) new $(test -e /s/t/new && echo yes)"
CF
} | sed "s/fLAST/f$N/" >ctx/Containerfile
# Everything up to the last RUN of the stage hits the cache, which then runs over the same
# stack.
sed -n '/^RUN rm \/f\/f2/q;p' ctx/Containerfile >ctx/Containerfile.again
cat >>ctx/Containerfile.again <<'CF'
RUN echo "again: $(ls /f | wc -l) $(cat /d/old/b)" && \
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /etc \) -prune -o -print | \
    grep -v '^/$' | sort | xargs stat -c '%n %f %u %g %s %Y' | \
    awk '{ if ($2 ~ /^4/) $5 = "-"; print "list:", $0 }'
CF

# A layer with a file capability, which neither COPY nor ADD would keep: added to the
# busybox image's OCI layout as a tar with the xattr (GNU tar, as root).
mkdir -p caplayer/cap
printf 'ping\n' >caplayer/cap/ping
chmod 0755 caplayer/cap/ping
setcap_ok=false
if command -v setcap >/dev/null && setcap cap_net_raw+ep caplayer/cap/ping 2>/dev/null; then
        setcap_ok=true
fi
tar --xattrs --xattrs-include=security.capability --numeric-owner --owner=0 --group=0 \
        -C caplayer -cf cap.tar cap
cat >addlayer.py <<'PY'
import hashlib, json, sys

layout, tar, tag = sys.argv[1:4]


def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{layout}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def load(digest):
    with open(f"{layout}/blobs/sha256/{digest[7:]}", "rb") as f:
        return json.load(f)


index = json.load(open(f"{layout}/index.json"))
desc = index["manifests"][0]
man = load(desc["digest"])
cfg = load(man["config"]["digest"])
data = open(tar, "rb").read()
d, n = blob(data)
cfg["rootfs"]["diff_ids"].append(d)
cfg.setdefault("history", []).append({"created_by": "a file capability"})
man["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
man["config"]["digest"], man["config"]["size"] = blob(json.dumps(cfg).encode())
md, mn = blob(json.dumps(man).encode())
index["manifests"] = [{"mediaType": desc["mediaType"], "digest": md, "size": mn,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]
json.dump(index, open(f"{layout}/index.json", "w"))
PY

cat >overlay-xattrs.py <<'PY'
import os, sys

for top, dirs, files in os.walk(sys.argv[1]):
    for name in [top] + [os.path.join(top, n) for n in dirs + files]:
        for x in os.listxattr(name, follow_symlinks=False):
            if x.startswith(("trusted.overlay.", "user.overlay.")):
                print(name, x)
PY

# flat_dirs ROOT: the flat trees of the store, one per line.
flat_dirs()
{
        ls -d "$1"/layers/*/flat 2>/dev/null
}

flatten_case()
{
        local label=$1 root=$2
        shift 2
        local -a as=("$@")
        local -a k=("${as[@]}" env KILN_ROOT="$root" "$KILN")
        local flat ino out

        out=$(dirname "$root")/out-$label

        t_ok "$label: the busybox base builds" "${as[@]}" env KILN_ROOT="$root" \
                bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
        rm -rf "$out.bb"
        t_ok "$label: busybox exported" "${k[@]}" push busybox "oci:$out.bb:busybox"
        t_ok "$label: a layer with a file capability added" python3 addlayer.py "$out.bb" \
                cap.tar capbase
        [ "$label" = rootless ] && chown -R kilntest: "$out.bb"
        t_ok "$label: and pulled" "${k[@]}" pull "oci:$out.bb:capbase"

        local start=$SECONDS
        t_ok "$label: a stage of $((N + 5)) layers builds" "${k[@]}" --log-level debug build \
                -t binds ctx
        t_diag "$label: built in $((SECONDS - start)) s"
        cp "$T_OUT" "$out.build.out"
        cp "$T_ERR" "$out.build.err"
        [ "$T_RC" = 0 ] || t_diag "$(tail -3 "$out.build.err")"
        t_eq "$label: the bottom 448 layers are flattened once" \
                "$(grep -c 'flatten: layers 1-448 ([0-9]* entries) merged into sha256:' "$out.build.err")" 1
        t_diag "$(grep -o 'flatten: layers 1-448 .*' "$out.build.err" | head -1)"
        t_grep "$label: the RUN stands on them" 'flatten: layers 1-448 of 524 stand as the flat tree' \
                "$out.build.err"
        t_grep "$label: so does the bind" 'flatten: layers 1-448 of 525 stand as the flat tree' \
                "$out.build.err"
        t_eq "$label: the RUN sees deletions" "$(grep '^check: gone' "$out.build.out")" \
                "check: gone absent vi absent"
        t_eq "$label: the RUN sees only the replaced directory's new files" \
                "$(grep '^check: old' "$out.build.out")" "check: old b c mode 710"
        t_eq "$label: owner, mode, setuid" "$(grep '^check: keep' "$out.build.out")" \
                "check: keep 123:456 4750 keep"
        t_eq "$label: a hard link" "$(grep '^check: link' "$out.build.out")" "check: link same"
        t_eq "$label: a fifo, a symlink and its owner" "$(grep '^check: fifo' "$out.build.out")" \
                "check: fifo yes sym keep 7:8"
        t_eq "$label: the layers above and below the flat part" \
                "$(grep '^check: f ' "$out.build.out")" "check: f $((N - 1)) 1 300 $N "
        t_eq "$label: the capability's file" "$(grep '^check: cap' "$out.build.out")" \
                "check: cap 755 5"
        t_eq "$label: a bind from the stage of $((N + 5)) layers" \
                "$(grep '^bind:' "$out.build.out")" \
                "bind: gone absent old b c keep 123:456 4750 f $((N - 1)) new yes"

        # COPY's views flatten too, a new tree every 64 layers past the first 128.
        t_eq "$label: the flat trees in the store" "$(flat_dirs "$root" | wc -l)" 7
        flat=$root/layers/$(sed -n 's/.*flatten: layers 1-448 (.*) merged into sha256:\([0-9a-f]*\).*/\1/p' \
                "$out.build.err" | head -1)/flat
        t_ok "$label: the RUN's is there" test -d "$flat"
        t_ok "$label: it has no whiteout" bash -c "! find '$flat' -type c | grep ."
        t_eq "$label: nor an overlay xattr" "$(python3 overlay-xattrs.py "$flat")" ""
        if $setcap_ok; then
                t_ok "$label: the file capability is in the flat tree" \
                        bash -c "getcap '$flat/cap/ping' | grep -q cap_net_raw"
        else
                t_skip "$label: the file capability is in the flat tree" "setcap cannot set one here"
        fi
        t_eq "$label: the files are the layers' own (hard links)" "$(stat -c %i "$flat/f/f1")" \
                "$(stat -c %i "$(find "$root/layers" -path '*/diff/f/f1')")"
        ino=$(stat -c %i "$flat")

        t_ok "$label: a second build runs a RUN over the same stack" "${k[@]}" --log-level debug \
                build -f ctx/Containerfile.again -t again ctx
        t_grep "$label: it reuses the flat tree" 'flatten: layers 1-448 of 524 stand as the flat tree' \
                "$T_ERR"
        t_nogrep "$label: and makes none" 'flatten: layers 1-448 \(' "$T_ERR"
        t_grep "$label: the step sees the stack" "^again: $N new$" "$T_OUT"
        t_eq "$label: the flat tree is the same directory" "$(stat -c %i "$flat")" "$ino"
        grep '^list: ' "$T_OUT" | cut -c7- >"$out.view"
        t_eq "$label: nothing is left in tmp/" "$(ls -A "$root/tmp" 2>/dev/null)" ""

        rm -rf "$out"
        t_ok "$label: the stage as an image, from the cache" "${k[@]}" build --target deep -t deep ctx
        t_eq "$label: every step hits" "$(grep -c '^--> Using cache' "$T_OUT")" $((N + 3))
        t_ok "$label: export" "${k[@]}" push deep "oci:$out:deep"
        # The tars are made again from layer dirs whose files the flat trees link to.
        t_oci_layout_valid "$label: every layer still has its diff_id" "$out"
        if command -v umoci >/dev/null; then
                rm -rf "$out.un"
                t_ok "$label: umoci unpacks it" umoci unpack --image "$out:deep" "$out.un"
                local r=$out.un/rootfs
                t_ok "$label: the image: deletions" test ! -e "$r/t/gone" -a ! -e "$r/bin/vi" \
                        -a ! -e "$r/f/f2"
                t_eq "$label: the image: the replaced directory" "$(ls "$r/d/old" | paste -sd' ')" "b c"
                t_eq "$label: the image: directories copied up from the flat tree keep owner, mode, time" \
                        "$(stat -c '%u:%g %a' "$r/t") $(TZ=UTC stat -c %y "$r/d" | cut -c1-19)" \
                        "11:12 751 2001-09-09 01:46:40"
                t_eq "$label: the image: owner, mode, setuid, hard link" \
                        "$(stat -c '%u:%g %a %h' "$r/t/keep")" "123:456 4750 2"
                t_eq "$label: the image: all the files" "$(ls "$r/f" | wc -l)" $((N - 1))
                # The image of the second build is the stack its last RUN ran over (which
                # added no layer): what the step saw through the flat tree, entry by entry.
                rm -rf "$out.again" "$out.again.un"
                t_ok "$label: the second image exported" "${k[@]}" push again "oci:$out.again:again"
                t_ok "$label: and unpacked" umoci unpack --image "$out.again:again" "$out.again.un"
                (cd "$out.again.un/rootfs" && find . \( -path ./proc -o -path ./sys -o -path ./dev \
                        -o -path ./etc \) -prune -o -print | grep -v '^\.$' | cut -c2- | sort |
                        sed 's|^|.|' | xargs stat -c '%n %f %u %g %s %Y' |
                        awk '{ sub(/^\./, "", $1); if ($2 ~ /^4/) $5 = "-"; print }') >"$out.image"
                t_ok "$label: the step saw the image's tree, owners, modes, sizes and times" \
                        diff "$out.image" "$out.view"
                t_diag "$label: $(wc -l <"$out.view") entries compared"
                t_ok "$label: all of it" test "$(wc -l <"$out.view")" -gt $((N + 200))
        else
                t_skip "$label: the image's tree" "umoci is not installed"
        fi

        # The collection is the same code for both; once is enough (rmi of images this deep
        # takes a while under the sanitizers).
        [ "$label" = root ] || return 0
        t_ok "$label: the images removed" "${k[@]}" rmi binds deep again capbase busybox
        t_ok "$label: prune" "${k[@]}" prune
        t_eq "$label: the flat trees went with their layers" "$(flat_dirs "$root" | wc -l)" 0
}

if [ "$(id -u)" = 0 ]; then
        flatten_case root "$T_TMP/store-root" env
else
        t_skip "root" "not running as root"
fi

if t_rootless_users && runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest
        chown kilntest: home-kilntest
        chown -R kilntest: ctx
        flatten_case rootless "$T_TMP/home-kilntest/store" \
                runuser -u kilntest -- env HOME="$T_TMP/home-kilntest"
else
        t_skip "rootless" "${T_SKIP_REASON:-kilntest cannot run $KILN}"
fi
t_done
