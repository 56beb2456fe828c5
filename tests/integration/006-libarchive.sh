#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# libarchive is not linked: kiln loads it with dlopen the first time it makes an archive
# (a layer's tar, an export, ADD of a tarball), so commands that make none, a warm rebuild
# among them, do not pay for it and its libraries at start. KILN_LIBARCHIVE (a hook for
# tests) names the file to load instead of libarchive.so.13.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"
export KILN_ROOT=$T_TMP/store

# ---- not linked, not loaded at start ----

readelf -d "$KILN" >needed.txt 2>&1
t_grep "readelf reads kiln's dynamic section" '\(NEEDED\)' needed.txt
t_nogrep "kiln does not need libarchive" 'NEEDED.*libarchive' needed.txt
ldd "$KILN" >ldd.txt 2>&1
t_nogrep "nothing kiln links brings libarchive in" 'libarchive' ldd.txt

LD_DEBUG=libs "$KILN" help >/dev/null 2>ld-help.txt
t_nogrep "kiln help does not load libarchive" 'libarchive\.so' ld-help.txt
LD_DEBUG=libs "$KILN" version >/dev/null 2>ld-version.txt
t_grep "kiln version loads libarchive" 'calling init: .*libarchive\.so\.13' ld-version.txt

mkdir -p ctx
printf 'local\n' >ctx/a.txt
printf 'FROM scratch\nCOPY a.txt /\nENV A=1\n' >ctx/Containerfile
LD_DEBUG=libs "$KILN" build -q -t app ctx >/dev/null 2>ld-cold.txt
t_grep "a cold build loads libarchive (the layer's tar)" 'calling init: .*libarchive\.so\.13' \
        ld-cold.txt
t_ok "the image is in the store" "$KILN" inspect app
LD_DEBUG=libs "$KILN" build -t app ctx >warm.out 2>ld-warm.txt
t_grep "a warm rebuild hits" '^--> Using cache' warm.out
t_nogrep "... and does not load libarchive" 'libarchive\.so' ld-warm.txt

# ---- libarchive missing ----

export KILN_LIBARCHIVE=$T_TMP/no-such-libarchive.so.13
t_ok "kiln help runs without libarchive" "$KILN" help
t_ok "kiln version runs without libarchive" "$KILN" version
t_grep "kiln version says libarchive is not available and names the file" \
        "^libarchive: +not available \(load libarchive '$T_TMP/no-such-libarchive\.so\.13': " "$T_OUT"
t_contains "kiln version gives the loader's reason" "cannot open shared object file" "$T_OUT"
t_contains "kiln version names the Debian package" "on Debian, install libarchive13" "$T_OUT"
t_eq "kiln version writes nothing to stderr" "$(cat "$T_ERR")" ""
t_ok "kiln images runs without libarchive" "$KILN" images
t_ok "a warm rebuild works without libarchive" "$KILN" build -q -t app ctx

printf 'changed\n' >ctx/a.txt
t_fails "a build that makes a layer fails without libarchive" 1 "$KILN" build -t app2 ctx
t_contains "the error names the step" 'building at STEP "COPY a.txt /"' "$T_ERR"
t_contains "the error names the library" "load libarchive '$T_TMP/no-such-libarchive.so.13'" "$T_ERR"
t_contains "the error names the Debian package" "on Debian, install libarchive13" "$T_ERR"
t_fails "the failed build named nothing" 1 "$KILN" inspect app2
t_fails "an export fails without libarchive" 1 "$KILN" push app "oci-archive:$T_TMP/app.tar"
t_contains "... saying why" "load libarchive '$T_TMP/no-such-libarchive.so.13'" "$T_ERR"
t_eq "... and leaves no file behind" "$(ls "$T_TMP" | grep -c '^app\.tar')" 0
t_eq "the store's tmp/ is empty" "$(ls -A "$KILN_ROOT/tmp")" ""

# ---- a library that is not libarchive ----

libz=$(awk '$1 ~ /^libz\.so/ && $3 ~ /^\// { print $3; exit }' ldd.txt)
if [ -n "$libz" ]; then
        export KILN_LIBARCHIVE=$libz
        t_fails "a build fails when the library is not libarchive" 1 "$KILN" build -t app2 ctx
        t_grep "the error names a missing function" "load libarchive '$libz': it has no archive_" \
                "$T_ERR"
else
        t_skip "a library that is not libarchive" "ldd does not show kiln's zlib"
fi

unset KILN_LIBARCHIVE
t_ok "with libarchive the build works" "$KILN" build -q -t app2 ctx
t_ok "... and exports" "$KILN" push app2 "oci-archive:$T_TMP/app2.tar"
t_done
