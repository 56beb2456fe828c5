#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The image-spec validator itself (tests/oci-check.jq and the t_oci_* helpers of lib.sh):
# valid documents pass, and each kind of broken document, layout and archive is reported,
# naming the JSON path and the rule, so that the checks the other tests run can fail.
set -u
. "$(dirname "$0")/../lib.sh"

H=${KILN_EXPORT_HELPER:-$KILN_BUILDDIR/tests/helpers/mkimage-export}
[ -x "$H" ] || t_bail "no helper at '$H'"
cd "$T_TMP" || t_bail "cd $T_TMP"

HEX=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
D=sha256:$HEX

# ---- valid documents pass ----

printf '{"imageLayoutVersion":"1.0.0"}' >oci-layout.json
cat >index.json <<EOF
{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
 "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "$D",
                "size": 7, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                "annotations": {"org.opencontainers.image.ref.name": "v1.0-rc1"}}]}
EOF
cat >manifest.json <<EOF
{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
 "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "$D", "size": 2},
 "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "$D", "size": 0},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "$D", "size": 9,
             "urls": ["https://example.com/layer?x=1"], "data": "aGk="}],
 "annotations": {"org.opencontainers.image.created": "2024-02-29T23:59:60.5+01:00",
                 "org.example.empty": ""}}
EOF
cat >config.json <<EOF
{"created": "2024-01-01T00:00:00Z", "author": "kiln", "architecture": "amd64", "os": "linux",
 "config": {"User": "1000:1000", "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}},
            "Env": ["PATH=/bin", "EMPTY="], "Entrypoint": ["/bin/app"], "Cmd": null,
            "Volumes": {"/data": {}}, "WorkingDir": "/srv", "Labels": {"a": "b"},
            "StopSignal": "SIGRTMIN+3", "ArgsEscaped": true,
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5000000000, "Retries": 3},
            "OnBuild": ["RUN true"], "Shell": ["/bin/sh", "-c"], "Unknown": {"kept": 1}},
 "rootfs": {"type": "layers", "diff_ids": ["$D", "$D"]},
 "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "COPY a /"},
             {"created_by": "ENV A=1", "empty_layer": true},
             {"created_by": "COPY b /", "comment": "", "empty_layer": false}],
 "x-extension": [1, 2]}
EOF
cat >docker-manifest.json <<EOF
{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
 "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "$D", "size": 2},
 "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "$D", "size": 3},
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "digest": "$D", "size": 4}]}
EOF
jq '.config.Env = null | .config.ExposedPorts = null | .container_config = {"Cmd": null}
    | .docker_version = "24.0.0"' config.json >docker-config.json
printf '[{"Config":"%s.json","RepoTags":["localhost:5000/a/b:v1","busybox:latest"],"Layers":["%s.tar"]}]' \
        "$HEX" "$HEX" >archive.json
printf '{"localhost/a":{"latest":"%s"}}' "$HEX" >repositories.json

for kf in oci-layout:oci-layout.json index:index.json manifest:manifest.json config:config.json \
        docker-manifest:docker-manifest.json docker-config:docker-config.json \
        docker-archive:archive.json docker-repositories:repositories.json; do
        t_ok "a valid ${kf%%:*} passes" t_oci_check "${kf%%:*}" "${kf#*:}"
        t_eq "... and prints nothing" "$(cat "$T_OUT")" ""
done

# ---- each broken document is reported, with its path and rule ----

