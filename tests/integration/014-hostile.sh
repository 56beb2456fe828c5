#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Hostile inputs: build contexts whose names and symlinks point outside, image rootfs symlinks
# that point at the host, ADD tars and imported archives with names that climb out. Each is
# refused, naming the culprit, or kept inside the rootfs; a snapshot of everything outside
# (a sentinel tree, the context itself, /etc/passwd and /etc/shadow) proves nothing changed,
# and the store stays usable.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"
W=$T_TMP/world
S=$W/sentinel
C=$W/ctx
mkdir -p "$S/sub" "$C/sub" "$C/etc" || t_bail "mkdir"
printf 'sentinel a\n' >"$S/a"
printf 'sentinel b\n' >"$S/sub/b"
printf 'outside the context\n' >"$W/x"
printf 'context passwd\n' >"$C/etc/passwd"
printf 'payload\n' >"$C/f"
ln -s /etc/passwd "$C/passwd-link"
ln -s /etc/shadow "$C/shadow-link"
ln -s / "$C/rootlink"
ln -s ../../.. "$C/uplink"
ln -s "$W/x" "$C/abs-x"
mkdir -p "$W/ctx2"
ln -s /etc/passwd "$W/ctx2/passwd-link"
printf 'FROM scratch\nCOPY f /f\n' >"$C/Containerfile.good"

# ---- crafted tars and archives (python3's tarfile) ----

cat >craft.py <<'EOF'
import hashlib, io, json, sys, tarfile

