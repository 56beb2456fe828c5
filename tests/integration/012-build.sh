#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kiln build of Containerfiles without RUN: the image is exported and checked only with
# third-party tools (umoci, skopeo, podman) and, every layout and archive, against the
# image-spec by tests/oci-check.jq.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"
mkdir -p ctx/dir/sub
printf 'alpha\n' >ctx/a.txt
printf 'bravo\n' >ctx/dir/b.txt
printf 'charlie\n' >ctx/dir/sub/c.txt
printf '#!/bin/sh\necho app\n' >ctx/app.sh
chmod 0755 ctx/app.sh
ln -s a.txt ctx/link
ln -s b.txt ctx/dir/l
printf 'top secret\n' >ctx/secret.txt
printf 'secret.txt\n' >ctx/.containerignore
cat >ctx/Containerfile <<'CF'
FROM scratch
COPY a.txt /
COPY dir /opt/dir/
COPY --chmod=0600 a.txt /etc/a600
COPY app.sh link /usr/local/bin/
ENV A=1 B="two words"
LABEL org.example.k=v
WORKDIR /opt
EXPOSE 80 443/udp
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/app.sh"]
CMD ["--help"]
CF

t_ok "build without RUN" "$KILN" build -t test1 ctx
t_grep "progress shows steps" '^STEP 2/12: COPY a.txt /$' "$T_OUT"
t_grep "progress shows the commit" '^COMMIT test1$' "$T_OUT"
t_grep "the tag is reported" '^Successfully tagged localhost/test1:latest$' "$T_OUT"
id=$(tail -1 "$T_OUT")
t_grep "the last line is the image id" '^[0-9a-f]{64}$' <(echo "$id")

t_ok "images lists it" "$KILN" images
t_grep "images shows the name" '^localhost/test1 +latest +'"${id:0:12}"' ' "$T_OUT"

t_ok "export to oci:" "$KILN" push test1 "oci:$T_TMP/layout:v1"
t_oci_layout_valid "the layout follows the image-spec" "$T_TMP/layout"
t_ok "skopeo reads the layout" skopeo inspect "oci:$T_TMP/layout:v1"
t_ok "skopeo reads the config" skopeo inspect --config "oci:$T_TMP/layout:v1"
cp "$T_OUT" config.json
t_eq "Env" "$(jq -c '.config.Env' config.json)" \
        '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=two words"]'
t_eq "Labels" "$(jq -c '.config.Labels' config.json)" '{"org.example.k":"v"}'
t_eq "WorkingDir" "$(jq -r '.config.WorkingDir' config.json)" "/opt"
t_eq "ExposedPorts" "$(jq -c '.config.ExposedPorts' config.json)" '{"443/udp":{},"80/tcp":{}}'
t_eq "User" "$(jq -r '.config.User' config.json)" "1000:1000"
t_eq "Entrypoint" "$(jq -c '.config.Entrypoint' config.json)" '["/usr/local/bin/app.sh"]'
t_eq "Cmd" "$(jq -c '.config.Cmd' config.json)" '["--help"]'
t_eq "os/architecture" "$(jq -r '.os + "/" + .architecture' config.json)" "linux/$(dpkg --print-architecture)"
t_eq "one diff_id per COPY" "$(jq '.rootfs.diff_ids | length' config.json)" "4"
t_eq "history has every step" "$(jq '.history | length' config.json)" "11"

# Every format and compression push offers, checked against the image-spec.
for fmt in oci docker; do
        for comp in gzip zstd none; do
                [ "$fmt/$comp" != docker/zstd ] || continue
                t_ok "push --format $fmt --compression-format $comp" "$KILN" push --format "$fmt" \
                        --compression-format "$comp" test1 "oci:$T_TMP/matrix:$fmt-$comp"
        done
done
t_fails "push --format docker --compression-format zstd is refused" 1 "$KILN" push --format docker \
        --compression-format zstd test1 "oci:$T_TMP/matrix:docker-zstd"
t_contains "... saying why" "docker manifests have no zstd layer type" "$T_ERR"
t_eq "five manifests" "$(jq '.manifests | length' "$T_TMP/matrix/index.json")" 5
t_oci_layout_valid "each of them follows the image-spec" "$T_TMP/matrix"
for fc in oci/zstd docker/none; do
        t_ok "push --format ${fc%/*} --compression-format ${fc#*/} to oci-archive:" "$KILN" push \
                --format "${fc%/*}" --compression-format "${fc#*/}" test1 "oci-archive:$T_TMP/${fc%/*}.tar"
        t_oci_archive_valid "... which follows the image-spec" "$T_TMP/${fc%/*}.tar"
done

