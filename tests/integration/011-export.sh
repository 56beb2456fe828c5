#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The transports, checked by third-party tools: an image made in the store (by
# tests/helpers/mkimage-export, until kiln build can) is exported to oci:, oci-archive: and
# docker-archive:, then read by skopeo, umoci and podman, every layout and archive checked
# against the image-spec (and docker's schema 2) by tests/oci-check.jq, and imported back
# under the same image id.
set -u
. "$(dirname "$0")/../lib.sh"

H=${KILN_EXPORT_HELPER:-$KILN_BUILDDIR/tests/helpers/mkimage-export}
[ -x "$H" ] || t_bail "no helper at '$H'"
have() { command -v "$1" >/dev/null 2>&1; }

ID=$("$H" make localhost/export-test:latest) || t_bail "could not make the test image"
t_grep "the test image has an id" '^sha256:[0-9a-f]{64}$' <(echo "$ID")
OCI=$T_TMP/oci

# ---- oci: ----

t_ok "export to oci:DIR:v1" "$H" export "$ID" "oci:$OCI:v1"
M1=$(cat "$T_OUT")
t_eq "oci-layout says 1.0.0" "$(jq -r .imageLayoutVersion "$OCI/oci-layout")" "1.0.0"
t_eq "index.json is an OCI index" \
        "$(jq -r '[.schemaVersion, .mediaType] | join(" ")' "$OCI/index.json")" \
        "2 application/vnd.oci.image.index.v1+json"
t_eq "index.json names the manifest with tag v1" \
        "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v1") | .digest' "$OCI/index.json")" \
        "$M1"
MF=$OCI/blobs/sha256/${M1#sha256:}
t_eq "the manifest blob has its digest" "sha256:$(sha256sum <"$MF" | cut -d' ' -f1)" "$M1"
t_eq "the manifest has the required fields" \
        "$(jq -r '[.schemaVersion, .mediaType, .config.mediaType, (.layers | length),
                   ([.layers[].mediaType] | unique | join(","))] | map(tostring) | join(" ")' "$MF")" \
        "2 application/vnd.oci.image.manifest.v1+json application/vnd.oci.image.config.v1+json 2 application/vnd.oci.image.layer.v1.tar+gzip"