def member(t, name, data=b"", kind="file", target=None, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.mode = mode
    ti.mtime = 1
    if kind == "file":
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
        return
    if kind == "dir":
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    elif kind == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, target
    elif kind == "hardlink":
        ti.type, ti.linkname = tarfile.LNKTYPE, target
    t.addfile(ti)

def tar_bytes(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            member(t, *e)
    return b.getvalue()

sentinel = sys.argv[3] if len(sys.argv) > 3 else "/nonexistent"

# Layer (and ADD) contents, by case.
LAYERS = {
    "plain": [("hello.txt", b"hello\n")],
    "dotdot": [("ok.txt", b"ok\n"), ("../../escaped-dotdot", b"evil\n")],
    "abs": [("/escaped-abs-kiln-test", b"evil\n")],
    "symlink-abs": [("l", b"", "symlink", sentinel), ("l/escaped-symlink-abs", b"evil\n")],
    "symlink-rel": [("d", b"", "dir"), ("d/l", b"", "symlink", "../../../../../../.."),
                    ("d/l" + sentinel + "/escaped-symlink-rel", b"evil\n")],
    "hardlink-shadow": [("shadow", b"", "hardlink", "/etc/shadow")],
    "hardlink-dotdot": [("shadow", b"", "hardlink", "../../../../../../etc/shadow")],
    # A base rootfs whose /etc is a chain of absolute symlinks ending at a host path.
    "etc-chain": [("host-etc", b"", "symlink", sentinel), ("etc", b"", "symlink", "/host-etc")],
}

def oci_archive(out, layer, extra=None, corrupt=False):
    lt = tar_bytes(LAYERS[layer])
    ld = hashlib.sha256(lt).hexdigest()
    cfg = json.dumps({"architecture": ARCH, "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]},
                      "config": {}}).encode()
    cd = hashlib.sha256(cfg).hexdigest()
    man = json.dumps({"schemaVersion": 2,
                      "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": "sha256:" + cd, "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                  "digest": "sha256:" + ld, "size": len(lt)}]}).encode()
    md = hashlib.sha256(man).hexdigest()
    idx = json.dumps({"schemaVersion": 2,
                      "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                     "digest": "sha256:" + md, "size": len(man),
                                     "annotations": {"org.opencontainers.image.ref.name":
                                                     "hostile"}}]}).encode()
    if corrupt:
        lt = lt[:-1] + b"\x01"
    with tarfile.open(out, "w") as t:
        member(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        member(t, "index.json", idx)
        member(t, "blobs/sha256/" + cd, cfg)
        member(t, "blobs/sha256/" + md, man)
        member(t, "blobs/sha256/" + ld, lt)
        if extra:
            member(t, extra, b"evil\n")

def docker_archive(out, layer, extra=None, corrupt=False):
    lt = tar_bytes(LAYERS[layer])
    ld = hashlib.sha256(lt).hexdigest()
    cfg = json.dumps({"architecture": ARCH, "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]},
                      "config": {}}).encode()
    cd = hashlib.sha256(cfg).hexdigest()
    if corrupt:
        lt = lt[:-1] + b"\x01"
    man = json.dumps([{"Config": cd + ".json", "RepoTags": ["localhost/hostile:latest"],
                       "Layers": [ld + "/layer.tar"]}]).encode()
    with tarfile.open(out, "w") as t:
        member(t, "manifest.json", man)
        member(t, cd + ".json", cfg)
        member(t, ld + "/layer.tar", lt)
        if extra:
            member(t, extra, b"evil\n")

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(__import__("os").uname().machine, "amd64")
what, out = sys.argv[1], sys.argv[2]
kind, _, case = what.partition(":")
extra = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
corrupt = len(sys.argv) > 5 and sys.argv[5] == "corrupt"
if kind == "tar":
    open(out, "wb").write(tar_bytes(LAYERS[case]))
elif kind == "oci":
    oci_archive(out, case, extra, corrupt)
elif kind == "docker":
    docker_archive(out, case, extra, corrupt)
EOF
craft() { python3 craft.py "$1" "$2" "$S" "${3:-}" "${4:-}" || t_bail "craft $1"; }
for c in dotdot abs symlink-abs symlink-rel hardlink-shadow hardlink-dotdot etc-chain; do
        craft "tar:$c" "$C/$c.tar"
done
A=$T_TMP/archives
U=$T_TMP/unpacked
mkdir -p "$A"
craft oci:plain "$A/oci-plain.tar"
craft oci:plain "$A/oci-dotdot-name.tar" "../escaped-oci-name"
craft oci:plain "$A/oci-abs-name.tar" "$T_TMP/escaped-oci-abs"
craft oci:plain "$A/oci-corrupt.tar" "" corrupt
craft docker:plain "$A/docker-plain.tar"
craft docker:plain "$A/docker-dotdot-name.tar" "../escaped-docker-name"
craft docker:plain "$A/docker-abs-name.tar" "$T_TMP/escaped-docker-abs"
craft docker:plain "$A/docker-corrupt.tar" "" corrupt
for c in dotdot abs symlink-abs symlink-rel hardlink-shadow hardlink-dotdot; do
        craft "oci:$c" "$A/oci-layer-$c.tar"
        craft "docker:$c" "$A/docker-layer-$c.tar"
done

# ---- the snapshot of everything a hostile input could reach ----

snapshot()
{
        (cd "$W" && find . -printf '%p %y %m %n %s %T@ %l\n' | LC_ALL=C sort &&
                find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        for f in /etc/passwd /etc/shadow; do
                stat -c '%n %i %h %s %Y %Z' "$f"
                sha256sum "$f"
        done
        ls -a / /etc | grep escaped
        find "$T_TMP" -name 'escaped*' -not -path "$KILN_ROOT/layers/*/diff/*" -not -path "$U/*"
}
snapshot >before.txt

# Every file under blobs/ has the digest it is named by; every layer dir has its layer.json.
store_consistent()
{
        local f bad=0

        for f in "$KILN_ROOT"/blobs/sha256/*; do
                [ -e "$f" ] || continue
                [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${f##*/}" ] || {
                        echo "blob ${f##*/} does not match its name"
                        bad=1
                }
        done
        for f in "$KILN_ROOT"/layers/*/; do
                [ -d "$f" ] || continue
                jq -e .diff_id "$f/layer.json" >/dev/null 2>&1 || {
                        echo "layer $f has no complete layer.json"
                        bad=1
                }
        done
        return $bad
}

# rootfs NAME DIR: the image's layers applied to DIR by umoci.
rootfs()
{
        rm -rf "$T_TMP/layout" "$2"
        "$KILN" push "$1" "oci:$T_TMP/layout:x" >/dev/null 2>&1 &&
                umoci unpack --rootless --image "$T_TMP/layout:x" "$2" >/dev/null 2>&1
}

# An image made before the attacks, checked again after them.
t_ok "a good image builds" "$KILN" build -q --timestamp 0 -f "$C/Containerfile.good" -t good "$C"
GOOD=$(tail -1 "$T_OUT")

# build NAME CONTAINERFILE-TEXT: writes the Containerfile outside the context and builds it.
build()
{
        printf '%b' "$2" >"$T_TMP/cf.$1"
        t_run "$KILN" build -q -f "$T_TMP/cf.$1" -t "$1" "$C"
}

# ---- the build context ----

build passwd 'FROM scratch\nCOPY passwd-link /got\n'
t_fails "COPY of a symlink to /etc/passwd, context without etc/passwd, fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.passwd" -t passwd "$W/ctx2"
t_contains "the error names the source" "passwd-link" "$T_ERR"
t_ok "COPY of a symlink to /etc/passwd resolves in the context" \
        "$KILN" build -q -f "$T_TMP/cf.passwd" -t passwd "$C"
if rootfs passwd "$U/r-passwd"; then
        t_eq "the copy has the context's etc/passwd" "$(cat "$U/r-passwd/rootfs/got")" \
                "context passwd"
        t_ok "the copy is not the host's /etc/passwd" \
                bash -c "! cmp -s /etc/passwd '$U/r-passwd/rootfs/got'"
else
        t_fail "unpack the passwd image"
fi
build shadow 'FROM scratch\nCOPY shadow-link /got\n'
t_fails "COPY of a symlink to /etc/shadow (absent from the context) fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.shadow" -t shadow "$C"
t_contains "the error names the source" "shadow-link" "$T_ERR"

build dotdot 'FROM scratch\nCOPY ../x /\n'
t_fails "COPY ../x fails" 1 "$KILN" build -q -f "$T_TMP/cf.dotdot" -t dotdot "$C"
t_contains "the error names ../x" "'../x'" "$T_ERR"
build subdotdot 'FROM scratch\nCOPY sub/../../x /\n'
t_fails "COPY sub/../../x fails" 1 "$KILN" build -q -f "$T_TMP/cf.subdotdot" -t subdotdot "$C"
t_contains "the error names sub/../../x" "'sub/../../x'" "$T_ERR"
build globdotdot 'FROM scratch\nCOPY ../* /\n'
t_fails "COPY ../* fails" 1 "$KILN" build -q -f "$T_TMP/cf.globdotdot" -t globdotdot "$C"
t_contains "the error names ../*" "'../*'" "$T_ERR"

build uplink 'FROM scratch\nCOPY uplink/x /\n'
t_fails "COPY through a symlink to ../../.. fails (no x in the context)" 1 \
        "$KILN" build -q -f "$T_TMP/cf.uplink" -t uplink "$C"
t_contains "the error names the source" "uplink/x" "$T_ERR"
build absx 'FROM scratch\nCOPY abs-x /\n'
t_fails "COPY of a symlink to an absolute path outside fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.absx" -t absx "$C"
t_contains "the error names the source" "abs-x" "$T_ERR"

build rootlink 'FROM scratch\nCOPY rootlink/etc/passwd /p\nCOPY rootlink/etc/ /e/\nCOPY rootlink/*/passwd /g/\n'
t_ok "COPY through a symlink to / stays in the context" \
        "$KILN" build -q -f "$T_TMP/cf.rootlink" -t rootlink "$C"
if rootfs rootlink "$U/r-root"; then
        R=$U/r-root/rootfs
        t_eq "rootlink/etc/passwd is the context's" "$(cat "$R/p")" "context passwd"
        t_eq "rootlink/etc/ holds the context's etc only" "$(ls "$R/e")" "passwd"
        t_eq "rootlink/*/passwd matches the context's only" "$(cat "$R/g/passwd")" "context passwd"
else
        t_fail "unpack the rootlink image"
fi
build rootshadow 'FROM scratch\nCOPY rootlink/etc/shadow /s\n'
t_fails "COPY rootlink/etc/shadow fails" 1 "$KILN" build -q -f "$T_TMP/cf.rootshadow" -t rootshadow "$C"
t_contains "the error names the source" "rootlink/etc/shadow" "$T_ERR"

# ---- destinations through symlinks in the image ----

build chain 'FROM scratch\nADD etc-chain.tar /\n'
t_ok "a base whose /etc is an absolute symlink chain to a host path builds" \
        "$KILN" build -q -f "$T_TMP/cf.chain" -t chain "$C"
build intochain 'FROM chain\nCOPY f /etc/escaped-copy\nCOPY f /etc/\nADD symlink-abs.tar /\n'
t_ok "COPY and ADD through /etc build" "$KILN" build -q -f "$T_TMP/cf.intochain" -t intochain "$C"
if rootfs intochain "$U/r-chain"; then
        R=$U/r-chain/rootfs
        t_eq "COPY to /etc/F lands at the chain's end inside the rootfs" \
                "$(cat "$R$S/escaped-copy")" "payload"
        t_eq "COPY to /etc/ too" "$(cat "$R$S/f")" "payload"
        t_eq "ADD of a tar whose symlink points at the host writes inside the rootfs" \
                "$(cat "$R$S/escaped-symlink-abs")" "evil"
else
        t_fail "unpack the intochain image"
fi

# ---- ADD of hostile tars ----

build add-dotdot 'FROM scratch\nADD dotdot.tar /dest/\n'
t_fails "ADD of a tar with ../../escaped-dotdot fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.add-dotdot" -t add-dotdot "$C"
t_contains "the error names the entry" "../../escaped-dotdot" "$T_ERR"
build add-abs 'FROM scratch\nADD abs.tar /dest/\n'
t_ok "ADD of a tar with an absolute name extracts under the destination" \
        "$KILN" build -q -f "$T_TMP/cf.add-abs" -t add-abs "$C"
if rootfs add-abs "$U/r-abs"; then
        t_eq "the absolute name lands under /dest" \
                "$(cat "$U/r-abs/rootfs/dest/escaped-abs-kiln-test")" "evil"
else
        t_fail "unpack the add-abs image"
fi
build add-symabs 'FROM scratch\nADD symlink-abs.tar /dest/\n'
t_fails "ADD of a symlink to a host path, then a file through it, fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.add-symabs" -t add-symabs "$C"
t_contains "the error names the entry" "l/escaped-symlink-abs" "$T_ERR"
build add-symrel 'FROM scratch\nADD symlink-rel.tar /dest/\n'
t_fails "ADD of a symlink to ../../.., then a file through it, fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.add-symrel" -t add-symrel "$C"
t_contains "the error names the entry" "escaped-symlink-rel" "$T_ERR"
build add-symrel-root 'FROM scratch\nADD symlink-rel.tar /\n'
t_ok "... into / it stays inside the rootfs" \
        "$KILN" build -q -f "$T_TMP/cf.add-symrel-root" -t add-symrel-root "$C"
if rootfs add-symrel-root "$U/r-symrel"; then
        t_eq "the file lands inside the rootfs" \
                "$(cat "$U/r-symrel/rootfs$S/escaped-symlink-rel")" "evil"
else
        t_fail "unpack the add-symrel-root image"
fi
build add-hl 'FROM scratch\nADD hardlink-shadow.tar /dest/\n'
t_fails "ADD of a hard link to /etc/shadow fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.add-hl" -t add-hl "$C"
t_contains "the error names the entry" "shadow" "$T_ERR"
build add-hl2 'FROM scratch\nADD hardlink-dotdot.tar /dest/\n'
t_fails "ADD of a hard link to ../../etc/shadow fails" 1 \
        "$KILN" build -q -f "$T_TMP/cf.add-hl2" -t add-hl2 "$C"
t_contains "the error names the entry" "shadow" "$T_ERR"

# ---- pull of hostile archives ----

# refused_or_inside NAME SRC FILE [DIR]: pulling SRC either fails with exit 1, naming FILE,
# or gives an image with FILE under DIR (default: the sentinel's path) inside its layer.
refused_or_inside()
{
        local dir=${4:-$S}

        t_run "$KILN" pull "$2"
        if [ "$T_RC" -ne 0 ]; then
                t_eq "$1 is refused with exit 1" "$T_RC" 1
                t_contains "the error names the entry" "$3" "$T_ERR"
                return
        fi
        t_pass "$1 imports"
        t_eq "... with the file inside its layer" \
                "$(cat "$KILN_ROOT"/layers/*/diff"$dir/$3" 2>/dev/null | sort -u)" "evil"
        # Its layer tar is not what kiln would write of the directory; it exports all the same.
        local id
        id=$(tail -1 "$T_OUT")
        rm -f "$T_TMP/re.tar"
        t_ok "... and exports again" "$KILN" push "$id" "oci-archive:$T_TMP/re.tar"
        t_oci_archive_valid "... to an archive that follows the image-spec" "$T_TMP/re.tar"
        t_ok "... to an archive that imports as the same image" \
                env KILN_ROOT="$T_TMP/fresh" "$KILN" pull "oci-archive:$T_TMP/re.tar"
        t_eq "... with the same id" "$(tail -1 "$T_OUT")" "$id"
        rm -rf "$T_TMP/fresh"
}

t_ok "a plain crafted oci-archive imports" "$KILN" pull "oci-archive:$A/oci-plain.tar"
t_ok "a plain crafted docker-archive imports" "$KILN" pull "docker-archive:$A/docker-plain.tar"
for k in oci docker; do
        t_fails "$k-archive with a ../ name is refused" 1 \
                "$KILN" pull "$k-archive:$A/$k-dotdot-name.tar"
        t_contains "the error names the entry" "../escaped-$k-name" "$T_ERR"
        t_fails "$k-archive with an absolute name is refused" 1 \
                "$KILN" pull "$k-archive:$A/$k-abs-name.tar"
        t_contains "the error names the entry" "$T_TMP/escaped-$k-abs" "$T_ERR"
        # Into a fresh store, and into this one, which has the layer already.
        t_fails "$k-archive with a layer that does not match its digest is refused" 1 \
                env KILN_ROOT="$T_TMP/fresh" "$KILN" pull "$k-archive:$A/$k-corrupt.tar"
        t_grep "the error names the digest" '[0-9a-f]{64}' "$T_ERR"
        rm -rf "$T_TMP/fresh"
        t_fails "... also when the store has a good copy of the layer" 1 \
                "$KILN" pull "$k-archive:$A/$k-corrupt.tar"
        t_grep "the error names the digest" '[0-9a-f]{64}' "$T_ERR"
        t_fails "$k-archive with a layer entry ../../escaped-dotdot is refused" 1 \
                "$KILN" pull "$k-archive:$A/$k-layer-dotdot.tar"
        t_contains "the error names the entry" "../../escaped-dotdot" "$T_ERR"
        refused_or_inside "$k-archive with a layer symlink to a host path, then a file through it" \
                "$k-archive:$A/$k-layer-symlink-abs.tar" escaped-symlink-abs
        refused_or_inside "$k-archive with a layer symlink to ../.., then a file through it" \
                "$k-archive:$A/$k-layer-symlink-rel.tar" escaped-symlink-rel
        t_fails "$k-archive with a layer hard link to /etc/shadow is refused" 1 \
                "$KILN" pull "$k-archive:$A/$k-layer-hardlink-shadow.tar"
        t_contains "the error names the entry" "shadow" "$T_ERR"
        t_fails "$k-archive with a layer hard link to ../../etc/shadow is refused" 1 \
                "$KILN" pull "$k-archive:$A/$k-layer-hardlink-dotdot.tar"
        t_contains "the error names the entry" "shadow" "$T_ERR"
        refused_or_inside "$k-archive with an absolute layer entry" \
                "$k-archive:$A/$k-layer-abs.tar" escaped-abs-kiln-test /
done

# ---- nothing outside changed, and the store is sound ----

snapshot >after.txt
t_ok "nothing outside the store changed" diff -u before.txt after.txt
t_ok "the store is consistent" store_consistent
t_eq "no temp dirs are left" "$(ls -A "$KILN_ROOT/tmp" | wc -l)" 0
t_ok "kiln images works" "$KILN" images
t_grep "the good image is listed" '^localhost/good +latest' "$T_OUT"
t_ok "the good image is intact" "$KILN" inspect good
t_grep "with its id" "${GOOD#sha256:}" "$T_OUT"
t_ok "kiln prune works" "$KILN" prune
t_ok "the store is consistent after prune" store_consistent
t_ok "the good image still exports" "$KILN" push good "oci:$T_TMP/final:good"
t_oci_layout_valid "... to a layout that follows the image-spec" "$T_TMP/final"
t_ok "and rebuilds to the same id" "$KILN" build -q --timestamp 0 -f "$C/Containerfile.good" -t good "$C"

t_done