t_ok "umoci unpacks it" umoci unpack --rootless --image "$T_TMP/layout:v1" bundle
t_eq "a.txt" "$(cat bundle/rootfs/a.txt)" "alpha"
t_eq "directory contents copied" "$(cat bundle/rootfs/opt/dir/b.txt bundle/rootfs/opt/dir/sub/c.txt)" "bravo
charlie"
t_eq "--chmod" "$(stat -c %a bundle/rootfs/etc/a600)" "600"
t_eq "mode kept" "$(stat -c %a bundle/rootfs/usr/local/bin/app.sh)" "755"
t_eq "a symlink named as a source is followed" "$(cat bundle/rootfs/usr/local/bin/link)" "alpha"
t_ok "... and copied as a file" test ! -L bundle/rootfs/usr/local/bin/link
t_eq "a symlink inside a directory stays a link" "$(readlink bundle/rootfs/opt/dir/l)" "b.txt"
t_ok "ignored file absent" test ! -e bundle/rootfs/secret.txt

# Determinism: the same inputs with a fixed timestamp give the same image id.
t_ok "build with --timestamp" "$KILN" build -q --timestamp 0 -t det1 ctx
id1=$(tail -1 "$T_OUT")
touch ctx/a.txt
t_ok "rebuild with --timestamp" "$KILN" build -q --timestamp 0 -t det2 ctx
t_eq "same id" "$(tail -1 "$T_OUT")" "$id1"

# Heredoc bodies of COPY and ADD expand ARG and ENV as buildkit does, quotes kept, unless the
# delimiter is quoted.
mkdir -p ctxh
cat >ctxh/Containerfile <<'CF'
FROM scratch
ARG WHO=world
ENV GREETING=hello
COPY <<EOF /plain
$GREETING ${WHO}! '$WHO' "${WHO}" [$UNSET] \$WHO \\
EOF
COPY <<'EOF' /single
$GREETING ${WHO}! '$WHO'
EOF
COPY <<"EOF" /double
$GREETING ${WHO}! \$WHO
EOF
ADD <<EOF /add
${GREETING:+greeting is $GREETING}
EOF
ADD <<"EOF" /add-raw
$GREETING
EOF
CF
t_ok "build with heredocs" "$KILN" build -q --build-arg WHO=kiln -t heredocs ctxh
t_ok "export it" "$KILN" push heredocs "oci:$T_TMP/heredocs:v1"
t_oci_layout_valid "... following the image-spec" "$T_TMP/heredocs"
t_ok "unpack it" umoci unpack --rootless --image "$T_TMP/heredocs:v1" bundleh
t_eq "COPY <<EOF expands ARG and ENV, keeps quotes, applies escapes" "$(cat bundleh/rootfs/plain)" \
        "hello kiln! 'kiln' \"kiln\" [] \$WHO \\"
t_eq "COPY <<'EOF' is kept as written" "$(cat bundleh/rootfs/single)" "\$GREETING \${WHO}! '\$WHO'"
t_eq "COPY <<\"EOF\" is kept as written" "$(cat bundleh/rootfs/double)" "\$GREETING \${WHO}! \\\$WHO"
t_eq "ADD <<EOF expands" "$(cat bundleh/rootfs/add)" "greeting is hello"
t_eq "ADD <<\"EOF\" is kept as written" "$(cat bundleh/rootfs/add-raw)" "\$GREETING"
printf '# escape=`\nFROM scratch\nARG A=1\nCOPY <<EOF /f\n`$A \\$A\nEOF\n' >ctxh/Containerfile.esc
t_ok "a heredoc under escape=\`" "$KILN" build -q -f ctxh/Containerfile.esc -t heredoc-esc ctxh
t_ok "export it" "$KILN" push heredoc-esc "oci:$T_TMP/heredoc-esc:v1"
t_oci_layout_valid "... following the image-spec" "$T_TMP/heredoc-esc"
t_ok "unpack it" umoci unpack --rootless --image "$T_TMP/heredoc-esc:v1" bundleh2
t_eq "the body's escape is still the backslash" "$(cat bundleh2/rootfs/f)" '`1 $A'
printf 'FROM scratch\nCOPY <<EOF /f\n${NOPE:?must be set}\nEOF\n' >ctxh/Containerfile.bad
t_fails "an expansion error in a body fails" 1 "$KILN" build -f ctxh/Containerfile.bad ctxh
t_grep "the error names the heredoc and the cause" "heredoc 'EOF': NOPE: must be set" "$T_ERR"

