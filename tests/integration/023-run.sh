#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# RUN in kiln build, as root and as a user without root (kilntest, with subordinate ids):
# shell and exec forms, heredocs (a script for the shell, one with a shebang, heredocs in a
# longer command), the environment (build args, ENV, PATH), USER and WORKDIR, --network
# none, --mount=type=cache|tmpfs|bind|secret, what the steps change (files created,
# changed, chmod'ed, chown'ed to 0, 1000 and 65534, hard-linked, setuid, deleted, directories
# replaced) checked in the exported image with umoci, the mount points and secrets left out
# of the layers and the history, and a failing step's error and exit status.
set -u
. "$(dirname "$0")/../lib.sh"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"

mkdir -p ctx/data
printf 'from the context\n' >ctx/data/in.txt
printf 'top secret\n' >secret.txt
chmod 0644 secret.txt
cat >ctx/Containerfile <<'CF'
FROM busybox
ARG A=argval
ENV E=envval
RUN echo "env: A=$A E=$E PATH=$PATH" && hostname >/hostname.seen
RUN ["/bin/sh", "-c", "echo exec form $E > /exec.txt"]
RUN <<EOF
echo "heredoc body $E" > /heredoc.txt
EOF
RUN <<EOF
#!/bin/sh
echo "shebang $0" > /shebang.txt
EOF
RUN cat <<ONE >/one.txt && cat <<TWO >/two.txt
first
ONE
second
TWO
RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' >/net.txt
RUN --mount=type=cache,target=/var/cache/k echo run >>/var/cache/k/log && wc -l </var/cache/k/log >/cache.count
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch >/tmpfs.txt
RUN --mount=type=bind,source=data,target=/src cat /src/in.txt >/bind.txt && ls /src >/bind.list
RUN --mount=type=secret,id=tok,mode=0440,uid=1000 cat /run/secrets/tok >/dev/null && stat -c '%a %u' /run/secrets/tok >/secret.stat
RUN mkdir -p /t/dir /t/gone /t/replace && echo a >/t/file && echo b >/t/gone/f && echo c >/t/replace/old
RUN echo changed >>/t/file && chmod 0600 /t/file && \
    touch /t/u0 /t/u1000 /t/u65534 && chown 0:0 /t/u0 && chown 1000:1000 /t/u1000 && \
    chown 65534:65534 /t/u65534 && ln /t/file /t/hardlink && \
    cp /bin/busybox /t/suid && chmod 4755 /t/suid && rm -r /t/gone && \
    rm -r /t/replace && mkdir /t/replace && echo new >/t/replace/new
RUN mkdir /names && touch "/names/$(printf 'caf\303\251')" "/names/$(printf 'raw\377')"
RUN --mount=type=bind,source=tools,target=/tools cp /bin/busybox /t/capped && \
    /tools/ld.so --library-path /tools /tools/setcap cap_net_raw,cap_chown+ep /t/capped
USER user
WORKDIR /w
RUN id -u >/tmp/uid && pwd >/tmp/pwd && touch /w/mine
CF
printf 'FROM busybox\nRUN echo about to fail && exit 3\n' >ctx/Containerfile.fail
# The host's setcap and the libraries it loads, bound into one step to give a file
# capabilities (the busybox base has no setcap); never part of the image.
(cd ctx && bash "$KILN_SRCDIR/testdata/diff-run/28-file-caps/setup.sh") ||
        t_bail "could not copy setcap into the context"
printf 'hidden\n' >ctx/data/hidden.txt
printf 'data/hidden.txt\n' >ctx/.dockerignore
cat >ctx/Containerfile.cache <<'CF'
FROM busybox
RUN --mount=type=bind,source=data,target=/src ls /src >/listed && cat /src/in.txt >/content
RUN echo second >/second
CF

