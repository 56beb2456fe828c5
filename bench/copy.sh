#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/copy.sh — a cold `COPY . /data/` of a large build context, kiln against buildah.
#
# Generates a deterministic context (FILES files in nested directories totalling SIZE_MB,
# mixed sizes, some compressible text and some random bytes), then builds
#
#     FROM scratch
#     COPY . /data/
#
# with kiln and with `buildah bud --layers`, alternating, RUNS times each, every run into an
# empty store. Prints each run, the medians, the ratio buildah/kiln, kiln's peak RSS
# (/usr/bin/time -v, "Maximum resident set size") and PASS/FAIL lines against the targets:
# kiln at least 2x faster than buildah, kiln's peak RSS under 100 MB. For reference it also
# times the stat floor (`find CONTEXT -printf ''`) and a plain `cp -a` of the context.
#
# This is a measurement, not a test: a missed target prints FAIL and still exits 0. The
# exit status is non-zero only when something errored (a build failed, a tool is missing).
#
# Environment:
#   KILN=PATH        kiln binary (default: build/release/cmd/kiln, built when missing)
#   BUILDAH=PATH     buildah binary (default: buildah)
#   RUNS=N           timed runs of each builder (default 3)
#   FILES=N          files in the context (default 20000)
#   SIZE_MB=N        total size of the context in MB (default 300)
#   SEED=N           generator seed (default 1)
#   STORAGE_DRIVER=overlay|vfs   buildah's storage driver (default: overlay, vfs when the
#                    kernel refuses overlay)
#   BENCH_TMP=DIR    where the context and the stores go (default: $TMPDIR or /tmp); the
#                    directory the script creates there is removed at the end
#   BENCH_FS=ext4    (root only) put the context and the stores on a fresh ext4 file system
#                    with the default mkfs options, loop-mounted from a sparse file in that
#                    directory, so that neither builder pays for the state of a shared disk
#                    (see "File system" below); BENCH_FS=tmpfs measures without the disk
#   KEEP=1           keep that directory (not with BENCH_FS)
#   SETTLE=N         seconds to wait after each build (default 0)
#   BENCH_USER=NAME  (root only) the user both builders run as, rootless; created with
#                    subordinate id ranges (/etc/subuid, /etc/subgid) when missing
#                    (default: kilnbench); BENCH_USER=root runs both as root
#
# Both builders run as the same user: rootless by default, as users run them (the issue's
# reference number is rootless buildah). Started by a non-root user, the script runs both
# as that user, who needs subordinate id ranges. Page cache: dropping caches needs root and is
# not something to rely on, so one untimed warm-up build of each builder runs first; the
# timed runs then read a context that is in the page cache, for both builders alike.
#
# File system: every store stays until the end, since creating files right after tens of
# thousands were deleted can be slow: ext4 without a journal skips inodes freed in the last
# minute when it allocates new ones (recently_deleted() in fs/ext4/ialloc.c), and a run
# that follows the removal of the previous run's store then spends most of its time there.
# Deletions by anything else on the same file system (buildah removes its working container,
# 20 000 files, at the end of every build; other jobs clean up after themselves) land there
# too, and on a shared machine they make the numbers depend on the neighbours. The script
# warns when it runs on such a file system. A fresh file system (BENCH_FS=ext4, journaled as
# mkfs.ext4 makes it by default, so recently_deleted() never runs) avoids all of this.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD

RUNS=${RUNS:-3}
FILES=${FILES:-20000}
SIZE_MB=${SIZE_MB:-300}
SEED=${SEED:-1}
BUILDAH=${BUILDAH:-buildah}
KEEP=${KEEP:-0}