t_eq "the manifest's config is the image id" "$(jq -r .config.digest "$MF")" "$ID"
ok=true
for d in $(jq -r '.config.digest, .layers[].digest' "$MF"); do
        f=$OCI/blobs/sha256/${d#sha256:}
        [ "sha256:$(sha256sum <"$f" | cut -d' ' -f1)" = "$d" ] || ok=false
        [ "$(stat -c %s "$f")" = "$(jq -r --arg d "$d" '[.config, .layers[]] | .[] | select(.digest == $d) | .size' "$MF")" ] || ok=false
done
t_eq "every blob has its digest and size" "$ok" true
CF=$OCI/blobs/sha256/${ID#sha256:}
t_eq "the config has the required fields" \
        "$(jq -r '[.architecture, .os, .rootfs.type, (.rootfs.diff_ids | length)] | map(tostring) | join(" ")' "$CF")" \
        "amd64 linux layers 2"
t_eq "the config keeps Cmd" "$(jq -c .config.Cmd "$CF")" '["/bin/hello"]'
t_eq "each layer decompresses to its diff_id" \
        "$(for d in $(jq -r '.layers[].digest' "$MF"); do
                   echo "sha256:$(gzip -dc "$OCI/blobs/sha256/${d#sha256:}" | sha256sum | cut -d' ' -f1)"
           done | paste -sd,)" \
        "$(jq -r '.rootfs.diff_ids | join(",")' "$CF")"

t_ok "a second export reuses the compressed layers" "$H" export "$ID" "oci:$OCI:v1"
t_eq "the same manifest comes out" "$(cat "$T_OUT")" "$M1"
t_eq "re-exporting a tag keeps one entry" "$(jq '.manifests | length' "$OCI/index.json")" 1
t_ok "export zstd to oci:DIR:v2" "$H" export "$ID" "oci:$OCI:v2" oci zstd
M2=$(cat "$T_OUT")
t_eq "index.json keeps v1 and adds v2" \
        "$(jq -r '[.manifests[].annotations["org.opencontainers.image.ref.name"]] | sort | join(",")' "$OCI/index.json")" \
        "v1,v2"
t_eq "the zstd manifest names zstd layers" \
        "$(jq -r '[.layers[].mediaType] | unique | join(",")' "$OCI/blobs/sha256/${M2#sha256:}")" \
        "application/vnd.oci.image.layer.v1.tar+zstd"
t_ok "export docker format to oci:DIR:v3" "$H" export "$ID" "oci:$OCI:v3" docker
t_eq "the docker manifest has docker media types" \
        "$(jq -r '[.mediaType, .config.mediaType, .layers[0].mediaType] | join(" ")' "$OCI/blobs/sha256/$(cut -d: -f2 "$T_OUT")")" \
        "application/vnd.docker.distribution.manifest.v2+json application/vnd.docker.container.image.v1+json application/vnd.docker.image.rootfs.diff.tar.gzip"
t_ok "export uncompressed to oci:DIR:v4" "$H" export "$ID" "oci:$OCI:v4" oci none
t_ok "export docker format uncompressed to oci:DIR:v5" "$H" export "$ID" "oci:$OCI:v5" docker none
t_eq "the uncompressed layers are the diff_ids" \
        "$(jq -r '.layers | map(.digest) | join(",")' "$OCI/blobs/sha256/$(cut -d: -f2 "$T_OUT")")" \
        "$(jq -r '.rootfs.diff_ids | join(",")' "$CF")"
t_fails "export docker format with zstd is refused" 1 "$H" export "$ID" "oci:$OCI:v6" docker zstd
t_contains "the error says why" "docker manifests have no zstd layer type" "$T_ERR"
t_eq "the refused export left no tag" "$(jq '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v6")] | length' "$OCI/index.json")" 0
t_oci_layout_valid "the layout (oci and docker, gzip, zstd and none) follows the image-spec" "$OCI"

if have skopeo; then
        t_ok "skopeo inspect oci:DIR:v1" skopeo inspect "oci:$OCI:v1"
        t_eq "skopeo sees the manifest digest" "$(jq -r .Digest "$T_OUT")" "$M1"
        t_eq "skopeo sees two layers" "$(jq '.Layers | length' "$T_OUT")" 2
        t_ok "skopeo inspect --config oci:DIR:v2" skopeo inspect --config "oci:$OCI:v2"
        t_eq "skopeo reads the config" "$(jq -r .rootfs.type "$T_OUT")" layers
        t_ok "skopeo copies oci:DIR:v2 to dir:" skopeo copy "oci:$OCI:v2" "dir:$T_TMP/skodir"
else
        t_skip "skopeo inspect oci:DIR:v1" "skopeo is not installed"
fi

if have umoci; then
        t_ok "umoci unpacks oci:DIR:v1" umoci unpack --rootless --image "$OCI:v1" "$T_TMP/bundle"
        R=$T_TMP/bundle/rootfs
        t_eq "the upper layer's file wins" "$(cat "$R/etc/hello.txt")" "hello from layer two"
        t_eq "the lower layer's file is there" "$(cat "$R/bin/hello" | tail -1)" "echo hello"
        t_eq "modes are kept" "$(stat -c %a "$R/bin/hello") $(stat -c %a "$R/empty")" "755 700"
        t_eq "the symlink is kept" "$(readlink "$R/hello-link")" "etc/hello.txt"
        t_eq "the hard link is kept" "$(stat -c %i "$R/bin/hello")" "$(stat -c %i "$R/bin/hello-again")"
        t_eq "the second layer adds its file" "$(cat "$R/usr/share/msg")" "a message"
else
        t_skip "umoci unpacks oci:DIR:v1" "umoci is not installed"
fi

# ---- oci-archive: ----

t_ok "export to oci-archive:FILE:v1" "$H" export "$ID" "oci-archive:$T_TMP/img.tar:v1"
t_eq "the archive has the same manifest" "$(cat "$T_OUT")" "$M1"
t_eq "no temp file is left" "$(ls "$T_TMP" | grep -c 'img.tar.')" 0
t_ok "the archive is a plain tar" tar -tf "$T_TMP/img.tar"
t_grep "the archive holds oci-layout" '^oci-layout$' "$T_OUT"
t_grep "the archive holds index.json" '^index.json$' "$T_OUT"
t_grep "the archive holds the manifest" "^blobs/sha256/${M1#sha256:}\$" "$T_OUT"
t_oci_archive_valid "the oci-archive follows the image-spec" "$T_TMP/img.tar"
t_ok "export zstd to oci-archive:" "$H" export "$ID" "oci-archive:$T_TMP/img-zstd.tar:v1" oci zstd
t_oci_archive_valid "the zstd oci-archive follows the image-spec" "$T_TMP/img-zstd.tar"
t_ok "export docker format uncompressed to oci-archive:" "$H" export "$ID" "oci-archive:$T_TMP/img-docker.tar:v1" docker none
t_oci_archive_valid "the docker-format oci-archive follows the image-spec" "$T_TMP/img-docker.tar"
if have skopeo; then
        t_ok "skopeo inspect oci-archive:FILE" skopeo inspect "oci-archive:$T_TMP/img.tar"
        t_eq "skopeo sees the archive's manifest" "$(jq -r .Digest "$T_OUT")" "$M1"
else
        t_skip "skopeo inspect oci-archive:FILE" "skopeo is not installed"
fi

# ---- docker-archive: ----

t_ok "export to docker-archive:FILE:REF" "$H" export "$ID" \
        "docker-archive:$T_TMP/docker.tar:localhost/export-test:latest"
t_docker_archive_valid "the docker-archive follows docker's format" "$T_TMP/docker.tar"
mkdir -p "$T_TMP/dx"
tar -xf "$T_TMP/docker.tar" -C "$T_TMP/dx"
t_eq "manifest.json names the config, the tag and two layers" \
        "$(jq -r '.[0] | [.Config, (.RepoTags | join(",")), (.Layers | length)] | map(tostring) | join(" ")' "$T_TMP/dx/manifest.json")" \
        "${ID#sha256:}.json localhost/export-test:latest 2"
ok=true
i=0
for l in $(jq -r '.[0].Layers[]' "$T_TMP/dx/manifest.json"); do
        [ "sha256:$(sha256sum <"$T_TMP/dx/$l" | cut -d' ' -f1)" = "$(jq -r ".rootfs.diff_ids[$i]" "$CF")" ] || ok=false
        i=$((i + 1))
done
t_eq "the layers are uncompressed tars named by diff_id" "$ok" true
t_eq "repositories maps the tag" "$(jq -r '."localhost/export-test".latest | length' "$T_TMP/dx/repositories")" 64
if have skopeo; then
        t_ok "skopeo inspect docker-archive:FILE" skopeo inspect "docker-archive:$T_TMP/docker.tar"
        t_eq "skopeo sees the diff_ids as layers" "$(jq -r '.Layers | join(",")' "$T_OUT")" \
                "$(jq -r '.rootfs.diff_ids | join(",")' "$CF")"
else
        t_skip "skopeo inspect docker-archive:FILE" "skopeo is not installed"
fi

if have podman; then
        conf=$T_TMP/containers.conf
        printf '[engine]\ncgroup_manager = "cgroupfs"\n' >"$conf"
        have runc && printf 'runtime = "runc"\n' >>"$conf"
        pod() { CONTAINERS_CONF=$conf podman --root "$T_TMP/podroot" --runroot "$T_TMP/podrun" \
                --storage-driver vfs "$@"; }
        t_ok "podman load -i the docker archive" pod load -i "$T_TMP/docker.tar"
        t_ok "podman image inspect the loaded image" pod image inspect localhost/export-test:latest
        t_eq "podman keeps the image id" "$(jq -r '.[0].Id' "$T_OUT")" "${ID#sha256:}"
        t_eq "podman sees the command" "$(jq -c '.[0].Config.Cmd' "$T_OUT")" '["/bin/hello"]'
        t_ok "podman load -i the oci archive" pod load -i "$T_TMP/img.tar"
        t_grep "podman names it after the tag, as kiln does" 'localhost/v1:latest' "$T_OUT"
        t_ok "podman image inspect localhost/v1" pod image inspect localhost/v1:latest
        t_eq "podman loads the same image" "$(jq -r '.[0].Id' "$T_OUT")" "${ID#sha256:}"
        pod rmi -a -f >/dev/null 2>&1
        rm -rf "$T_TMP/podroot" "$T_TMP/podrun" 2>/dev/null
else
        t_skip "podman load -i the docker archive" "podman is not installed"
fi

# ---- import ----

for src in "oci:$OCI:v1" "oci:$OCI:v2" "oci:$OCI:v3" "oci:$OCI:v4" "oci:$OCI:v5" \
        "oci-archive:$T_TMP/img.tar" "oci-archive:$T_TMP/img-zstd.tar" "oci-archive:$T_TMP/img-docker.tar" \
        "docker-archive:$T_TMP/docker.tar" "docker-archive:$T_TMP/docker.tar:localhost/export-test:latest"; do
        rm -rf "$T_TMP/store2"
        t_ok "import $src" env KILN_ROOT="$T_TMP/store2" "$H" import "$src"
        t_eq "import $src gives the same image id" "$(cat "$T_OUT")" "$ID"
done
t_ok "kiln inspect the imported image" env KILN_ROOT="$T_TMP/store2" "$KILN" inspect localhost/export-test:latest
t_grep "the imported image keeps its name" 'localhost/export-test:latest' "$T_OUT"

rm -rf "$T_TMP/store2"
t_fails "import of an unknown tag fails" 1 env KILN_ROOT="$T_TMP/store2" "$H" import "oci:$OCI:nope"
t_contains "the error names the tag" "no image tagged 'nope' in index.json" "$T_ERR"
t_fails "import of oci:DIR with several images needs a tag" 1 \
        env KILN_ROOT="$T_TMP/store2" "$H" import "oci:$OCI"
t_contains "the error says so" "more than one image" "$T_ERR"

# A layer blob that does not match its digest is refused, naming it.
cp -r "$OCI" "$T_TMP/bad"
L0=$(jq -r '.layers[0].digest' "$MF")
chmod u+w "$T_TMP/bad/blobs/sha256/${L0#sha256:}"
printf 'x' | dd of="$T_TMP/bad/blobs/sha256/${L0#sha256:}" bs=1 seek=20 conv=notrunc 2>/dev/null
t_fails "a corrupt layer blob is refused" 1 env KILN_ROOT="$T_TMP/store2" "$H" import "oci:$T_TMP/bad:v1"
t_contains "the error names the blob" "${L0#sha256:}" "$T_ERR"
t_fails "the validator reports it too" 1 t_oci_layout_check "$T_TMP/bad"
t_contains "... naming the blob" "blobs/sha256/${L0#sha256:}: its content has sha256" "$T_OUT"

# A hostile archive: names that leave the archive are refused, and nothing is written.
mkdir -p "$T_TMP/evil/sub"
echo pwned >"$T_TMP/evil/sub/x.json"
python3 - "$T_TMP/evil.tar" "$T_TMP/evil/sub/x.json" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    t.add(sys.argv[2], arcname="../../escaped.json")
EOF
t_fails "an archive entry named ../.. is refused" 1 \
        env KILN_ROOT="$T_TMP/store2" "$H" import "docker-archive:$T_TMP/evil.tar"
t_contains "the error names the entry" "../../escaped.json" "$T_ERR"
t_eq "nothing escaped" "$(ls "$T_TMP"/../escaped.json "$T_TMP"/escaped.json 2>/dev/null | wc -l)" 0

t_done