# docker-archive and podman.
t_ok "export to docker-archive:" "$KILN" push --format docker test1 "docker-archive:$T_TMP/img.tar:localhost/test1:latest"
t_docker_archive_valid "the archive follows docker's format" "$T_TMP/img.tar"
t_ok "skopeo reads the archive" skopeo inspect "docker-archive:$T_TMP/img.tar"
printf '[engine]\ncgroup_manager = "cgroupfs"\n' >containers.conf
command -v runc >/dev/null && printf 'runtime = "runc"\n' >>containers.conf
export CONTAINERS_CONF=$T_TMP/containers.conf
PODMAN=(podman --root "$T_TMP/podroot" --runroot "$T_TMP/podrun" --storage-driver vfs)
t_ok "podman loads it" "${PODMAN[@]}" load -i "$T_TMP/img.tar"
t_ok "podman inspects it" "${PODMAN[@]}" image inspect localhost/test1:latest
t_eq "podman sees the Cmd" "$(jq -c '.[0].Config.Cmd' "$T_OUT")" '["--help"]'

# Errors name the file, line and column.
printf 'FROM scratch\nCOPY a.txt /\nRUN true\n' >ctx/Containerfile.run
t_fails "a RUN without a shell in the image fails" 1 "$KILN" build -f ctx/Containerfile.run ctx
t_grep "the error points at RUN and names the missing shell" 'ctx/Containerfile\.run:3:1: building at STEP "RUN true": exec '"'"'/bin/sh'"'"': No such file or directory' "$T_ERR"
printf 'FROM scratch\nCOPY missing.txt /\n' >ctx/Containerfile.missing
t_fails "a missing source fails" 1 "$KILN" build -f ctx/Containerfile.missing ctx
t_grep "the error names the source" "missing\.txt" "$T_ERR"
t_ok "earlier images are intact" "$KILN" inspect test1

# The busybox base, built offline from Debian's busybox-static with kiln itself.
t_ok "the busybox base builds" bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
base_id=$(tail -1 "$T_OUT")
t_ok "it builds the same id again" bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox2
t_eq "the base is reproducible" "$(tail -1 "$T_OUT")" "$base_id"
mkdir -p ctx2
printf 'hi\n' >ctx2/hi.txt
printf 'FROM busybox\nCOPY --chown=user:user hi.txt /home/user/\nWORKDIR /srv/app\n' >ctx2/Containerfile
t_ok "a build FROM the base" "$KILN" build -t onbase ctx2
t_ok "export it" "$KILN" push onbase "oci:$T_TMP/onbase:v1"
t_oci_layout_valid "... following the image-spec" "$T_TMP/onbase"
t_ok "umoci unpacks it" umoci unpack --image "$T_TMP/onbase:v1" bundle2
t_eq "--chown by name from the base's passwd" "$(stat -c %u:%g bundle2/rootfs/home/user/hi.txt)" "1000:1000"
t_ok "busybox is in the rootfs" test -x bundle2/rootfs/bin/busybox
t_ok "WORKDIR created the directory" test -d bundle2/rootfs/srv/app
t_ok "the rootfs runs under chroot" chroot bundle2/rootfs /bin/sh -c 'test "$(cat /home/user/hi.txt)" = hi'

# Every config instruction at once, so that each field of the config is checked.
mkdir -p ctx5
printf 'x\n' >ctx5/x
cat >ctx5/Containerfile <<'CF'
FROM busybox
ARG V=1
LABEL org.example.v=$V
MAINTAINER kiln@example.com
COPY x /x
VOLUME /data /cache
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=3 CMD ["/bin/true"]
ONBUILD COPY x /y
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGTERM
EXPOSE 8080/tcp 53/udp
ENV A=1 B="two words"
USER 1000:1000
WORKDIR /srv
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "true"]
CF
t_ok "a build with every config instruction" "$KILN" build -q --annotation org.example.a=1 -t allcfg ctx5
t_ok "push it in the OCI format" "$KILN" push allcfg "oci:$T_TMP/allcfg:oci"
t_ok "push it in the docker format" "$KILN" push --format docker allcfg "oci:$T_TMP/allcfg:docker"
cfg5=$T_TMP/allcfg/blobs/sha256/$(jq -r '.manifests[0].digest | ltrimstr("sha256:")' "$T_TMP/allcfg/index.json")
cfg5=$T_TMP/allcfg/blobs/sha256/$(jq -r '.config.digest | ltrimstr("sha256:")' "$cfg5")
t_eq "its config has Healthcheck, OnBuild, Shell, StopSignal and Volumes" \
        "$(jq -c '.config | [.Healthcheck.Test, .OnBuild, .Shell, .StopSignal, (.Volumes | keys)]' "$cfg5")" \
        '[["CMD","/bin/true"],["COPY x /y"],["/bin/sh","-ec"],"SIGTERM",["/cache","/data"]]'