die() { echo "bench/copy.sh: error: $*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
[[ $FILES =~ ^[1-9][0-9]*$ ]] || die "FILES must be a positive integer"
[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "SIZE_MB must be a positive integer"
command -v python3 >/dev/null || die "python3 is needed to generate the context"
command -v "$BUILDAH" >/dev/null || die "$BUILDAH not found (apt-get install buildah)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"

# ---- who builds ----
if [ "$(id -u)" = 0 ]; then
        BENCH_USER=${BENCH_USER:-kilnbench}
else
        BENCH_USER=$(id -un)
fi
as_user=()
bud_env=()
if [ "$BENCH_USER" != root ] && [ "$(id -u)" = 0 ]; then
        command -v runuser >/dev/null || die "runuser not found"
        command -v newuidmap >/dev/null || die "newuidmap not found (apt-get install uidmap)"
        id -u "$BENCH_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$BENCH_USER" ||
                die "could not create the user $BENCH_USER"
        for f in /etc/subuid /etc/subgid; do
                grep -q "^$BENCH_USER:" "$f" 2>/dev/null ||
                        echo "$BENCH_USER:1000000:65536" >>"$f" || die "could not add $f ranges"
        done
        bench_home=$(getent passwd "$BENCH_USER" | cut -d: -f6)
        as_user=(runuser -u "$BENCH_USER" -- env "HOME=$bench_home")
elif [ "$(id -u)" != 0 ]; then
        grep -q "^$BENCH_USER:" /etc/subuid 2>/dev/null ||
                echo "bench/copy.sh: warning: $BENCH_USER has no range in /etc/subuid" >&2
fi

# ---- kiln ----
if [ -z "${KILN:-}" ]; then
        KILN=$repo/build/release/cmd/kiln
        if [ ! -f build/release/build.ninja ]; then
                echo "+ meson setup build/release --buildtype=release"
                meson setup build/release --buildtype=release >/dev/null
        fi
        echo "+ ninja -C build/release"
        ninja -C build/release >/dev/null
fi
[ -x "$KILN" ] || die "kiln binary $KILN is not executable"
KILN=$(realpath "$KILN")

# ---- work directory ----
BENCH_FS=${BENCH_FS:-}
case $BENCH_FS in
"" | ext4 | tmpfs) ;;
*) die "BENCH_FS must be ext4 or tmpfs" ;;
esac
if [ -n "$BENCH_FS" ]; then
        [ "$(id -u)" = 0 ] || die "BENCH_FS=$BENCH_FS needs root (it mounts a file system)"
        KEEP=0
fi
top=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/kiln-bench-copy.XXXXXX")
work=$top
ctx=$work/context
cleanup_buildah_store() {
        # Overlay may leave mounts behind; unmount anything under the store before removal.
        local dir=$1
        [ -d "$dir" ] || return 0
        "${as_user[@]}" "${bud_env[@]}" "$BUILDAH" --root "$dir/root" --runroot "$dir/run" \
                --storage-driver "${driver:-overlay}" rmi -a -f >/dev/null 2>&1 || true
        awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
                while read -r m; do umount -l "$m" 2>/dev/null || true; done
        rm_store "$dir"
}
cleanup() {
        local rc=$?
        if [ "$KEEP" = 1 ]; then
                echo "kept $work"
        else
                for d in "$work"/buildah-*; do
                        [ -e "$d" ] && cleanup_buildah_store "$d"
                done
                for d in "$work"/kiln-*; do
                        [ -e "$d" ] && rm_store "$d"
                done
                if [ "$work" != "$top" ]; then
                        umount "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
                fi
                rm -rf "$top"
        fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Stores hold files owned by subordinate ids, which only root or the user's own namespace
# can remove.
rm_store() {
        if [ "$(id -u)" = 0 ]; then
                rm -rf "$1"
        else
                "$BUILDAH" unshare rm -rf "$1"
        fi
}

# Room for the context, the cp -a copy, and RUNS + 1 stores of each builder (buildah's
# holds the container's upper directory and the committed layer: twice the context).
fs_mb=$(( (SIZE_MB * (3 * RUNS + 6)) * 13 / 10 + 1024 ))
fs_inodes=$(( FILES * (3 * RUNS + 6) * 3 / 2 + 100000 ))
case $BENCH_FS in
ext4)
        echo "+ a fresh ext4 file system ($fs_mb MB sparse image, $fs_inodes inodes)"
        truncate -s "${fs_mb}M" "$top/fs.img"
        mkfs.ext4 -q -N "$fs_inodes" "$top/fs.img"
        mkdir "$top/mnt"
        mount -o loop "$top/fs.img" "$top/mnt"
        work=$top/mnt
        ;;
tmpfs)
        echo "+ a tmpfs of $fs_mb MB"
        mkdir "$top/mnt"
        mount -t tmpfs -o "size=${fs_mb}m,nr_inodes=$fs_inodes" tmpfs "$top/mnt"
        work=$top/mnt
        ;;
esac
ctx=$work/context

# An ext4 without a journal: see "File system" above.
fs_dev=$(findmnt -n -o SOURCE -T "$work" 2>/dev/null || true)
no_journal=0
if [ "$(findmnt -n -o FSTYPE -T "$work" 2>/dev/null || true)" = ext4 ] &&
        grep -qx '<none>' "/sys/fs/ext4/${fs_dev##*/}/journal_task" 2>/dev/null; then
        no_journal=1
fi
SETTLE=${SETTLE:-0}
[[ $SETTLE =~ ^[0-9]+$ ]] || die "SETTLE must be a number of seconds"
if [ "$no_journal" = 1 ]; then
        echo "+ warning: $work is on an ext4 without a journal, where creating files right" \
                "after many were deleted is slow; BENCH_FS=ext4 gives steadier numbers"
fi

# ---- the context ----
echo "+ generating the context: $FILES files, $SIZE_MB MB, seed $SEED"
python3 - "$ctx" "$FILES" "$SIZE_MB" "$SEED" <<'EOF'
import math, os, random, sys

