#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The command line: help, version, usage errors and exit codes, global options, and how
# `kiln check` finds its Containerfile.
set -u
. "$(dirname "$0")/../lib.sh"

# ---- help ----

t_ok "kiln --help exits 0" "$KILN" --help
t_grep "kiln --help shows the usage" '^Usage: kiln \[GLOBAL OPTIONS\] COMMAND' "$T_OUT"
t_grep "kiln --help lists check" '^  check +parse and lint a Containerfile' "$T_OUT"
t_grep "kiln --help lists version" '^  version ' "$T_OUT"
t_grep "kiln --help lists --root" '--root DIR' "$T_OUT"
t_grep "kiln --help lists --log-level" '--log-level LEVEL' "$T_OUT"
cp "$T_OUT" "$T_TMP/main-help"

t_ok "kiln -h exits 0" "$KILN" -h
t_eq "kiln -h is kiln --help" "$(cat "$T_OUT")" "$(cat "$T_TMP/main-help")"

t_ok "kiln help exits 0" "$KILN" help
t_eq "kiln help is kiln --help" "$(cat "$T_OUT")" "$(cat "$T_TMP/main-help")"

t_fails "kiln without a command exits 2" 2 "$KILN"
t_grep "kiln without a command shows the usage on stderr" '^Usage: kiln ' "$T_ERR"

t_ok "kiln help check exits 0" "$KILN" help check
t_grep "kiln help check shows the synopsis" \
        '^Usage: kiln check \[-f FILE\] \[--format text\|json\] \[CONTEXT\]$' "$T_OUT"
t_grep "kiln help check describes -f" '^  -f, --file FILE' "$T_OUT"
t_grep "kiln help check describes --format" '^      --format FORMAT' "$T_OUT"
cp "$T_OUT" "$T_TMP/check-help"

t_ok "kiln check --help exits 0" "$KILN" check --help
t_eq "kiln check --help is kiln help check" "$(cat "$T_OUT")" "$(cat "$T_TMP/check-help")"
t_ok "kiln check -h exits 0" "$KILN" check -h
t_eq "kiln check -h is kiln help check" "$(cat "$T_OUT")" "$(cat "$T_TMP/check-help")"

t_ok "kiln help version exits 0" "$KILN" help version
t_grep "kiln help version shows the synopsis" '^Usage: kiln version$' "$T_OUT"

t_fails "kiln help with an unknown command exits 2" 2 "$KILN" help frobnicate
t_contains "kiln help names the unknown command" "unknown command 'frobnicate'" "$T_ERR"

# ---- version ----

want_version=$(sed -n "s/^ *version : '\([^']*\)',*$/\1/p" "$KILN_SRCDIR/meson.build" | head -n 1)
t_ok "kiln version exits 0" "$KILN" version
t_eq "kiln version prints the project version first" "$(head -n 1 "$T_OUT")" \
        "kiln version $want_version"
t_grep "kiln version prints the commit" '^commit: +([0-9a-f]{7,40}|unknown)$' "$T_OUT"
t_grep "kiln version prints libarchive's version" '^libarchive: +[0-9]+\.[0-9]+' "$T_OUT"
t_grep "kiln version prints libcurl's version" '^libcurl: +[0-9]+\.[0-9]+' "$T_OUT"
t_grep "kiln version prints the TLS library libcurl uses" '^tls: +OpenSSL/[0-9]+\.[0-9]+' "$T_OUT"
t_grep "kiln version prints nettle's version (sha256)" '^nettle: +[0-9]+\.[0-9]+$' "$T_OUT"
t_grep "kiln version prints jansson's version" '^jansson: +[0-9]+\.[0-9]+' "$T_OUT"
t_grep "kiln version prints zstd's version" '^zstd: +[0-9]+\.[0-9]+\.[0-9]+' "$T_OUT"
t_grep "kiln version prints zlib's version" '^zlib: +[0-9]+\.[0-9]+' "$T_OUT"
t_grep "kiln version prints libseccomp's version" '^libseccomp: +[0-9]+\.[0-9]+\.[0-9]+' "$T_OUT"
t_eq "kiln version writes nothing to stderr" "$(cat "$T_ERR")" ""
cp "$T_OUT" "$T_TMP/version"

