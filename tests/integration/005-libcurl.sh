#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# libcurl is not linked: kiln loads it with dlopen when a download needs it, so a kiln
# without it starts and does everything but downloads. KILN_LIBCURL (a hook for tests)
# names the file to load instead of libcurl.so.4.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"

# ---- not linked, not loaded at start ----

readelf -d "$KILN" >needed.txt 2>&1
t_grep "readelf reads kiln's dynamic section" '\(NEEDED\)' needed.txt
t_nogrep "kiln does not need libcurl" 'NEEDED.*libcurl' needed.txt
ldd "$KILN" >ldd.txt 2>&1
t_nogrep "nothing kiln links brings libcurl in" 'libcurl' ldd.txt

LD_DEBUG=libs "$KILN" help >/dev/null 2>ld-help.txt
t_nogrep "kiln help does not load libcurl" 'libcurl\.so' ld-help.txt
LD_DEBUG=libs "$KILN" version >/dev/null 2>ld-version.txt
t_grep "kiln version loads libcurl" 'calling init: .*libcurl\.so\.4' ld-version.txt

# ---- libcurl missing ----

export KILN_LIBCURL=$T_TMP/no-such-libcurl.so.4
t_ok "kiln help runs without libcurl" "$KILN" help
t_ok "kiln version runs without libcurl" "$KILN" version
t_grep "kiln version says libcurl is not available and names the file" \
        "^libcurl: +not available \(load libcurl '$T_TMP/no-such-libcurl\.so\.4': " "$T_OUT"
t_contains "kiln version gives the loader's reason" "cannot open shared object file" "$T_OUT"
t_contains "kiln version names the Debian package" "on Debian, install libcurl4" "$T_OUT"
t_grep "kiln version still prints the other libraries" '^libarchive: +[0-9]' "$T_OUT"
t_eq "kiln version writes nothing to stderr" "$(cat "$T_ERR")" ""

mkdir -p ctx
printf 'local\n' >ctx/a.txt
printf 'FROM scratch\nCOPY a.txt /\n' >ctx/Containerfile
t_ok "a build without downloads works without libcurl" "$KILN" build -q -t nocurl ctx
t_ok "... and its image is in the store" "$KILN" inspect nocurl

# Port 9 (discard) on 127.0.0.1: nothing is sent, as loading fails before any connection.
printf 'FROM scratch\nADD http://127.0.0.1:9/x.txt /x\n' >ctx/Containerfile
t_fails "ADD of a URL fails without libcurl" 1 "$KILN" build ctx
t_contains "the error names the URL" "download 'http://127.0.0.1:9/x.txt'" "$T_ERR"
t_contains "the error names the library" "load libcurl '$T_TMP/no-such-libcurl.so.4'" "$T_ERR"
t_contains "the error gives the loader's reason" "cannot open shared object file" "$T_ERR"
t_contains "the error names the Debian package" "on Debian, install libcurl4" "$T_ERR"

# ---- a library that is not libcurl ----

libz=$(awk '$1 ~ /^libz\.so/ && $3 ~ /^\// { print $3; exit }' ldd.txt)
if [ -n "$libz" ]; then
        export KILN_LIBCURL=$libz
        t_fails "ADD of a URL fails when the library is not libcurl" 1 "$KILN" build ctx
        t_contains "the error names the missing function" \
                "load libcurl '$libz': it has no curl_version_info" "$T_ERR"
        t_ok "kiln version runs" "$KILN" version
        t_grep "kiln version says libcurl is not available" '^libcurl: +not available \(' "$T_OUT"
else
        t_skip "a library that is not libcurl" "ldd does not show kiln's zlib"
fi

unset KILN_LIBCURL
t_ok "kiln version with libcurl" "$KILN" version
t_grep "kiln version prints libcurl's version" '^libcurl: +[0-9]+\.[0-9]+' "$T_OUT"

t_done
