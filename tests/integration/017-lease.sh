#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The store lease: a build in flight holds root/gc.lock shared, so a concurrent kiln prune
# waits (saying so) instead of removing the layer the build has committed but not named,
# and kiln rmi removes the name at once but leaves the content for a later prune. The build
# is held at a known point by an ADD from a server of our own that stalls mid-body.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"
mkdir -p www ctx victim
ROOT=$(realpath -m "$KILN_ROOT")

cat >server.py <<'PY'
import http.server, os, sys, time

d = sys.argv[1]

class Stall(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"slow download\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:4])
        self.wfile.flush()
        open(os.path.join(d, "started"), "w").close()
        for _ in range(400):
            if os.path.exists(os.path.join(d, "release")):
                break
            time.sleep(0.05)
        self.wfile.write(body[4:])

    def log_message(self, *args):
        pass

srv = http.server.HTTPServer(("127.0.0.1", 0), Stall)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
srv.serve_forever()
PY
python3 server.py "$T_TMP/www" >server.log 2>&1 &
server_pid=$!
for _ in $(seq 100); do
        [ -s www/port ] && break
        sleep 0.05
done
[ -s www/port ] || t_bail "the stalling server did not start"
port=$(cat www/port)

# wait_file FILE [PATTERN]: up to 20 s for FILE to exist (and contain PATTERN).
wait_file()
{
        for _ in $(seq 400); do
                if [ -e "$1" ] && { [ $# -lt 2 ] || grep -q -e "$2" "$1"; }; then
                        return 0
                fi
                sleep 0.05
        done
        return 1
}

count() { ls -A "$1" 2>/dev/null | wc -l; }

# An image to remove while the build runs.
printf 'victim\n' >victim/v.txt
printf 'FROM scratch\nCOPY v.txt /v.txt\n' >victim/Containerfile
t_ok "an image to remove builds" "$KILN" build -q -t victim victim
victim=sha256:$(tail -1 "$T_OUT")
t_ok "kiln push victim (its compressed blob too)" "$KILN" push victim "oci:$T_TMP/victim-oci:v1"
t_oci_layout_valid "... to a layout that follows the image-spec" "$T_TMP/victim-oci"

printf 'alpha\n' >ctx/a.txt
printf 'FROM scratch\nCOPY a.txt /a.txt\nADD http://127.0.0.1:%s/slow.txt /slow.txt\n' "$port" \
        >ctx/Containerfile
layers_before=$(count "$ROOT/layers")

"$KILN" build -t leased ctx >build.out 2>build.err &
build_pid=$!
t_ok "the build reaches its ADD (COPY committed, image not named)" wait_file www/started
t_eq "the COPY layer is in the store" "$(count "$ROOT/layers")" "$((layers_before + 1))"

# The lease, as the kernel sees it: a shared flock on gc.lock, from an fd closed on exec.
ino=$(stat -c %i "$ROOT/gc.lock" 2>/dev/null)
t_grep "the build holds a shared flock on gc.lock" \
        "FLOCK +ADVISORY +READ +$build_pid +[0-9a-f]+:[0-9a-f]+:$ino " /proc/locks
lease_fd=
for fd in /proc/"$build_pid"/fd/*; do
        [ "$(readlink "$fd")" = "$ROOT/gc.lock" ] && lease_fd=${fd##*/}
done
t_ok "the build has gc.lock open" test -n "$lease_fd"
flags=$(awk '/^flags:/ {print $2}' "/proc/$build_pid/fdinfo/$lease_fd" 2>/dev/null)
t_ok "its fd is O_CLOEXEC (flags $flags)" test $((0${flags:-0} & 02000000)) -ne 0

# rmi: the name goes at once, the content stays while the lease is held.
t_ok "kiln rmi during the build" "$KILN" --log-level debug rmi victim
t_grep "rmi deletes the image" "^Deleted: ${victim#sha256:}$" "$T_OUT"
t_contains "rmi says at debug level that the content is left for prune" \
        "left for 'kiln prune'" "$T_ERR"
t_ok "kiln images" "$KILN" images
t_nogrep "the name is gone" "victim" "$T_OUT"
t_ok "the victim's config blob is still there" test -f "$ROOT/blobs/sha256/${victim#sha256:}"

# prune waits for the build.
"$KILN" prune >prune.out 2>prune.err &
prune_pid=$!
t_ok "prune says it waits" wait_file prune.err "waiting for other kiln processes"
t_contains "with one line on stderr" \
        "kiln: prune: waiting for other kiln processes using the store to finish" prune.err
t_eq "only that line" "$(wc -l <prune.err)" "1"
sleep 1
t_ok "prune is still waiting a second later" kill -0 "$prune_pid"
t_eq "the build's unnamed COPY layer is still there" "$(count "$ROOT/layers")" \
        "$((layers_before + 1))"
t_ok "the victim's config blob is still there" test -f "$ROOT/blobs/sha256/${victim#sha256:}"

# Let the download finish: the build completes, then prune runs.
touch www/release
wait "$build_pid"
t_eq "the build succeeds" "$?" "0"
t_grep "and names its image" "^Successfully tagged localhost/leased:latest$" build.out
wait "$prune_pid"
t_eq "prune succeeds after the build" "$?" "0"
t_ok "prune collected what rmi left" test ! -e "$ROOT/blobs/sha256/${victim#sha256:}"
t_eq "the victim's layer is gone too" "$(count "$ROOT/layers")" "$((layers_before + 1))"

t_ok "the built image exports" "$KILN" push leased "oci:$T_TMP/leased-oci:v1"
t_oci_layout_valid "... to a layout that follows the image-spec" "$T_TMP/leased-oci"
t_ok "skopeo reads it" skopeo inspect "oci:$T_TMP/leased-oci:v1"
t_eq "two layers" "$(jq '.Layers | length' "$T_OUT")" "2"
t_ok "umoci unpacks it" umoci unpack --rootless --image "$T_TMP/leased-oci:v1" bundle
t_eq "the COPY is complete" "$(cat bundle/rootfs/a.txt)" "alpha"
t_eq "the ADD is complete" "$(cat bundle/rootfs/slow.txt)" "slow download"

# Without a lease held, rmi collects at once and prune neither waits nor says anything.
t_ok "rebuild the victim" "$KILN" build -q -t victim victim
t_ok "kiln rmi with no build running" "$KILN" rmi victim
t_ok "the content goes with the name" test ! -e "$ROOT/blobs/sha256/${victim#sha256:}"
t_ok "kiln prune with no build running" "$KILN" prune
t_eq "says nothing" "$(cat "$T_ERR")" ""
t_ok "the built image still exports" "$KILN" push leased "oci-archive:$T_TMP/leased.tar"
t_oci_archive_valid "... to an archive that follows the image-spec" "$T_TMP/leased.tar"

kill "$server_pid"
wait "$server_pid" 2>/dev/null
t_done