root, nfiles, size_mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
total = size_mb * 1000 * 1000

# Sizes: log-normal around 4 KiB (many small files, a long tail of large ones), 1% empty,
# scaled so that they add up to the total, none above 16 MB.
raw = [0.0 if rng.random() < 0.01 else rng.lognormvariate(math.log(4096), 1.5)
       for _ in range(nfiles)]
scale = total / sum(raw)
sizes = [min(int(s * scale), 16 << 20) for s in raw]
sizes[rng.randrange(nfiles)] += total - sum(sizes)  # exact total

# Text: a 1 MiB pool of words, each text file a slice of it (compresses about 3x).
syll = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "en", "di", "pa", "qu", "ex", "zy"]
words = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(400)]
pool, n = [], 0
while n < (1 << 20):
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) + "\n"
        pool.append(line)
        n += len(line)
pool = "".join(pool).encode()
pool2 = pool + pool

def text(size):
        out, need = [], size
        while need > 0:
                off = rng.randrange(len(pool))
                take = min(need, len(pool))
                out.append(pool2[off:off + take])
                need -= take
        return b"".join(out)

# Directories: 1 to 4 levels, 6 names a level.
names = ["src", "lib", "assets", "docs", "vendor", "test"]
os.makedirs(root)
made = set()
for i, size in enumerate(sizes):
        depth = rng.randint(1, 4)
        d = os.path.join(root, *[names[rng.randrange(6)] for _ in range(depth)])
        if d not in made:
                os.makedirs(d, exist_ok=True)
                made.add(d)
        if rng.random() < 0.6:
                name, data = "f%05d.txt" % i, text(size)
        else:
                name, data = "f%05d.bin" % i, rng.randbytes(size)
        with open(os.path.join(d, name), "wb") as f:
                f.write(data)