# run_case LABEL AS...: builds ctx as AS (a command prefix), exports, and checks.
run_case()
{
        local label=$1 root=$2 out=$3
        shift 3
        local -a as=("$@")

        t_ok "$label: the busybox base builds" "${as[@]}" env KILN_ROOT="$root" \
                bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
        t_ok "$label: the build runs every RUN" "${as[@]}" env LC_ALL=C KILN_ROOT="$root" "$KILN" build \
                --secret "id=tok,src=$T_TMP/secret.txt" -t runs ctx
        t_grep "$label: RUN output streams through kiln" '^env: A=argval E=envval PATH=/usr/local/sbin:' "$T_OUT"
        t_ok "$label: export" "${as[@]}" env KILN_ROOT="$root" "$KILN" push runs "oci:$out:runs"
        if ! command -v umoci >/dev/null; then
                t_skip "$label: the image's tree" "umoci is not installed"
                return
        fi
        rm -rf "$out.un"
        t_ok "$label: umoci unpacks it" umoci unpack --image "$out:runs" "$out.un"
        local r=$out.un/rootfs
        t_eq "$label: exec form" "$(cat "$r/exec.txt")" "exec form envval"
        t_eq "$label: a lone heredoc is the shell's script" "$(cat "$r/heredoc.txt")" "heredoc body envval"
        t_eq "$label: a heredoc with a shebang runs as a file" "$(cat "$r/shebang.txt")" "shebang /dev/pipes/EOF"
        t_eq "$label: heredocs in a longer command" "$(cat "$r/one.txt") $(cat "$r/two.txt")" "first second"
        t_eq "$label: --network=none has only lo" "$(cat "$r/net.txt")" "lo"
        t_eq "$label: the cache mount held what the step wrote" "$(cat "$r/cache.count")" "1"
        t_eq "$label: the tmpfs mount was there" "$(cat "$r/tmpfs.txt")" "x"
        t_eq "$label: the bind mount shows the context" "$(cat "$r/bind.txt")" "from the context"
        t_eq "$label: the bind mount hides what .dockerignore excludes" "$(cat "$r/bind.list")" "in.txt"
        t_eq "$label: the secret has the mode and owner asked for" "$(cat "$r/secret.stat")" "440 1000"
        t_ok "$label: no mount point is left in the image" \
                bash -c "! ls -d '$r/var/cache/k' '$r/scratch' '$r/src' '$r/run/secrets' '$r/dev/pipes' 2>/dev/null | grep ."
        t_ok "$label: no file of the sandbox is left in the image" \
                bash -c "! ls -d '$r/etc/hosts' '$r/etc/resolv.conf' '$r/etc/hostname' 2>/dev/null | grep ."
        local b
        for b in "$out"/blobs/sha256/*; do
                gzip -dc <"$b" 2>/dev/null || cat "$b"
        done >"$out.all"
        t_ok "$label: the secret is in no blob" bash -c "! grep -qa 'top secret' '$out.all'"
        t_eq "$label: the hostname is not the host's" "$(grep -cx "$(hostname)" "$r/hostname.seen")" 0
        t_eq "$label: a changed file" "$(cat "$r/t/file")" "a
changed"
        t_eq "$label: chmod" "$(stat -c %a "$r/t/file")" 600
        t_eq "$label: chown to 0, 1000, 65534" \
                "$(stat -c %u:%g "$r/t/u0" "$r/t/u1000" "$r/t/u65534" | paste -sd' ')" \
                "0:0 1000:1000 65534:65534"
        t_eq "$label: a hard link" "$(stat -c %i "$r/t/file")" "$(stat -c %i "$r/t/hardlink")"
        t_eq "$label: a setuid bit" "$(stat -c %a "$r/t/suid")" 4755
        t_eq "$label: file capabilities" "$(getcap "$r/t/capped" | sed 's/.* //')" \
                "cap_chown,cap_net_raw=ep"
        t_ok "$label: the tools the step bound are not in the image" test ! -e "$r/tools"
        t_ok "$label: a deleted directory is gone" test ! -e "$r/t/gone"
        t_eq "$label: a replaced directory holds only the new" "$(ls "$r/t/replace")" "new"
        t_eq "$label: names that are UTF-8 and names that are not, whatever the locale" \
                "$(cd "$r/names" && ls | od -An -c | tr -s ' \n' ' ')" \
                " c a f 303 251 \\n r a w 377 \\n "
        t_eq "$label: USER runs the step" "$(cat "$r/tmp/uid")" 1000
        t_eq "$label: WORKDIR is the step's directory" "$(cat "$r/tmp/pwd")" /w
        t_eq "$label: USER owns what it makes" "$(stat -c %u "$r/w/mine")" 1000
        t_ok "$label: the config" "${as[@]}" env KILN_ROOT="$root" "$KILN" inspect runs
        t_nogrep "$label: the secret is not in the history" 'top secret' "$T_OUT"
        t_grep "$label: the history names the RUN" '/bin/sh -c echo \\"env: A=\$A' "$T_OUT"

        # The step cache and RUN: a bind-mounted file and the build's options are inputs.
        local -a k=("${as[@]}" env KILN_ROOT="$root" "$KILN" build -f ctx/Containerfile.cache)
        t_ok "$label: cache: first build" "${k[@]}" -t cached ctx
        t_ok "$label: cache: an unchanged rebuild" "${k[@]}" -t cached ctx
        t_eq "$label: cache: both RUNs hit" "$(grep -c '^--> Using cache' "$T_OUT")" 2
        printf 'changed\n' >ctx/data/in.txt
        t_ok "$label: cache: the bind-mounted file changed" "${k[@]}" -t cached ctx
        t_eq "$label: cache: that RUN and the next run again" "$(grep -c '^--> Using cache' "$T_OUT")" 0
        printf 'hidden, changed\n' >ctx/data/hidden.txt
        t_ok "$label: cache: an ignored file changed" "${k[@]}" -t cached ctx
        t_eq "$label: cache: nothing runs again" "$(grep -c '^--> Using cache' "$T_OUT")" 2
        t_ok "$label: cache: --network none" "${k[@]}" --network none -t cached ctx
        t_eq "$label: cache: another network runs the steps again" "$(grep -c '^--> Using cache' "$T_OUT")" 0
        printf 'from the context\n' >ctx/data/in.txt

        t_fails "$label: a failing RUN fails the build" 1 "${as[@]}" env KILN_ROOT="$root" \
                "$KILN" build -f ctx/Containerfile.fail ctx
        t_grep "$label: the error names the step and its status" \
                'kiln: error: .*Containerfile.fail:2:1: building at STEP "RUN echo about to fail && exit 3": exit status 3' "$T_ERR"
        t_grep "$label: the step's output came first" '^about to fail' "$T_OUT"
        t_eq "$label: nothing is left in tmp/" "$(ls -A "$root/tmp" 2>/dev/null)" ""
}

if [ "$(id -u)" = 0 ]; then
        run_case root "$T_TMP/store-root" "$T_TMP/out-root" env
else
        t_skip "root" "not running as root"
fi

if t_rootless_users && runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest out-kilntest
        chown kilntest: home-kilntest out-kilntest secret.txt
        chmod -R a+rX ctx
        run_case rootless "$T_TMP/home-kilntest/store" "$T_TMP/out-kilntest/oci" \
                runuser -u kilntest -- env HOME="$T_TMP/home-kilntest"
else
        t_skip "rootless" "${T_SKIP_REASON:-kilntest cannot run $KILN}"
fi
t_done