# broken KIND FILE JQ WANT: FILE changed by the jq program JQ must be reported with a line
# that contains WANT. The checks run below, once per kind.
cases=()
broken()
{
        local n=$((${#cases[@]} / 4 + 1))

        jq "$3" "$2" >"broken-$n.json" || t_bail "jq '$3' failed"
        cases+=("$1" "$3" "$4" "broken-$n.json")
}

broken manifest manifest.json '.schemaVersion = 3' '.schemaVersion: must be the integer 2, not 3'
broken manifest manifest.json '.schemaVersion = "2"' '.schemaVersion: must be the integer 2, not "2"'
broken manifest manifest.json '.config.digest |= ascii_upcase' \
        '.config.digest: "SHA256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855" does not match the digest grammar'
broken manifest manifest.json '.config.digest |= "sha256:" + (ltrimstr("sha256:") | ascii_upcase)' \
        '.config.digest: "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855": a sha256 digest is 64 lowercase hex digits'
broken manifest manifest.json '.layers[0].digest = "sha256:abc"' '.layers[0].digest: "sha256:abc": a sha256 digest is 64 lowercase hex digits'
broken manifest manifest.json '.layers[1].size = -1' '.layers[1].size: must be >= 0, not -1'
broken manifest manifest.json '.layers[0].size = 1.5' '.layers[0].size: must be an integer, not a fractional number'
broken manifest manifest.json '.layers[0].size = "1"' '.layers[0].size: must be an integer, not a string'
broken manifest manifest.json 'del(.config)' '.config: is required'
broken manifest manifest.json 'del(.layers[0].digest)' '.layers[0].digest: is required'
broken manifest manifest.json '.layers = {}' '.layers: must be an array, not an object'
broken manifest manifest.json '.layers[0].mediaType = "application/vnd.example.layer.v1.tar"' \
        '.layers[0].mediaType: "application/vnd.example.layer.v1.tar" is not an OCI image layer type'
broken manifest manifest.json '.layers[0].mediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"' \
        '.layers[0].mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip" is not an OCI image layer type'
broken manifest manifest.json '.layers[0].mediaType = "layer/"' '.layers[0].mediaType: "layer/" is not an RFC 6838 media type'
broken manifest manifest.json '.config.mediaType = "application/vnd.docker.container.image.v1+json"' \
        '.config.mediaType: "application/vnd.docker.container.image.v1+json" is not the OCI image config type'
broken manifest manifest.json '.mediaType = "application/vnd.oci.image.index.v1+json"' \
        '.mediaType: must be "application/vnd.oci.image.manifest.v1+json"'
broken manifest manifest.json 'del(.mediaType)' '.mediaType: SHOULD be set'
broken manifest manifest.json '.annotations["org.opencontainers.image.created"] = "yesterday"' \
        '.annotations["org.opencontainers.image.created"]: "yesterday" is not an RFC 3339 date-time'
broken manifest manifest.json '.annotations.n = 1' '.annotations.n: must be a string, not an integer'
broken manifest manifest.json '.layers[1].urls = ["not a uri"]' '.layers[1].urls[0]: "not a uri" is not an RFC 3986 URI'
broken manifest manifest.json '.layers[1].data = "a?"' '.layers[1].data: is not RFC 4648 base64'
broken manifest manifest.json '.subject = {"mediaType": "a/b"}' '.subject.digest: is required'
broken config config.json '.config.Env = [1, "A=1"]' '.config.Env[0]: must be a string, not an integer'
broken config config.json '.config.Env = ["NOVALUE"]' '.config.Env[0]: "NOVALUE" is not VARNAME=VARVALUE'
broken config config.json '.config.Env = null' '.config.Env: must be an array, not null'
broken config config.json '.created = "2024-01-01 10:00:00"' '.created: "2024-01-01 10:00:00" is not an RFC 3339 date-time'
broken config config.json '.created = "2024-13-01T00:00:00Z"' '.created: "2024-13-01T00:00:00Z" is not an RFC 3339 date-time (a field is out of range)'
broken config config.json '.created = "2023-02-29T00:00:00Z"' '.created: "2023-02-29T00:00:00Z" is not an RFC 3339 date-time (a field is out of range)'
broken config config.json '.history[0].created = 1704067200' '.history[0].created: must be a string, not an integer'
broken config config.json 'del(.architecture)' '.architecture: is required'
broken config config.json '.os = ""' '.os: must not be empty'
broken config config.json 'del(.rootfs.diff_ids)' '.rootfs.diff_ids: is required'
broken config config.json '.rootfs.type = "layer"' '.rootfs.type: must be "layers", not "layer"'
broken config config.json '.rootfs.diff_ids[1] = "sha256:" + ("a" * 63)' '.rootfs.diff_ids[1]:'
broken config config.json '.config.User = 1000' '.config.User: must be a string, not an integer'
broken config config.json '.config.ExposedPorts["80/tcp"] = {"x": 1}' '.config.ExposedPorts["80/tcp"]: must be {}, not {"x":1}'
broken config config.json '.config.ExposedPorts = {"http": {}}' '.config.ExposedPorts.http: the key is not port/tcp, port/udp or port'
broken config config.json '.config.ExposedPorts = ["80/tcp"]' '.config.ExposedPorts: must be an object, not an array'
broken config config.json '.config.Volumes["/data"] = true' '.config.Volumes["/data"]: must be an object, not a boolean'
broken config config.json '.config.Entrypoint = "/bin/app"' '.config.Entrypoint: must be an array, not a string'
broken config config.json '.config.Cmd = [["sh"]]' '.config.Cmd[0]: must be a string, not an array'
broken config config.json '.config.WorkingDir = null' '.config.WorkingDir: must be a string, not null'
broken config config.json '.config.Labels.a = true' '.config.Labels.a: must be a string, not a boolean'
broken config config.json '.config.StopSignal = "sigterm"' '.config.StopSignal: "sigterm" is not a signal name'
broken config config.json '.config.ArgsEscaped = "yes"' '.config.ArgsEscaped: must be a boolean, not a string'
broken config config.json '.config.Healthcheck.Interval = "5s"' '.config.Healthcheck.Interval: must be an integer (nanoseconds), not a string'
broken config config.json '.config.Healthcheck.Timeout = 10' '.config.Healthcheck.Timeout: must be 0 or at least 1000000 (1 ms), not 10'
broken config config.json '.config.Healthcheck.Test = ["PING"]' '.config.Healthcheck.Test: must start with NONE, CMD or CMD-SHELL'
broken config config.json '.config.Healthcheck.Retries = -1' '.config.Healthcheck.Retries: must be an integer >= 0, not -1'
broken config config.json '.config.OnBuild = "RUN true"' '.config.OnBuild: must be an array, not a string'
broken config config.json '.config.Shell = []' '.config.Shell: must not be empty'
broken config config.json '.history[1].empty_layer = "yes"' '.history[1].empty_layer: must be a boolean, not a string'
broken config config.json '.history += [{"created_by": "COPY c /"}]' \
        '.history: 3 entries without empty_layer, but rootfs.diff_ids has 2 layers'
broken config config.json '.history = {}' '.history: must be an array, not an object'
broken docker-config docker-config.json '.container_config.Env = "A=1"' '.container_config.Env: must be an array, not a string'
broken index index.json '.manifests[0].platform = {"os": "linux"}' '.manifests[0].platform.architecture: is required'
broken index index.json '.manifests[0].platform.features = "sse4"' '.manifests[0].platform.features: must be an array, not a string'
broken index index.json '.manifests[0].annotations["org.opencontainers.image.ref.name"] = "v1 beta"' \
        '.manifests[0].annotations["org.opencontainers.image.ref.name"]: "v1 beta" is not a reference name'
broken index index.json 'del(.manifests)' '.manifests: is required'
broken index index.json '.manifests[0].size = null' '.manifests[0].size: must be an integer, not null'
broken oci-layout oci-layout.json '.imageLayoutVersion = "2.0.0"' '.imageLayoutVersion: must be "1.0.0", not "2.0.0"'
broken oci-layout oci-layout.json '{}' '.imageLayoutVersion: is required'
broken docker-manifest docker-manifest.json '.layers[0].mediaType = "application/vnd.oci.image.layer.v1.tar+zstd"' \
        '.layers[0].mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" is not a docker schema 2 layer type'
broken docker-manifest docker-manifest.json 'del(.mediaType)' '.mediaType: is required'
broken docker-manifest docker-manifest.json '.config.mediaType = "application/vnd.oci.image.config.v1+json"' \
        ".config.mediaType: \"application/vnd.oci.image.config.v1+json\" is not docker's image config type"
broken docker-archive archive.json '.[0].Config = "/etc/passwd"' '.[0].Config: "/etc/passwd" is not a relative path inside the archive'
broken docker-archive archive.json '.[0].Layers[0] = "../x.tar"' '.[0].Layers[0]: "../x.tar" is not a relative path inside the archive'
broken docker-archive archive.json '.[0].RepoTags = ["Localhost/Upper"]' '.[0].RepoTags[0]: "Localhost/Upper" is not a docker reference NAME:TAG'
broken docker-archive archive.json '[]' '.: must list at least one image'
broken docker-repositories repositories.json '.["localhost/a"].latest |= "sha256:" + .' \
        '.["localhost/a"].latest: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" is not a 64-hex-digit id'

for kind in $(for ((i = 0; i < ${#cases[@]}; i += 4)); do echo "${cases[i]}"; done | sort -u); do
        args=()
        for ((i = 0; i < ${#cases[@]}; i += 4)); do
                [ "${cases[i]}" != "$kind" ] || args+=("${cases[i + 3]}" "${cases[i + 3]}")
        done
        t_fails "the broken ${kind}s are reported" 1 t_oci_check "$kind" "${args[@]}"
        cat "$T_OUT" >>broken.out
done
for ((i = 0; i < ${#cases[@]}; i += 4)); do
        t_contains "${cases[i]}: ${cases[i + 1]} is reported as '${cases[i + 2]}'" \
                "${cases[i + 3]}: ${cases[i + 2]}" broken.out
done

# What jq cannot see: the file as JSON text.
printf '{"schemaVersion": 2, "schemaVersion": 2}' >dup.json
t_fails "a key twice in one object is reported" 1 t_oci_check index dup.json dup
t_contains "... naming the key" 'dup: .: is not one JSON document: the key "schemaVersion" appears twice' "$T_OUT"
printf '{"imageLayoutVersion":"1.0.0"}\n{}\n' >two.json
t_fails "two documents in one file are reported" 1 t_oci_check oci-layout two.json two
t_contains "... as such" "two: .: holds more than one JSON document" "$T_OUT"
printf '{"imageLayoutVersion":"1.0.0\xff"}' >latin.json
t_fails "a file that is not UTF-8 is reported" 1 t_oci_check oci-layout latin.json latin
t_contains "... with the byte" "latin: .: is not UTF-8 (byte 28)" "$T_OUT"
printf '{"imageLayoutVersion":' >cut.json
t_fails "a truncated file is reported" 1 t_oci_check oci-layout cut.json cut
t_contains "... as not JSON" "cut: .: is not one JSON document" "$T_OUT"
printf 'null' >s1.json
printf '1' >s2.json
t_fails "documents without a final newline are checked each on its own" 1 \
        t_oci_check oci-layout s1.json s1 s2.json s2
t_contains "... the first" "s1: .: must be an object, not null" "$T_OUT"
t_contains "... the second" "s2: .: must be an object, not an integer" "$T_OUT"
t_fails "a missing file is reported" 1 t_oci_check index nothing.json
t_contains "... as missing" "nothing.json: missing" "$T_OUT"

# ---- layouts and archives ----

ID=$("$H" make localhost/check:latest) || t_bail "could not make the test image"
"$H" export "$ID" "oci:$T_TMP/good:gzip" >/dev/null &&
        "$H" export "$ID" "oci:$T_TMP/good:zstd" oci zstd >/dev/null &&
        "$H" export "$ID" "oci:$T_TMP/good:docker" docker gzip >/dev/null &&
        "$H" export "$ID" "oci-archive:$T_TMP/good.tar:v1" >/dev/null &&
        "$H" export "$ID" "docker-archive:$T_TMP/good-docker.tar:localhost/check:latest" >/dev/null ||
        t_bail "could not export the test image"
t_ok "a layout that kiln wrote passes" t_oci_layout_check good
t_ok "an oci-archive that kiln wrote passes" t_oci_archive_check good.tar
t_ok "a docker-archive that kiln wrote passes" t_docker_archive_check good-docker.tar

# The assertion form fails too: run in a subshell, its TAP line is only captured.
cp -r good bad0 && chmod -R u+w bad0 && echo '{}' >bad0/oci-layout
out=$(t_oci_layout_valid "inner" bad0)
t_grep "t_oci_layout_valid fails a bad layout" '^not ok [0-9]+ - inner$' <(echo "$out")
t_grep "... with the violation as a diagnostic" '^#   oci-layout: .imageLayoutVersion: is required$' <(echo "$out")
jq '.os = 1' config.json >badcfg.json
out=$(t_oci_valid "inner" config badcfg.json)
t_grep "t_oci_valid fails a bad document" '^not ok [0-9]+ - inner$' <(echo "$out")

manifest_of() { jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"; }
blob() { echo "$1/blobs/sha256/${2#sha256:}"; }
# rehash DIR FILE: stores FILE as a blob of DIR and prints "DIGEST SIZE".
rehash()
{
        local d
        d=sha256:$(sha256sum <"$2" | cut -d' ' -f1)
        cp "$2" "$(blob "$1" "$d")"
        echo "$d $(stat -c %s "$2")"
}
# bad NAME: a fresh writable copy of the good layout.
bad() { rm -rf "$1" && cp -r good "$1" && chmod -R u+w "$1"; }
M=$(manifest_of good gzip)
CFG=$(jq -r .config.digest "$(blob good "$M")")
L0=$(jq -r '.layers[0].digest' "$(blob good "$M")")

bad bad1
rm "$(blob bad1 "$L0")"
t_fails "a missing layer blob is reported" 1 t_oci_layout_check bad1
t_contains "... naming the descriptor and the blob" "(manifest): .layers[0]: the blob $L0 is missing" "$T_OUT"

bad bad2
jq '.manifests[0].size += 1' good/index.json >bad2/index.json
t_fails "a descriptor with the wrong size is reported" 1 t_oci_layout_check bad2
t_grep "... with both sizes" '^index.json: .manifests\[0\]: the descriptor says [0-9]+ bytes, the blob sha256:[0-9a-f]{64} has [0-9]+$' "$T_OUT"

bad bad3
printf 'x' | dd of="$(blob bad3 "$L0")" bs=1 seek=10 conv=notrunc 2>/dev/null
t_fails "a blob whose content is not its digest is reported" 1 t_oci_layout_check bad3
t_contains "... naming the blob" "blobs/sha256/${L0#sha256:}: its content has sha256 " "$T_OUT"

bad bad4
echo stray >bad4/blobs/sha256/.partial.tmp
mkdir bad4/blobs/sha256/sub
t_fails "stray files in blobs/ are reported" 1 t_oci_layout_check bad4
t_contains "... the temp file" "blobs/sha256/.partial.tmp: its content has sha256 " "$T_OUT"
t_contains "... the directory" "blobs/sha256/sub: a directory where a blob belongs" "$T_OUT"

# A config with one diff_id less, stored under its new digest and named by a new manifest.
bad bad5
jq -c '.rootfs.diff_ids |= .[:1] | .history |= .[1:]' "$(blob good "$CFG")" >cfg5.json
read -r c5 s5 < <(rehash bad5 cfg5.json)
jq -c --arg d "$c5" --argjson s "$s5" '.config.digest = $d | .config.size = $s' "$(blob good "$M")" >m5.json
read -r m5 ms5 < <(rehash bad5 m5.json)
jq --arg d "$m5" --argjson s "$ms5" '.manifests[0].digest = $d | .manifests[0].size = $s' good/index.json >bad5/index.json
t_fails "layers that the config's diff_ids do not match in number are reported" 1 t_oci_layout_check bad5
t_contains "... with both counts" "(manifest): 2 layers, but the config has 1 diff_ids" "$T_OUT"

# The layers swapped: each uncompresses to the other's diff_id.
bad bad6
jq -c '.layers |= reverse' "$(blob good "$M")" >m6.json
read -r m6 ms6 < <(rehash bad6 m6.json)
jq --arg d "$m6" --argjson s "$ms6" '.manifests[0].digest = $d | .manifests[0].size = $s' good/index.json >bad6/index.json
t_fails "a layer that is not its diff_id is reported" 1 t_oci_layout_check bad6
t_grep "... with both digests" '\(manifest\): .layers\[0\] \(application/vnd.oci.image.layer.v1.tar\+gzip\) uncompresses to sha256:[0-9a-f]{64}, not the diff_id sha256:[0-9a-f]{64}$' "$T_OUT"

# A gzip layer labelled zstd does not uncompress at all.
bad bad7
jq -c '.layers[0].mediaType = "application/vnd.oci.image.layer.v1.tar+zstd"' "$(blob good "$M")" >m7.json
read -r m7 ms7 < <(rehash bad7 m7.json)
jq --arg d "$m7" --argjson s "$ms7" '.manifests[0].digest = $d | .manifests[0].size = $s' good/index.json >bad7/index.json
t_fails "a layer in another compression than its media type says is reported" 1 t_oci_layout_check bad7
t_contains "... as not its diff_id" "(manifest): .layers[0] (application/vnd.oci.image.layer.v1.tar+zstd) uncompresses to" "$T_OUT"

bad bad8
jq '.manifests[0].platform = {"architecture": "s390x", "os": "linux"}
    | .manifests[1].mediaType = "application/vnd.docker.distribution.manifest.v2+json"' \
        good/index.json >bad8/index.json
t_fails "an index entry that disagrees with what it names is reported" 1 t_oci_layout_check bad8
t_grep "... the platform" '\(manifest\): the index gives the platform s390x/linux/, the config [a-z0-9]+/linux/$' "$T_OUT"
t_grep "... the media type" '\(docker manifest\): its descriptor says mediaType application/vnd.docker.distribution.manifest.v2\+json, the document application/vnd.oci.image.manifest.v1\+json$' "$T_OUT"

bad bad9
rm bad9/index.json
t_fails "a layout without index.json is reported" 1 t_oci_layout_check bad9
t_contains "... as such" "index.json: missing" "$T_OUT"

# Broken documents deep in a layout are found and named by their blob.
bad bad10
jq -c '.config.Env = [1]' "$(blob good "$CFG")" >cfg10.json
read -r c10 s10 < <(rehash bad10 cfg10.json)
jq -c --arg d "$c10" --argjson s "$s10" '.config.digest = $d | .config.size = $s' "$(blob good "$M")" >m10.json
read -r m10 ms10 < <(rehash bad10 m10.json)
jq --arg d "$m10" --argjson s "$ms10" '.manifests[0].digest = $d | .manifests[0].size = $s' good/index.json >bad10/index.json
t_fails "a bad config inside a layout is reported" 1 t_oci_layout_check bad10
t_contains "... by its blob and path" "blobs/sha256/${c10#sha256:} (config): .config.Env[0]: must be a string, not an integer" "$T_OUT"

# An image of no layers is valid: empty lists are read as empty, not skipped.
bad nolayers
jq -c '.rootfs.diff_ids = [] | .history = [{"created_by": "ENV A=1", "empty_layer": true}]' \
        "$(blob good "$CFG")" >cfg11.json
read -r c11 s11 < <(rehash nolayers cfg11.json)
jq -c --arg d "$c11" --argjson s "$s11" '.config.digest = $d | .config.size = $s | .layers = []' \
        "$(blob good "$M")" >m11.json
read -r m11 ms11 < <(rehash nolayers m11.json)
jq --arg d "$m11" --argjson s "$ms11" '.manifests[0].digest = $d | .manifests[0].size = $s' good/index.json >nolayers/index.json
t_ok "a layout with an image of no layers passes" t_oci_layout_check nolayers

mkdir -p dx && tar -xf good-docker.tar -C dx
l0=$(jq -r '.[0].Layers[0]' dx/manifest.json)
printf 'not a tar' >"dx/$l0"
tar -cf bad-docker.tar -C dx .
t_fails "a docker-archive layer that is not its diff_id is reported" 1 t_docker_archive_check bad-docker.tar
t_contains "... naming the layer" ".[0].Layers[0]: '$l0' is the tar sha256:" "$T_OUT"
rm -rf dx && mkdir dx && tar -xf good-docker.tar -C dx
jq '.[0].Layers += ["missing.tar"]' dx/manifest.json >dx/m && mv dx/m dx/manifest.json
tar -cf bad-docker2.tar -C dx .
t_fails "a docker-archive naming a layer it lacks is reported" 1 t_docker_archive_check bad-docker2.tar
t_contains "... the missing file" ".[0].Layers[2]: 'missing.tar' is not a file in the archive" "$T_OUT"
t_contains "... and the count" ".[0]: 3 layers, but" "$T_OUT"

python3 - evil.tar <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    data = b'{"imageLayoutVersion":"1.0.0"}'
    info = tarfile.TarInfo("../oci-layout")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
EOF
t_fails "an archive with an entry outside it is refused" 1 t_oci_archive_check evil.tar
t_contains "... naming the entry" "evil.tar: entries outside the archive: '../oci-layout'" "$T_OUT"
t_ok "... and nothing is extracted" test ! -e "$T_TMP/oci-layout"
t_eq "the archive checks leave no directory behind" "$(find "$T_TMP" -maxdepth 1 -name '.oci-check.*' | wc -l)" 0

t_done
