#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The step cache: every input that must invalidate a step does, none that must not, and a
# warm rebuild reads no file of the context. Hits are read from kiln's own output ("-->
# Using cache KEY" after a step), results from the image ids and diff_ids.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"

# hits FILE: a letter per step after each FROM, in order: H when the step was a cache hit, M
# when it was built, - for an ARG (never a step of its own), ! for an ARG that claims a hit.
hits()
{
        awk '
        /^(\[[0-9]+\/[0-9]+\] )?STEP [0-9]+\/[0-9]+: / {
                out = out cur
                if ($0 ~ /STEP 1\//) cur = ""
                else if ($0 ~ /STEP [0-9]+\/[0-9]+: ARG /) cur = "-"
                else cur = "M"
                next
        }
        /^--> Using cache [0-9a-f]+$/ && length($4) == 64 {
                cur = cur == "-" ? "!" : "H"
        }
        END { print out cur }' "$1"
}

# build NAME WANT ARGS...: builds with ARGS (--log-level debug), checks that the steps hit as
# WANT says, and leaves the image id in $id.
id=
build()
{
        local name=$1 want=$2 got

        shift 2
        t_run "$KILN" --log-level debug build "$@"
        got=$(hits "$T_OUT")
        if [ "$T_RC" -ne 0 ]; then
                t_fail "$name"
                t_report_run "$KILN" build "$@"
                id=
                return
        fi
        id=$(tail -1 "$T_OUT")
        t_eq "$name" "$got" "$want"
        [ "$got" = "$want" ] || t_diag_file stderr "$T_ERR"
}

diff_ids() { "$KILN" inspect "$1" | jq -c '[.Layers[].DiffID]'; }

# ---- the fixture ----

mkdir -p base ctx/app
printf 'base one\n' >base/base.txt
printf 'FROM scratch\nCOPY base.txt /\n' >base/Containerfile
printf 'int main(void) { return 0; }\n' >ctx/app/main.c
printf 'int util;\n' >ctx/app/util.c
printf 'noise\n' >ctx/app/debug.log
printf 'conf\n' >ctx/conf.txt
printf 'app/*.log\n' >ctx/.containerignore
cat >ctx/Containerfile <<'CF'
FROM base
ARG V=1
ARG UNUSED=x
ARG OWNER=0
COPY app/ /app/
COPY --chown=${OWNER} conf.txt /etc/conf.txt
LABEL v=${V}
ENV E=1
CF
# The stat cache trusts only files whose last change is older than a tick of the file
# system's clock when they are read: a change within that tick would leave every stamp as
# it was. A second is plenty.
sleep 1

t_ok "the base image builds" "$KILN" build -q -t base base
build "a cold build runs every step" "---MMMM" -t app ctx
id0=$id
layers0=$(diff_ids app)

# ---- what must not invalidate ----

build "an unchanged rebuild hits every step" "---HHHH" -t app ctx
t_eq "... and gives the same image id, created time included" "$id" "$id0"
t_grep "a hit names its cache entry with the full key" '^--> Using cache [0-9a-f]{64}$' "$T_OUT"

# A warm rebuild opens no file of the context for reading (O_PATH lookups read nothing):
# only the Containerfile and the ignore file.
if command -v strace >/dev/null; then
        opens_of_context()
        {
                local f

                for f in main.c util.c conf.txt; do
                        grep -E 'open(at2?)?\(' "$1" | grep -v 'O_PATH' | grep -F "$f\"" | head -1
                done
        }
        # LeakSanitizer cannot run under ptrace; an ASan build is traced without it.
        export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
        t_ok "a warm rebuild under strace" strace -f -qq \
                -e trace=open,openat,openat2,rename,renameat,renameat2,newfstatat,statx,stat,lstat \
                -o trace.warm "$KILN" build -t app ctx
        t_eq "... hits every step" "$(hits "$T_OUT")" "---HHHH"
        t_eq "... and looks each layer up once, not once per step" \
                "$(grep -o '[0-9a-f]\{64\}/layer.json' trace.warm | sort | uniq -d)" ""
        t_eq "... and opens no context file for reading" "$(opens_of_context trace.warm)" ""
        t_eq "... and writes nothing into the store (no file is renamed into place)" \
                "$(grep -c 'rename' trace.warm)" 0
        touch ctx/app/main.c
        t_ok "a rebuild after touching a file, under strace" strace -f -qq \
                -e trace=open,openat,openat2 -o trace.touch "$KILN" build -t app ctx
        t_eq "... hits every step: mtime is not an input" "$(hits "$T_OUT")" "---HHHH"
        t_contains "... having read the touched file again (its stamps changed)" 'main.c"' \
                <(opens_of_context trace.touch)
        t_eq "... and no other" "$(opens_of_context trace.touch | grep -c -v 'main.c"')" 0
        export ASAN_OPTIONS=${ASAN_OPTIONS%detect_leaks=0}
else
        t_skip "a warm rebuild opens no context file" "strace is not installed"
        touch ctx/app/main.c
fi
build "touching a file hits" "---HHHH" -t app ctx
t_eq "... with the same image id" "$id" "$id0"

build "an unrelated build arg hits" "---HHHH" --build-arg UNUSED=y --build-arg NOPE=1 -t app ctx
printf 'more noise\n' >>ctx/app/debug.log
build "a change to an ignored file hits" "---HHHH" -t app ctx
t_eq "... with the same image id" "$id" "$id0"

# ---- what must invalidate ----

build "a build arg used by a later step invalidates from that step" "---HHMM" \
        --build-arg V=2 -t app ctx
t_contains "... and --log-level debug says what changed" \
        "step cache: LABEL v=\${V}: '1' is now '2' after expansion" "$T_ERR"
t_contains "... and why the step after it missed" "step cache: ENV E=1: a step before it changed" \
        "$T_ERR"
t_eq "... the label is the new one" "$("$KILN" inspect app | jq -r '.Config.config.Labels.v')" 2
build "the old value hits its old entries again" "---HHHH" -t app ctx
t_eq "... with the first image id" "$id" "$id0"

build "a --chown change invalidates that COPY" "---HMMM" --build-arg OWNER=1 -t app ctx
layers1=$(diff_ids app)
t_eq "... whose layer, and only it, differs" "$(jq -nc --argjson a "$layers0" --argjson b "$layers1" \
        '[range(0; $a | length) | select($a[.] != $b[.])]')" "[2]"

sed -i 's/LABEL v=/LABEL w=/' ctx/Containerfile
build "an edited instruction invalidates it and what follows" "---HHMM" -t app ctx
t_contains "... and the debug log says the instruction is new there" \
        "step cache: LABEL w=\${V}: no build ran this instruction after the same steps" "$T_ERR"
sed -i 's/LABEL w=/LABEL v=/' ctx/Containerfile

printf 'int main(void) { return 1; }\n' >ctx/app/main.c
build "a file's content invalidates the COPY" "---MMMM" -t app ctx
t_contains "... naming the file at --log-level debug" "step cache: COPY app/ /app/: app/main.c changed" \
        "$T_ERR"
if [ "$(diff_ids app | jq -r '.[1]')" != "$(echo "$layers0" | jq -r '.[1]')" ]; then
        t_pass "... whose layer has a new diff_id"
else
        t_fail "... whose layer has a new diff_id"
fi
printf 'int main(void) { return 0; }\n' >ctx/app/main.c
build "putting the content back hits the first build's entries" "---HHHH" -t app ctx
t_eq "... with its image id" "$id" "$id0"

# Same size, mtime put back: only the ctime says the file changed.
m=$(stat -c %y ctx/app/main.c)
printf 'int main(void) { return 7; }\n' >ctx/app/main.c
touch -d "$m" ctx/app/main.c
build "a same-size rewrite with its mtime put back invalidates" "---MMMM" -t app ctx
printf 'int main(void) { return 0; }\n' >ctx/app/main.c
build "... and putting it back hits" "---HHHH" -t app ctx

chmod 0755 ctx/app/util.c
build "a file's mode invalidates" "---MMMM" -t app ctx
t_contains "... naming it" "step cache: COPY app/ /app/: app/util.c changed" "$T_ERR"
chmod 0644 ctx/app/util.c

printf 'new\n' >ctx/app/new.c
build "an added file invalidates" "---MMMM" -t app ctx
t_contains "... naming it" "step cache: COPY app/ /app/: app/new.c added" "$T_ERR"
rm ctx/app/new.c
build "... removing it again hits" "---HHHH" -t app ctx
rm ctx/app/util.c
build "a removed file invalidates" "---MMMM" -t app ctx
t_contains "... naming it" "step cache: COPY app/ /app/: app/util.c removed" "$T_ERR"
printf 'int util;\n' >ctx/app/util.c

printf '\n' >ctx/.containerignore
build "an ignore file that selects more files invalidates" "---MMMM" -t app ctx
t_contains "... naming what it let in" "step cache: COPY app/ /app/: app/debug.log added" "$T_ERR"
printf 'app/*.log\n' >ctx/.containerignore

build "back to the first context" "---HHHH" -t app ctx
t_eq "... the first image id again" "$id" "$id0"

printf 'base two\n' >base/base.txt
t_ok "the base image is rebuilt with other content" "$KILN" build -q -t base base
build "a new base image invalidates every step" "---MMMM" -t app ctx
t_eq "... with the new base's layer under the rest" "$(diff_ids app | jq -r '.[0]')" \
        "$(diff_ids base | jq -r '.[0]')"
printf 'base one\n' >base/base.txt
t_ok "the first base image comes back" "$KILN" build -q -t base base
build "... and so do the first build's entries" "---HHHH" -t app ctx
t_eq "... and image id" "$id" "$id0"

# ---- --timestamp ----

build "--timestamp is an input of every step" "---MMMM" --timestamp 0 -t ts ctx
ts0=$id
build "... a rebuild with the same one hits" "---HHHH" --timestamp 0 -t ts ctx
t_eq "... with the same id" "$id" "$ts0"
build "... another one does not" "---MMMM" --timestamp 1 -t ts ctx

# ---- --no-cache and --layers=false ----

build "--no-cache looks nothing up" "---MMMM" --no-cache -t app ctx
t_contains "... and says so at --log-level debug" "step cache: COPY app/ /app/: --no-cache" "$T_ERR"
nocache=$id
if [ "$nocache" != "$id0" ]; then
        t_pass "... giving a new image (a new created time)"
else
        t_fail "... giving a new image (a new created time)"
fi
build "... but records what it built, for the next build" "---HHHH" -t app ctx
t_eq "... whose image is the --no-cache one" "$id" "$nocache"

entries() { find "$KILN_ROOT/cache" -type f | sort | md5sum; }
before=$(entries)
build "--layers=false uses no cache" "---MMMM" --layers=false -t nolayers ctx
t_eq "... and writes none" "$(entries)" "$before"
build "--layers=true is the default" "---HHHH" --layers=true -t app ctx
build "--layers without a value is true" "---HHHH" --layers -t app ctx
t_fails "--layers=maybe is a usage error" 2 "$KILN" build --layers=maybe ctx
t_contains "... naming it" "--layers 'maybe' is not true or false" "$T_ERR"

# ---- multi-stage: COPY --from ----

mkdir -p ms
printf 'one\n' >ms/built.txt
cat >ms/Containerfile <<'CF'
FROM scratch AS build
COPY built.txt /out/
FROM base
COPY --from=build /out/ /from-build/
LABEL stage=final
CF
sleep 1
build "a two-stage build, cold" "MMM" -t ms ms
build "... warm" "HHH" -t ms ms
ms0=$id
printf 'two\n' >ms/built.txt
build "a change in the stage copied from invalidates the COPY --from" "MMM" -t ms ms
printf 'one\n' >ms/built.txt
build "... and back" "HHH" -t ms ms
t_eq "... same image" "$id" "$ms0"

# ---- ADD of a URL ----

mkdir -p www url
printf 'downloaded\n' >www/data.txt
python3 -m http.server 0 --bind 127.0.0.1 --directory www >http.log 2>&1 &
http_pid=$!
port=
for _ in $(seq 50); do
        port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' http.log | head -1)
        [ -n "$port" ] && break
        sleep 0.1
done
if [ -n "$port" ]; then
        sum=sha256:$(sha256sum www/data.txt | cut -d' ' -f1)
        printf 'FROM scratch\nADD http://127.0.0.1:%s/data.txt /d/\n' "$port" >url/Containerfile
        printf 'FROM scratch\nADD --checksum=%s http://127.0.0.1:%s/data.txt /d/\n' "$sum" \
                "$port" >url/Containerfile.sum
        gets() { grep -c 'GET /data.txt' http.log; }
        build "ADD of a URL, cold" "M" -t url url
        build "... is downloaded again and hits when the content is the same" "H" -t url url
        t_eq "... (two downloads)" "$(gets)" 2
        printf 'changed\n' >www/data.txt
        build "... and misses when it changed" "M" -t url url
        printf 'downloaded\n' >www/data.txt
        build "ADD --checksum, cold" "M" -f url/Containerfile.sum -t urlsum url
        n=$(gets)
        build "... hits" "H" -f url/Containerfile.sum -t urlsum url
        t_eq "... without downloading: the checksum names the content" "$(gets)" "$n"
else
        t_skip "ADD of a URL" "the http server did not start"
fi
kill "$http_pid" 2>/dev/null
wait "$http_pid" 2>/dev/null

# ---- the GC ----

# rmi removes the image's layers at once and leaves its cache entries to prune: until then
# they name layers that are gone, which is a miss.
t_ok "rmi an image built with the cache" "$KILN" rmi ts
t_run "$KILN" --log-level debug build --timestamp 1 -t ts ctx
t_eq "its entries miss now, and the build succeeds" "$T_RC:$(hits "$T_OUT" | cut -c1-4)" "0:---M"
t_contains "... as their layers are gone" "is a miss: a layer of it is gone" "$T_ERR"
t_ok "... and the image is whole" "$KILN" push ts "oci:$T_TMP/out:ts"
t_oci_layout_valid "... and valid" "$T_TMP/out"

t_ok "prune while the image is tagged" "$KILN" prune
build "... keeps its cache" "---HHHH" -t app ctx
last=$id
t_ok "remove every image built from ctx" "$KILN" rmi app nolayers ts
t_ok "prune" "$KILN" prune
t_eq "prune left no entry naming the image" \
        "$(grep -l "$last" -r "$KILN_ROOT/cache" 2>/dev/null | wc -l)" 0
build "a build after prune misses, and succeeds" "---MMMM" -t app ctx
build "... and caches again" "---HHHH" -t app ctx

# An entry whose layer is gone (removed behind kiln's back): a miss, never an error. The
# layer built again differs (the directory COPY makes has the time it was made), so what
# follows misses too, and the image must not be the old one.
chain=$("$KILN" inspect app | jq -r '.Layers[1].ChainID')
rm -rf "$KILN_ROOT/layers/${chain#sha256:}"
t_run "$KILN" --log-level debug build -t app ctx
t_eq "a step whose layer was removed misses, and the build succeeds" "$T_RC:$(hits "$T_OUT" | cut -c1-4)" \
        "0:---M"
t_contains "... saying so at --log-level debug" "COPY app/ /app/: its cached result is gone" "$T_ERR"
t_ok "... the image is whole" "$KILN" push app "oci:$T_TMP/out:app"
t_oci_layout_valid "... and valid" "$T_TMP/out"
# With --timestamp the layer built again is the same one, so the later entries hold.
build "with --timestamp, cold" "---MMMM" --timestamp 0 -t tsapp ctx
chain=$("$KILN" inspect tsapp | jq -r '.Layers[1].ChainID')
rm -rf "$KILN_ROOT/layers/${chain#sha256:}"
build "... the step whose layer was removed misses, the later ones hit" "---MHHH" --timestamp 0 \
        -t tsapp ctx
t_ok "... its layer is back" test -f "$KILN_ROOT/layers/${chain#sha256:}/layer.json"
t_ok "... and the image is whole" "$KILN" push tsapp "oci:$T_TMP/out:tsapp"
t_oci_layout_valid "... and valid" "$T_TMP/out"

# ---- concurrent builds share the cache ----

mkdir -p par
for i in 1 2 3 4; do
        mkdir -p "par/c$i/app"
        cp ctx/app/*.c "par/c$i/app/"
        printf 'c%s\n' "$i" >"par/c$i/conf.txt"
        cp ctx/Containerfile ctx/.containerignore "par/c$i/"
done
pids=()
for i in 1 2 3 4; do
        "$KILN" build -t "par$i" "par/c$i" >"par/out$i" 2>&1 &
        pids+=($!)
        "$KILN" build -t app ctx >"par/warm$i" 2>&1 &
        pids+=($!)
done
failed=0
for p in "${pids[@]}"; do
        wait "$p" || failed=$((failed + 1))
done
t_eq "eight concurrent builds sharing the cache all succeed" "$failed" 0
t_eq "... the warm ones all hit" "$(for i in 1 2 3 4; do hits "par/warm$i"; done | sort -u)" "---HHHH"
bad=0
while IFS= read -r f; do
        case $f in
        *.inputs) head -c 15 "$f" | grep -q '^kiln-inputs-v1 ' || bad=$((bad + 1)) ;;
        *) jq -e .version "$f" >/dev/null 2>&1 || bad=$((bad + 1)) ;;
        esac
done < <(find "$KILN_ROOT/cache" -type f)
t_eq "... and every cache file is whole" "$bad" 0
for i in 1 2 3 4; do
        build "par$i rebuilt alone hits" "---HHHH" -t "par$i" "par/c$i"
done
t_eq "no temp file is left" "$(find "$KILN_ROOT/tmp" -mindepth 1 | wc -l)" 0

t_done