t_ok "kiln --version exits 0" "$KILN" --version
t_eq "kiln --version is kiln version" "$(cat "$T_OUT")" "$(cat "$T_TMP/version")"
t_ok "kiln -v exits 0" "$KILN" -v
t_eq "kiln -v is kiln version" "$(cat "$T_OUT")" "$(cat "$T_TMP/version")"

t_fails "kiln version with an argument exits 2" 2 "$KILN" version extra
t_contains "kiln version names the extra argument" "unexpected argument 'extra'" "$T_ERR"
t_fails "kiln version with a flag exits 2" 2 "$KILN" version --short
t_contains "kiln version names the unknown flag" "unknown flag '--short'" "$T_ERR"

# ---- usage errors ----

t_fails "an unknown command exits 2" 2 "$KILN" frobnicate
t_contains "an unknown command is named on stderr" \
        "kiln: error: unknown command 'frobnicate'" "$T_ERR"
t_contains "an unknown command points to --help" "Run 'kiln --help' for usage." "$T_ERR"
t_eq "an unknown command prints nothing on stdout" "$(cat "$T_OUT")" ""

t_fails "an unknown global flag exits 2" 2 "$KILN" --frobnicate version
t_contains "an unknown global flag is named on stderr" "unknown flag '--frobnicate'" "$T_ERR"
t_fails "an unknown short global flag exits 2" 2 "$KILN" -q version
t_contains "an unknown short global flag is named on stderr" "unknown flag '-q'" "$T_ERR"

t_fails "an unknown check flag exits 2" 2 "$KILN" check --frobnicate
t_contains "an unknown check flag is named on stderr" \
        "kiln: error: check: unknown flag '--frobnicate'" "$T_ERR"
t_contains "an unknown check flag points to check --help" \
        "Run 'kiln check --help' for usage." "$T_ERR"
t_fails "an unknown short check flag exits 2" 2 "$KILN" check -x
t_contains "an unknown short check flag is named on stderr" "unknown flag '-x'" "$T_ERR"
t_fails "check -f without a value exits 2" 2 "$KILN" check -f
t_contains "check -f without a value says so" "flag '-f' needs a value" "$T_ERR"
t_fails "check --format with an unknown format exits 2" 2 "$KILN" check --format yaml .
t_contains "check --format names the unknown format" "unknown format 'yaml'" "$T_ERR"
t_fails "check with two contexts exits 2" 2 "$KILN" check "$T_TMP" "$T_TMP"
t_contains "check names the extra argument" "unexpected argument '$T_TMP'" "$T_ERR"

# ---- global options ----

t_fails "--log-level bogus exits 2" 2 "$KILN" --log-level bogus version
t_contains "--log-level bogus names the level" "unknown log level 'bogus'" "$T_ERR"
for level in error warn info debug; do
        t_ok "--log-level $level is accepted" "$KILN" --log-level "$level" version
done
t_ok "--log-level=debug is accepted" "$KILN" --log-level=debug version
t_fails "--log-level without a value exits 2" 2 "$KILN" --log-level
t_contains "--log-level without a value says so" "flag '--log-level' needs a value" "$T_ERR"

t_ok "--root DIR is accepted" "$KILN" --root "$T_TMP/other-store" version
t_ok "--root=DIR is accepted" "$KILN" --root="$T_TMP/other-store" version
t_fails "an empty --root exits 2" 2 "$KILN" --root= version
t_contains "an empty --root says so" "--root needs a directory" "$T_ERR"
t_ok "global options combine before the command" \
        "$KILN" --root "$T_TMP/other-store" --log-level info help check

# ---- kiln check: finding the Containerfile ----

good=$T_TMP/good.Containerfile
printf 'FROM busybox\nCOPY hello.sh /usr/local/bin/\nCMD ["hello.sh"]\n' >"$good"
write_bad() { printf 'FROM busybox\nCOPPY hello.sh /usr/local/bin/\n' >"$1"; }
bad_line="2:1: error: unknown instruction 'COPPY' (did you mean 'COPY'?) [UnknownInstruction]"

t_fails "check of a missing file exits 1" 1 "$KILN" check -f "$T_TMP/missing/Containerfile"
t_contains "check of a missing file names the path" "$T_TMP/missing/Containerfile" "$T_ERR"
t_grep "check of a missing file says why" '^kiln: error: .*No such file or directory$' "$T_ERR"