t_oci_layout_valid "both follow the image-spec" "$T_TMP/allcfg"
t_ok "push it to docker-archive:" "$KILN" push allcfg "docker-archive:$T_TMP/allcfg.tar:localhost/allcfg:latest"
t_docker_archive_valid "... which follows docker's format" "$T_TMP/allcfg.tar"
printf 'FROM scratch\nENV ONLY=config\n' >ctx5/Containerfile.empty
t_ok "a build with no layer" "$KILN" build -q -f ctx5/Containerfile.empty -t nolayer ctx5
t_ok "push it" "$KILN" push nolayer "oci:$T_TMP/nolayer:v1"
t_oci_layout_valid "... following the image-spec" "$T_TMP/nolayer"

# --format and --annotation are remembered for the image's manifests.
t_ok "build with --format docker and --annotation" "$KILN" build -q --format docker --annotation org.example.a=1 -t fmt ctx2
t_ok "push it without --format" "$KILN" push fmt "oci:$T_TMP/fmt:v1"
t_oci_layout_valid "... following the image-spec" "$T_TMP/fmt"
digest=$(jq -r '.manifests[0].digest' "$T_TMP/fmt/index.json")
t_eq "the manifest is docker's" "$(jq -r .mediaType "$T_TMP/fmt/blobs/sha256/${digest#sha256:}")" \
        "application/vnd.docker.distribution.manifest.v2+json"
t_eq "the annotation is on it" "$(jq -r '.annotations["org.example.a"]' "$T_TMP/fmt/blobs/sha256/${digest#sha256:}")" "1"
t_ok "push --format oci overrides it" "$KILN" push --format oci fmt "oci:$T_TMP/fmt2:v1"
t_eq "the manifest is OCI's" "$(jq -r '.manifests[0].mediaType' "$T_TMP/fmt2/index.json")" \
        "application/vnd.oci.image.manifest.v1+json"
t_ok "skopeo reads the OCI one" skopeo inspect "oci:$T_TMP/fmt2:v1"
t_oci_layout_valid "... which follows the image-spec" "$T_TMP/fmt2"

# FROM --platform is checked against the base image.
mkdir -p ctx3
printf 'FROM --platform=linux/s390x busybox\n' >ctx3/Containerfile
t_fails "a base of another platform is refused" 1 "$KILN" build ctx3
t_grep "the error names both platforms" "the base image is linux/[a-z0-9]+, not the requested linux/s390x" "$T_ERR"
printf 'FROM --platform=$BUILDPLATFORM busybox\n' >ctx3/Containerfile
t_ok "--platform=\$BUILDPLATFORM matches" "$KILN" build -q ctx3

# ADD of an http URL: a server of our own on 127.0.0.1, stopped by PID.
mkdir -p www/files
printf 'downloaded\n' >www/files/data.txt
python3 -m http.server 0 --bind 127.0.0.1 --directory www >http.log 2>&1 &
http_pid=$!
port=
for _ in $(seq 50); do
        port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' http.log | head -1)
        [ -n "$port" ] && break
        sleep 0.1
done
url=http://127.0.0.1:$port/files/data.txt
sum=sha256:$(sha256sum www/files/data.txt | cut -d' ' -f1)
mkdir -p ctx4
printf 'FROM scratch\nADD %s /dl/\nADD --checksum=%s %s /dl/again.txt\n' "$url" "$sum" "$url" >ctx4/Containerfile
t_ok "ADD of a URL" "$KILN" build -t urlimg ctx4
t_ok "export it" "$KILN" push urlimg "oci:$T_TMP/url:v1"
t_oci_layout_valid "... following the image-spec" "$T_TMP/url"
t_ok "unpack it" umoci unpack --image "$T_TMP/url:v1" bundle4
t_eq "the download is named after the URL" "$(cat bundle4/rootfs/dl/data.txt)" "downloaded"
t_eq "downloads are mode 0600" "$(stat -c %a bundle4/rootfs/dl/data.txt)" "600"
t_eq "--checksum verified download" "$(cat bundle4/rootfs/dl/again.txt)" "downloaded"
printf 'FROM scratch\nADD --checksum=sha256:%064d %s /x\n' 0 "$url" >ctx4/Containerfile
t_fails "a wrong --checksum fails" 1 "$KILN" build ctx4
t_grep "the error names the URL and both digests" "'$url' has digest $sum, not the expected sha256:0{64}" "$T_ERR"
printf 'FROM scratch\nADD http://127.0.0.1:%s/files/missing.txt /x\n' "$port" >ctx4/Containerfile
t_fails "a 404 fails" 1 "$KILN" build ctx4
t_grep "the error names the URL and the status" "missing\.txt'.*404" "$T_ERR"
printf 'FROM scratch\nCOPY %s /x\n' "$url" >ctx4/Containerfile
t_fails "COPY refuses URLs" 1 "$KILN" build ctx4
kill "$http_pid"
wait "$http_pid" 2>/dev/null

t_done