print("  %d files, %d directories, %d bytes" % (nfiles, len(made), sum(sizes)))
EOF
printf 'FROM scratch\nCOPY . /data/\n' >"$work/Containerfile"
# buildah needs cgroupfs and runc here (../shared/DESIGN.md, "The machines here").
printf '[engine]\ncgroup_manager = "cgroupfs"\n' >"$work/containers.conf"
command -v runc >/dev/null && printf 'runtime = "runc"\n' >>"$work/containers.conf"
mkdir -m 0700 "$work/xdg"
if [ ${#as_user[@]} -gt 0 ]; then
        chown -R "$BENCH_USER:" "$work"
        chmod 0755 "$top"
fi
bud_env=(env "CONTAINERS_CONF=$work/containers.conf" "XDG_RUNTIME_DIR=$work/xdg")
sync

# ---- buildah's storage driver ----
driver=${STORAGE_DRIVER:-}
if [ -z "$driver" ]; then
        driver=overlay
        probe=$work/buildah-probe
        mkdir -p "$work/probe-ctx"
        echo probe >"$work/probe-ctx/f"
        [ ${#as_user[@]} -gt 0 ] && chown -R "$BENCH_USER:" "$work/probe-ctx"
        if ! "${as_user[@]}" "${bud_env[@]}" "$BUILDAH" --root "$probe/root" --runroot "$probe/run" \
                --storage-driver overlay bud --layers --isolation chroot -q \
                -f "$work/Containerfile" -t probe "$work/probe-ctx" >"$top/probe.log" 2>&1; then
                echo "  overlay refused (see below), falling back to vfs"
                sed 's/^/    /' "$top/probe.log" | tail -5
                driver=vfs
        fi
        cleanup_buildah_store "$probe"
fi
echo "+ buildah storage driver: $driver; both builders run as $BENCH_USER$([ "$BENCH_USER" = root ] || echo ', rootless')"

# ---- one build ----
# run_one kiln|buildah N|warm: builds into an empty store; appends "SECONDS RSS_KB CPU_SECONDS"
# to $top/NAME.times.
run_one() {
        local who=$1 n=$2 store=$work/$1-$2 t0 t1 rss secs
        local -a cmd
        if [ "$who" = kiln ]; then
                cmd=("$KILN" --root "$store" build -f "$work/Containerfile" -t bench:kiln "$ctx")
        else
                cmd=("${bud_env[@]}" "$BUILDAH" --root "$store/root" --runroot "$store/run"
                     --storage-driver "$driver" bud --layers --isolation chroot
                     -f "$work/Containerfile" -t bench:buildah "$ctx")
        fi
        t0=$(date +%s%N)
        if ! "${as_user[@]}" /usr/bin/time -v -o "$work/time.out" "${cmd[@]}" >"$top/build.log" 2>&1; then
                cat "$top/build.log" >&2
                die "$who build failed: ${cmd[*]}"
        fi
        t1=$(date +%s%N)
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.out")
        cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' \
                "$work/time.out")
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        # The store stays until the end (see "File system" above); only its dirty pages go.
        sync
        sleep "$SETTLE"
        if [ "$n" = warm ]; then
                printf '  %-8s warm-up %8.3f s  cpu %7.2f s  peak RSS %7.1f MB\n' "$who" \
                        "$secs" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
        else
                echo "$secs $rss $cpu" >>"$top/$who.times"
                printf '  %-8s run %-3s %8.3f s  cpu %7.2f s  peak RSS %7.1f MB\n' "$who" "$n" \
                        "$secs" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
        fi
}

# median COLUMN FILE
median() {
        sort -g -k"$1","$1" "$2" | awk -v c="$1" '{ v[NR] = $c }
                END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maxcol() { sort -g -k"$1","$1" "$2" | tail -1 | awk -v c="$1" '{ print $c }'; }

# ---- reference floors ----
echo "+ reference floors (context in page cache)"
find "$ctx" -printf '' # warm the dentry and inode caches
t0=$(date +%s%N); find "$ctx" -printf ''; t1=$(date +%s%N)
stat_floor=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
echo "  find CONTEXT -printf ''  $stat_floor s"
t0=$(date +%s%N); cp -a "$ctx" "$work/cp-copy"; t1=$(date +%s%N)
cp_floor=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
sync
echo "  cp -a CONTEXT DIR        $cp_floor s"

# ---- builds ----
echo "+ warm-up (untimed in the results: it brings the context into the page cache)"
run_one kiln warm
run_one buildah warm
echo "+ $RUNS timed runs each, alternating, every one into an empty store"
: >"$top/kiln.times"
: >"$top/buildah.times"
for ((i = 1; i <= RUNS; i++)); do
        run_one kiln "$i"
        run_one buildah "$i"
done

kiln_med=$(median 1 "$top/kiln.times")
buildah_med=$(median 1 "$top/buildah.times")
kiln_rss_max=$(maxcol 2 "$top/kiln.times")
kiln_rss_med=$(median 2 "$top/kiln.times")
buildah_rss_med=$(median 2 "$top/buildah.times")
kiln_cpu=$(median 3 "$top/kiln.times")
buildah_cpu=$(median 3 "$top/buildah.times")
ratio=$(awk -v b="$buildah_med" -v k="$kiln_med" 'BEGIN { printf "%.2f", b / k }')
cpu_ratio=$(awk -v b="$buildah_cpu" -v k="$kiln_cpu" 'BEGIN { printf "%.2f", (k > 0 ? b / k : 0) }')
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
fs_desc=$(df -PT "$work" | awk 'NR == 2 { print $2 }')
[ -n "$BENCH_FS" ] && fs_desc="$fs_desc (fresh, BENCH_FS=$BENCH_FS)"
[ "$no_journal" = 1 ] && fs_desc="$fs_desc without a journal"
[ "$SETTLE" != 0 ] && fs_desc="$fs_desc, ${SETTLE}s between builds"
who_desc="as root"
[ "$BENCH_USER" != root ] && who_desc="rootless, as $BENCH_USER"

echo
echo "COPY of a $SIZE_MB MB, $FILES-file context; medians of $RUNS runs; buildah storage" \
        "driver $driver; both builders $who_desc; stores and context on $fs_desc"
echo
echo "| | wall time | CPU time (user+sys) | peak RSS |"
echo "| --- | ---: | ---: | ---: |"
printf '| kiln build | %.2f s | %.2f s | %s MB |\n' "$kiln_med" "$kiln_cpu" "$(mb "$kiln_rss_med")"
printf '| buildah bud --layers | %.2f s | %.2f s | %s MB |\n' "$buildah_med" "$buildah_cpu" \
        "$(mb "$buildah_rss_med")"
printf '| ratio buildah/kiln | **%sx** | %sx | |\n' "$ratio" "$cpu_ratio"
printf '| stat floor: find CONTEXT -printf '"''"' | %.2f s | | |\n' "$stat_floor"
printf '| cp -a CONTEXT (copy floor) | %.2f s | | |\n' "$cp_floor"
echo
echo "kiln peak RSS, highest of the $RUNS runs: $(mb "$kiln_rss_max") MB"
if awk -v r="$ratio" 'BEGIN { exit !(r >= 2) }'; then
        echo "PASS speed: kiln is ${ratio}x faster than buildah (target: at least 2x)"
else
        echo "FAIL speed: kiln is ${ratio}x faster than buildah (target: at least 2x)"
fi
if [ "$kiln_rss_max" -lt $((100 * 1024)) ]; then
        echo "PASS memory: kiln peak RSS $(mb "$kiln_rss_max") MB (target: under 100 MB)"
else
        echo "FAIL memory: kiln peak RSS $(mb "$kiln_rss_max") MB (target: under 100 MB)"
fi
exit 0