t_fails "check -f of a directory exits 1" 1 "$KILN" check -f "$T_TMP"
t_contains "check -f of a directory says so" "'$T_TMP' is a directory" "$T_ERR"

mkdir "$T_TMP/empty"
t_fails "check of a context without a Containerfile exits 1" 1 "$KILN" check "$T_TMP/empty"
t_contains "check of a context without a Containerfile says so" \
        "no Containerfile or Dockerfile in '$T_TMP/empty'" "$T_ERR"
t_fails "check in a directory without a Containerfile exits 1" 1 \
        bash -c 'cd "$1" && exec "$2" check' bash "$T_TMP/empty" "$KILN"
t_contains "check defaults to the current directory" "no Containerfile or Dockerfile in '.'" \
        "$T_ERR"
t_fails "check of a missing context exits 1" 1 "$KILN" check "$T_TMP/no-such-context"
t_contains "check of a missing context names it" "$T_TMP/no-such-context" "$T_ERR"

t_ok "check -f of a valid file exits 0" "$KILN" check -f "$good"
t_eq "check of a valid file prints nothing" "$(cat "$T_OUT" "$T_ERR")" ""

t_ok "check -f - reads a valid file from stdin" "$KILN" check -f - <"$good"
t_eq "check -f - of a valid file prints nothing" "$(cat "$T_OUT" "$T_ERR")" ""
write_bad "$T_TMP/bad.Containerfile"
t_fails "check -f - reports errors in stdin" 1 "$KILN" check -f - <"$T_TMP/bad.Containerfile"
t_contains "check -f - calls the file <stdin>" "<stdin>:$bad_line" "$T_OUT"
t_fails "check -f - fails when stdin cannot be read" 1 "$KILN" check -f - <"$T_TMP"
t_contains "check -f - names stdin when it cannot be read" "'<stdin>'" "$T_ERR"

mkdir "$T_TMP/both"
write_bad "$T_TMP/both/Containerfile"
cp "$good" "$T_TMP/both/Dockerfile"
t_fails "check prefers Containerfile to Dockerfile" 1 "$KILN" check "$T_TMP/both"
t_contains "check names CONTEXT/Containerfile" "$T_TMP/both/Containerfile:$bad_line" "$T_OUT"
t_fails "check in the context dir names ./Containerfile as Containerfile" 1 \
        bash -c 'cd "$1" && exec "$2" check' bash "$T_TMP/both" "$KILN"
t_grep "check in the context dir prints Containerfile:LINE:COL" \
        "^Containerfile:2:1: error: unknown instruction 'COPPY'" "$T_OUT"

# A directory called Dockerfile would fail the read: a pass shows it was not looked at.
mkdir -p "$T_TMP/both-dir/Dockerfile"
cp "$good" "$T_TMP/both-dir/Containerfile"
t_ok "check does not read Dockerfile when Containerfile exists" "$KILN" check "$T_TMP/both-dir"

mkdir "$T_TMP/docker"
write_bad "$T_TMP/docker/Dockerfile"
t_fails "check uses Dockerfile when there is no Containerfile" 1 "$KILN" check "$T_TMP/docker"
t_contains "check names CONTEXT/Dockerfile" "$T_TMP/docker/Dockerfile:$bad_line" "$T_OUT"
mkdir "$T_TMP/docker-good"
cp "$good" "$T_TMP/docker-good/Dockerfile"
t_ok "check of a valid Dockerfile exits 0" "$KILN" check "$T_TMP/docker-good"
mkdir -p "$T_TMP/docker-dir/Dockerfile"
t_fails "check reads Dockerfile when there is no Containerfile" 1 "$KILN" check "$T_TMP/docker-dir"
t_contains "check names the Dockerfile it tried" "'$T_TMP/docker-dir/Dockerfile' is a directory" \
        "$T_ERR"

mkdir "$T_TMP/explicit"
write_bad "$T_TMP/explicit/Containerfile"
cp "$good" "$T_TMP/explicit/Other.Containerfile"
t_ok "check -f wins over the context's Containerfile" \
        "$KILN" check -f "$T_TMP/explicit/Other.Containerfile" "$T_TMP/explicit"

t_done
